// Rewriting families, step 3 of 3: statistics of each family, with memberCount counted
// from its real membership (never carried over, so it cannot go stale) and the version
// bumped for optimistic concurrency.
// Parameters: $families = [{id, stats: {meanDistance, structureHash, threshold, metric,
//   regime, regimeEvidence, treeMethod, lambda, runId}}]
UNWIND $families AS fam
MATCH (f:Family {id: fam.id})
SET f += fam.stats,
    f.memberCount = COUNT { (:Model)-[:IN_FAMILY]->(f) },
    f.version = coalesce(f.version, 0) + 1,
    f.updatedAt = datetime()
RETURN f.id AS id, f.memberCount AS memberCount, f.version AS version
