// Rewriting families, step 1 of 3: detach every current member of $familyIds, and every
// model in $members (some may come from other families), from its family and from its
// parent and children.  Steps 2 and 3 (family_write_trees, family_update_stats) run in
// the same transaction, so readers never see a half-written tree.
// Parameters: $familyIds = [family id, ...], $members = [model id, ...]
CALL () {
  UNWIND $members AS id
  MATCH (m:Model {id: id})
  RETURN m
  UNION
  UNWIND $familyIds AS fid
  MATCH (m:Model)-[:IN_FAMILY]->(:Family {id: fid})
  RETURN m
}
OPTIONAL MATCH (m)-[r:IN_FAMILY|DERIVED_FROM]-()
WHERE type(r) = 'DERIVED_FROM' OR startNode(r) = m
DELETE r
RETURN count(DISTINCT m) AS detached, count(DISTINCT r) AS removed
