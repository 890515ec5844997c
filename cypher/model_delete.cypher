// Delete a model and its fingerprint.  Models that declared it as their base keep that
// declaration, now pointing at an ExternalModel placeholder with its name.  Its family
// tree is rebuilt in the same transaction by the caller (children re-attached).
// Parameters: $id.  No row when the model is unknown.
MATCH (m:Model {id: $id})
CALL (m) {
  MATCH (s:Model)-[d:DECLARED_BASE]->(m)
  MERGE (x:ExternalModel {name: m.name})
  CREATE (s)-[:DECLARED_BASE {relation: d.relation}]->(x)
}
OPTIONAL MATCH (fp:Fingerprint)-[:OF]->(m)
WITH m, fp, m.id AS id, m.name AS name
DETACH DELETE fp, m
RETURN id, name
