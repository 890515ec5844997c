// Record each model's declared bases (model card `base_model`, a string or a list for a
// merge; adapter `base_model_name_or_path`), replacing any earlier ones: one DECLARED_BASE
// edge per base, to the catalogue model whose name is one of its candidates, else to an
// ExternalModel placeholder named by the base; every edge carries the declared relation
// (model card `base_model_relation`: adapter, merge, quantized, finetune).
// Parameters: $rows = [{id, relation, bases: [{base, candidates: [name, ...]}, ...]}]
UNWIND $rows AS row
MATCH (m:Model {id: row.id})
CALL (m) {
  OPTIONAL MATCH (m)-[old:DECLARED_BASE]->()
  DELETE old
}
UNWIND row.bases AS declared
OPTIONAL MATCH (b:Model) WHERE b.name IN declared.candidates AND b <> m
WITH m, row, declared, head(collect(b)) AS b
CALL (m, row, b) {
  WITH m, row, b WHERE b IS NOT NULL
  MERGE (m)-[r:DECLARED_BASE]->(b)
  SET r.relation = row.relation
}
CALL (m, row, declared, b) {
  WITH m, row, declared, b WHERE b IS NULL
  MERGE (x:ExternalModel {name: declared.base})
  MERGE (m)-[r:DECLARED_BASE]->(x)
  SET r.relation = row.relation
}
RETURN m.id AS id, declared.base AS base, b.id AS baseId
