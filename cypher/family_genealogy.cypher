// A family's full stored genealogy: the family, its members and every DERIVED_FROM edge
// between them (child -> parent) with relation, weight, aligned share, confidence, distance
// and method (a merge child has one edge per parent; an edge stored without a relation
// reads as 'finetune').  Nothing is recomputed from weights.  No row when the family is unknown.
// Parameters: $id
MATCH (f:Family {id: $id})
OPTIONAL MATCH (m:Model)-[:IN_FAMILY]->(f)
OPTIONAL MATCH (m)-[r:DERIVED_FROM]->(p:Model)
WITH f, m, r, p ORDER BY m.createdAt, m.name
RETURN f {.id, .memberCount, .meanDistance, .structureHash, .threshold, .metric, .regime, .regimeEvidence, .treeMethod, .lambda, .version, .createdAt, .updatedAt} AS family,
       collect(DISTINCT m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .uploaded, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision}) AS models,
       collect(CASE WHEN r IS NULL THEN null ELSE {parent: p.id, child: m.id, confidence: r.confidence,
               distance: r.distance, method: r.method, relation: coalesce(r.relation, 'finetune'),
               weight: r.weight, aligned: r.aligned, lambda: r.lambda, runId: r.runId,
               createdAt: r.createdAt} END) AS edges
