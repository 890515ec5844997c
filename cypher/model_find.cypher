// One model by id or by name (the CLI accepts either), same columns as model_get.
// Parameters: $ref (an id or a name)
CALL () {
  MATCH (m:Model {id: $ref}) RETURN m
  UNION
  MATCH (m:Model {name: $ref}) RETURN m
}
OPTIONAL MATCH (m)-[:IN_FAMILY]->(f:Family)
OPTIONAL MATCH (m)-[r:DERIVED_FROM]->(p:Model)
CALL (m) {  // one declared base (a merge declares several): a catalogue model first
  OPTIONAL MATCH (m)-[:DECLARED_BASE]->(b)
  RETURN b ORDER BY b:ExternalModel, b.name LIMIT 1
}
RETURN m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision} AS model,
       f.id AS familyId, p.id AS parentId, p.name AS parentName,
       r.confidence AS confidence, r.distance AS distance, r.method AS method,
       b.name AS declaredBaseName, b.id AS declaredBaseId
LIMIT 1
