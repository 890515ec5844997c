// One family with its real member count and its root model(s).  No row when unknown.
// Parameters: $id
MATCH (f:Family {id: $id})
RETURN f {.id, .memberCount, .meanDistance, .structureHash, .threshold, .metric, .regime, .regimeEvidence, .treeMethod, .lambda, .version, .createdAt, .updatedAt} AS family, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS members,
       [(r:Model)-[:IN_FAMILY]->(f) WHERE NOT EXISTS { (r)-[:DERIVED_FROM]->() } | r {.id, .name}] AS roots
