// Models whose declared base (model card / adapter config) is not one of their recovered
// parents: a different parent, no recovered parent, or a declared base outside the
// catalogue.  One row per declared base and recovered parent; by model name.
// Parameters: $id (a model id, or null for every model), $limit (>= 1)
MATCH (m:Model)-[d:DECLARED_BASE]->(declared)
WHERE ($id IS NULL OR m.id = $id) AND NOT EXISTS { (m)-[:DERIVED_FROM]->(declared) }
OPTIONAL MATCH (m)-[r:DERIVED_FROM]->(recovered:Model)
RETURN m.id AS id, m.name AS name, d.relation AS relation,
       declared.name AS declaredName, declared.id AS declaredId,
       declared:ExternalModel AS declaredExternal,
       recovered.id AS recoveredId, recovered.name AS recoveredName,
       r.confidence AS confidence
ORDER BY m.name, declared.name, recovered.name
LIMIT $limit
