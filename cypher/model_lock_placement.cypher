// Lock models about to be placed (write lock on each node, so nobody else can move them
// until this transaction ends) and read the family each is in now.  Models that do not
// exist yet (created later in the same transaction) give no row.
// Parameters: $ids = [model id, ...] (sorted, so that concurrent writers lock in one order)
UNWIND $ids AS id
MATCH (m:Model {id: id})
SET m.placedAt = datetime()
WITH m
OPTIONAL MATCH (m)-[:IN_FAMILY]->(f:Family)
RETURN m.id AS id, f.id AS familyId
