// Descendants of a model up to $depth generations, each with its parent (to nest them)
// and the relation ('finetune' when unset), merge weight and confidence of its own parent
// edge; by generation, then name.
// Bounded like lineage_ancestors: fixed maximum 50, filtered by $depth (1..50).
// Parameters: $id, $depth
MATCH p = (d:Model)-[:DERIVED_FROM*1..50]->(m:Model {id: $id})
WHERE length(p) <= $depth
WITH d, length(p) AS generation, head(relationships(p)) AS r
RETURN d.id AS id, d.name AS name, d.status AS status, d.format AS format,
       generation, endNode(r).id AS parentId, coalesce(r.relation, 'finetune') AS relation,
       r.weight AS weight, r.confidence AS confidence,
       r.distance AS distance, r.method AS method
ORDER BY generation, name
