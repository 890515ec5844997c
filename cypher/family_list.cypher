// Families, largest first, each with its root model(s) and its real member count.
// Parameters: $skip (>= 0), $limit (>= 1)
MATCH (f:Family)
WITH f, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS members
ORDER BY members DESC, f.createdAt, f.id
SKIP $skip LIMIT $limit
RETURN f {.id, .memberCount, .meanDistance, .structureHash, .threshold, .metric, .regime, .regimeEvidence, .treeMethod, .lambda, .version, .createdAt, .updatedAt} AS family, members,
       [(r:Model)-[:IN_FAMILY]->(f) WHERE NOT EXISTS { (r)-[:DERIVED_FROM]->() } | r {.id, .name}] AS roots
