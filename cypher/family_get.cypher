// One family with its real member count, its root model(s), the number of its
// DERIVED_FROM edges and their mean confidence.  No row when unknown.
// Parameters: $id
MATCH (f:Family {id: $id})
WITH f, [(f)<-[:IN_FAMILY]-(:Model)-[r:DERIVED_FROM]->(:Model) | r.confidence] AS confidences
WITH f, size(confidences) AS edges, [c IN confidences WHERE c IS NOT NULL] AS scored
RETURN f {.id, .memberCount, .meanDistance, .structureHash, .threshold, .metric, .regime, .regimeEvidence, .treeMethod, .lambda, .version, .createdAt, .updatedAt} AS family, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS members,
       edges, CASE size(scored) WHEN 0 THEN null ELSE reduce(s = 0.0, c IN scored | s + c) / size(scored) END AS meanConfidence,
       [(r:Model)-[:IN_FAMILY]->(f) WHERE NOT EXISTS { (r)-[:DERIVED_FROM]->() } | r {.id, .name}] AS roots
