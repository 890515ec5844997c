// Models with the same recovered parent as this one (not the model itself), by name.
// Parameters: $id
MATCH (m:Model {id: $id})-[:DERIVED_FROM]->(p:Model)<-[r:DERIVED_FROM]-(s:Model)
WHERE s <> m
RETURN s.id AS id, s.name AS name, s.status AS status, s.format AS format,
       r.confidence AS confidence, p.id AS parentId, p.name AS parentName
ORDER BY s.name
