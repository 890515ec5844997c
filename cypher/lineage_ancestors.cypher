// Ancestors of a model, nearest first, up to $depth generations.  A genealogy with merges
// is a DAG: an ancestor reached by several paths is listed once, at its nearest
// generation, with the edge from the generation below that carries the largest weight
// (childId: the model one generation below it; for generation 1, the model itself).  Each
// row carries that edge's relation ('finetune' when stored without one), weight and
// confidence.  Lineage follows every relation type.
// Cypher cannot take a variable-length bound as a parameter: the pattern is bounded by the
// fixed maximum 50 and filtered by $depth (the service validates 1 <= $depth <= 50).
// Parameters: $id, $depth
MATCH p = (m:Model {id: $id})-[:DERIVED_FROM*1..50]->(a:Model)
WHERE length(p) <= $depth
WITH a, length(p) AS generation, last(relationships(p)) AS r
ORDER BY generation, coalesce(r.weight, 1.0) DESC, startNode(r).name
WITH a, head(collect({generation: generation, r: r})) AS nearest
WITH a, nearest.generation AS generation, nearest.r AS r
RETURN a.id AS id, a.name AS name, a.status AS status, a.format AS format,
       generation, startNode(r).id AS childId, r.confidence AS confidence,
       r.distance AS distance, r.method AS method, coalesce(r.relation, 'finetune') AS relation,
       r.weight AS weight
ORDER BY generation, coalesce(weight, 1.0) DESC, name
