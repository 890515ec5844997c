// Delete families left without members (emptied by deletions, merged into another, or
// not reused by a recluster).  $ids limits the check to some families; null checks all.
// Parameters: $ids = [family id, ...] or null
MATCH (f:Family)
WHERE ($ids IS NULL OR f.id IN $ids) AND NOT EXISTS { (:Model)-[:IN_FAMILY]->(f) }
WITH collect(f) AS empty
FOREACH (f IN empty | DETACH DELETE f)
RETURN size(empty) AS deleted
