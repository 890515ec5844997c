// Ancestors of a model, nearest first, up to $depth generations.  Each row carries the
// relation (stored edges without one read as 'finetune'), merge weight and confidence of
// the edge from the generation below (the model itself for generation 1).
// Cypher cannot take a variable-length bound as a parameter: the pattern is bounded by the
// fixed maximum 50 and filtered by $depth (the service validates 1 <= $depth <= 50).
// Parameters: $id, $depth
MATCH p = (m:Model {id: $id})-[:DERIVED_FROM*1..50]->(a:Model)
WHERE length(p) <= $depth
WITH a, length(p) AS generation, last(relationships(p)) AS r
RETURN a.id AS id, a.name AS name, a.status AS status, a.format AS format,
       generation, startNode(r).id AS childId, coalesce(r.relation, 'finetune') AS relation,
       r.weight AS weight, r.confidence AS confidence,
       r.distance AS distance, r.method AS method
ORDER BY generation
