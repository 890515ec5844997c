// Models with a recovered parent in common with this one (not the model itself), by name:
// one row per sibling and shared parent (a merge child shares each of its parents), with
// the relation and confidence of the sibling's edge to that parent.
// Parameters: $id
MATCH (m:Model {id: $id})-[:DERIVED_FROM]->(p:Model)<-[r:DERIVED_FROM]-(s:Model)
WHERE s <> m
RETURN DISTINCT s.id AS id, s.name AS name, s.status AS status, s.format AS format,
       r.confidence AS confidence, coalesce(r.relation, 'finetune') AS relation,
       p.id AS parentId, p.name AS parentName
ORDER BY name, parentName
