// The root of a model's tree (the model itself when it has no parent) and how many
// generations separate them (at most 50).  No row when the model is unknown.
// Parameters: $id
MATCH p = (m:Model {id: $id})-[:DERIVED_FROM*0..50]->(r:Model)
WHERE NOT EXISTS { (r)-[:DERIVED_FROM]->() }
RETURN r.id AS id, r.name AS name, length(p) AS generations
ORDER BY generations DESC
LIMIT 1
