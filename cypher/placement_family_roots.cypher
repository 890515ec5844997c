// The root full model of every family of full models, largest family first: the bases an
// adapter that names no catalogue model can be attached to (the shapes decide).
// Parameters: none
MATCH (r:Model)-[:IN_FAMILY]->(f:Family)
WHERE NOT r.isAdapter AND r.status = 'ok' AND NOT EXISTS { (r)-[:DERIVED_FROM]->() }
WITH f, r ORDER BY r.createdAt
WITH f, head(collect(r)) AS r
RETURN f.id AS familyId, r.id AS rootId, r.sha256 AS rootSha256, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS size
ORDER BY size DESC, f.createdAt
