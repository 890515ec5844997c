// The lowest common ancestor of two models (one of them when it is the other's
// ancestor), with the number of generations from each.  No row when they share none.
// Parameters: $a, $b (model ids)
MATCH pa = (a:Model {id: $a})-[:DERIVED_FROM*0..50]->(c:Model)
MATCH pb = (b:Model {id: $b})-[:DERIVED_FROM*0..50]->(c)
RETURN c.id AS id, c.name AS name, length(pa) AS fromA, length(pb) AS fromB
ORDER BY fromA, fromB
LIMIT 1
