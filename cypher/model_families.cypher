// The family of each of these models (models without a family give no row).
// Parameters: $ids = [model id, ...]
UNWIND $ids AS id
MATCH (m:Model {id: id})-[:IN_FAMILY]->(f:Family)
RETURN m.id AS id, f.id AS familyId
