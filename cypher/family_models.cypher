// The members of a family, oldest first, each with its recovered parent and confidence.
// Parameters: $id
MATCH (m:Model)-[:IN_FAMILY]->(f:Family {id: $id})
OPTIONAL MATCH (m)-[r:DERIVED_FROM]->(p:Model)
RETURN m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision} AS model, f.id AS familyId, p.id AS parentId, p.name AS parentName,
       r.confidence AS confidence, r.distance AS distance, r.method AS method
ORDER BY m.createdAt, m.name
