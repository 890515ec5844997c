// Families, largest first, each with its root model(s), its real member count, the number
// of its DERIVED_FROM edges and their mean confidence (null without scored edges).
// Parameters: $skip (>= 0), $limit (>= 1)
MATCH (f:Family)
WITH f, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS members
ORDER BY members DESC, f.createdAt, f.id
SKIP $skip LIMIT $limit
WITH f, members, [(f)<-[:IN_FAMILY]-(:Model)-[r:DERIVED_FROM]->(:Model) | r.confidence] AS confidences
WITH f, members, size(confidences) AS edges, [c IN confidences WHERE c IS NOT NULL] AS scored
RETURN f {.id, .memberCount, .meanDistance, .structureHash, .threshold, .metric, .regime, .regimeEvidence, .treeMethod, .lambda, .version, .createdAt, .updatedAt} AS family, members,
       edges, CASE size(scored) WHEN 0 THEN null ELSE reduce(s = 0.0, c IN scored | s + c) / size(scored) END AS meanConfidence,
       [(r:Model)-[:IN_FAMILY]->(f) WHERE NOT EXISTS { (r)-[:DERIVED_FROM]->() } | r {.id, .name}] AS roots
