// A family's version and its members with what a tree rebuild needs (fingerprints are
// fetched separately, and only when not cached).  No row when the family is unknown.
// Parameters: $id
MATCH (f:Family {id: $id})
OPTIONAL MATCH (m:Model)-[:IN_FAMILY]->(f)
WITH f, m ORDER BY m.createdAt, m.name
RETURN f.version AS version,
       collect(m {.id, .name, .sha256, .isAdapter, .structureHash, .declaredBase, .status}) AS members
