// Descendants of a model up to $depth generations, each once (a merge child reached
// through several of its parents at its nearest generation, under the parent of largest
// weight), with that parent (to nest them) and the relation, weight and confidence of
// the edge to it; by generation, then name.  Lineage follows every relation type.
// Bounded like lineage_ancestors: fixed maximum 50, filtered by $depth (1..50).
// Parameters: $id, $depth
MATCH p = (d:Model)-[:DERIVED_FROM*1..50]->(m:Model {id: $id})
WHERE length(p) <= $depth
WITH d, length(p) AS generation, head(relationships(p)) AS r
ORDER BY generation, coalesce(r.weight, 1.0) DESC, endNode(r).name
WITH d, head(collect({generation: generation, r: r})) AS nearest
WITH d, nearest.generation AS generation, nearest.r AS r
RETURN d.id AS id, d.name AS name, d.status AS status, d.format AS format,
       generation, endNode(r).id AS parentId, r.confidence AS confidence,
       r.distance AS distance, r.method AS method, coalesce(r.relation, 'finetune') AS relation,
       r.weight AS weight
ORDER BY generation, name
