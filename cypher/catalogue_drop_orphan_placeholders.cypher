// Delete ExternalModel placeholders that no model declares as its base any more.
// Parameters: none
MATCH (x:ExternalModel)
WHERE NOT EXISTS { ()-[:DECLARED_BASE]->(x) }
DELETE x
RETURN count(*) AS deleted
