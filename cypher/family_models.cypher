// The members of a family, oldest first, each with its recovered parents (main one first,
// as in model_get) and the main parent's edge.
// Parameters: $id
MATCH (m:Model)-[:IN_FAMILY]->(f:Family {id: $id})
WITH m, f, COLLECT {
         MATCH (m)-[r:DERIVED_FROM]->(p:Model)
         RETURN {id: p.id, name: p.name, relation: coalesce(r.relation, 'finetune'), weight: r.weight,
                 confidence: r.confidence, distance: r.distance, method: r.method, aligned: r.aligned} AS parent
         ORDER BY coalesce(r.weight, 1.0) DESC, p.name
       } AS parents
RETURN m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .uploaded, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision} AS model, f.id AS familyId,
       parents, parents[0].id AS parentId, parents[0].name AS parentName,
       parents[0].confidence AS confidence, parents[0].distance AS distance, parents[0].method AS method,
       parents[0].relation AS relation, parents[0].weight AS weight
ORDER BY m.createdAt, m.name
