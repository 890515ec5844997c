// The stamp of a model's stored tree: its family and that family's version (every rewrite
// of a family's tree bumps the version in the same transaction).  A lineage is read
// between two stamps; different stamps mean a rewrite landed in between and the lineage
// is read again, so that it never mixes two trees.  No row when the model is unknown.
// Parameters: $id
MATCH (m:Model {id: $id})
OPTIONAL MATCH (m)-[:IN_FAMILY]->(f:Family)
RETURN f.id AS familyId, f.version AS version
