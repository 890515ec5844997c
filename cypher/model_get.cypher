// One model by id, with its family, its recovered parent (and that edge's confidence)
// and its declared base.  No row when there is no such model.
// Parameters: $id
MATCH (m:Model {id: $id})
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
