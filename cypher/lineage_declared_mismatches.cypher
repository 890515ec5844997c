// Models whose declared base (model card / adapter config) is not their recovered parent:
// a different parent, no recovered parent, or a declared base outside the catalogue.
// Parameters: none
MATCH (m:Model)-[d:DECLARED_BASE]->(declared)
OPTIONAL MATCH (m)-[r:DERIVED_FROM]->(recovered:Model)
WITH m, d, declared, r, recovered
WHERE recovered IS NULL OR recovered <> declared
RETURN m.id AS id, m.name AS name, d.relation AS relation,
       declared.name AS declaredName, declared.id AS declaredId,
       declared:ExternalModel AS declaredExternal,
       recovered.id AS recoveredId, recovered.name AS recoveredName,
       r.confidence AS confidence
ORDER BY m.name
