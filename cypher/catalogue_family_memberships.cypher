// Every family with its member ids and version (recluster keeps the id of the old family
// that overlaps each new one most, so family URLs survive a recluster).
// Parameters: none
MATCH (f:Family)
OPTIONAL MATCH (m:Model)-[:IN_FAMILY]->(f)
RETURN f.id AS id, f.version AS version, collect(m.id) AS members
