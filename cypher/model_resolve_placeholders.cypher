// Newly stored models may be the declared base of models stored before them: move
// DECLARED_BASE edges from an ExternalModel placeholder named like a new model (exactly,
// or "<owner>/<name>") onto that model.  (The scan hint keeps the planner from answering
// ENDS WITH from the RANGE index of the name constraint, which Neo4j 5.26 rejects.)
// Parameters: $ids = [model id, ...] (the new models)
UNWIND $ids AS id
MATCH (m:Model {id: id})
MATCH (x:ExternalModel) USING SCAN x:ExternalModel
WHERE x.name = m.name OR x.name ENDS WITH ('/' + m.name)
MATCH (s:Model)-[old:DECLARED_BASE]->(x)
WHERE s <> m
MERGE (s)-[r:DECLARED_BASE]->(m)
SET r.relation = old.relation
DELETE old
RETURN s.id AS modelId, m.id AS baseId
