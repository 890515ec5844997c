// One model by id or by name (the CLI accepts either), same columns as model_get.
// Parameters: $ref (an id or a name)
CALL () {
  MATCH (m:Model {id: $ref}) RETURN m
  UNION
  MATCH (m:Model {name: $ref}) RETURN m
}
OPTIONAL MATCH (m)-[:IN_FAMILY]->(f:Family)
CALL (m) {  // one declared base (a merge declares several): a catalogue model first
  OPTIONAL MATCH (m)-[:DECLARED_BASE]->(b)
  RETURN b ORDER BY b:ExternalModel, b.name LIMIT 1
}
WITH m, f, b, COLLECT {
         MATCH (m)-[r:DERIVED_FROM]->(p:Model)
         RETURN {id: p.id, name: p.name, relation: coalesce(r.relation, 'finetune'), weight: r.weight,
                 confidence: r.confidence, distance: r.distance, method: r.method, aligned: r.aligned} AS parent
         ORDER BY coalesce(r.weight, 1.0) DESC, p.name
       } AS parents
RETURN m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .uploaded, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision} AS model,
       f.id AS familyId, parents, parents[0].id AS parentId, parents[0].name AS parentName,
       parents[0].confidence AS confidence, parents[0].distance AS distance, parents[0].method AS method,
       parents[0].relation AS relation, parents[0].weight AS weight,
       b.name AS declaredBaseName, b.id AS declaredBaseId
LIMIT 1
