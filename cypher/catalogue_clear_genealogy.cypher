// Reclustering, step 1: remove every family membership and every DERIVED_FROM edge.  The
// new families are written in the same transaction (family_lock, family_write_trees,
// family_update_stats, family_delete_empty), so the old genealogy stays visible until the
// new one is complete.
// Parameters: none
MATCH (:Model)-[r:IN_FAMILY|DERIVED_FROM]->()
DELETE r
RETURN count(r) AS removed
