// How many models share this architecture (structural hash), from the index alone: it
// decides whether a new model is compared with all of them or with the vector index's
// nearest candidates.
// Parameters: $structureHash
MATCH (m:Model {structureHash: $structureHash})
RETURN count(m) AS models
