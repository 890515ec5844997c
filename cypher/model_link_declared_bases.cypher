// Record each model's declared base (model card `base_model`, adapter
// `base_model_name_or_path`), replacing any earlier one: an edge to the catalogue model
// whose name is one of row.candidates, else to an ExternalModel placeholder named row.base.
// Parameters: $rows = [{id, base, candidates: [name, ...], relation}]
UNWIND $rows AS row
MATCH (m:Model {id: row.id})
CALL (m) {
  OPTIONAL MATCH (m)-[old:DECLARED_BASE]->()
  DELETE old
}
OPTIONAL MATCH (b:Model) WHERE b.name IN row.candidates AND b <> m
WITH m, row, head(collect(b)) AS b
CALL (m, row, b) {
  WITH m, row, b WHERE b IS NOT NULL
  MERGE (m)-[r:DECLARED_BASE]->(b)
  SET r.relation = row.relation
}
CALL (m, row, b) {
  WITH m, row, b WHERE b IS NULL
  MERGE (x:ExternalModel {name: row.base})
  MERGE (m)-[r:DECLARED_BASE]->(x)
  SET r.relation = row.relation
}
RETURN m.id AS id, b.id AS baseId
