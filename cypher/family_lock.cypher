// Lock families for rewriting (creating those that are new) and read each one's version
// and current members.  Run first inside the write transaction that rewrites them, with
// the ids sorted, so that concurrent writers take the locks in the same order.
// Parameters: $ids = [family id, ...]
UNWIND $ids AS fid
MERGE (f:Family {id: fid})
ON CREATE SET f.createdAt = datetime(), f.version = 0, f.memberCount = 0
SET f.updatedAt = datetime()
WITH f
OPTIONAL MATCH (m:Model)-[:IN_FAMILY]->(f)
RETURN f.id AS id, f.version AS version, collect(m.id) AS members
