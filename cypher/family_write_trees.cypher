// Rewriting families, step 2 of 3: each family's membership and DERIVED_FROM edges (child
// -> parent) as the recovery computed them.  Returns how many of each were written, so
// the caller can check that every planned member and edge still existed.
// Parameters: $families = [{id, members: [model id, ...],
//   edges: [{parent, child, confidence, distance, method, relation, weight, aligned}]}],
//   $lambda, $runId.  A merge child has one edge per parent (relation 'merge', with weight).
UNWIND $families AS fam
MATCH (f:Family {id: fam.id})
CALL (f, fam) {
  UNWIND fam.members AS mid
  MATCH (m:Model {id: mid})
  CREATE (m)-[:IN_FAMILY]->(f)
  RETURN count(*) AS memberships
}
CALL (fam) {
  UNWIND fam.edges AS e
  MATCH (c:Model {id: e.child})
  MATCH (p:Model {id: e.parent})
  CREATE (c)-[:DERIVED_FROM {confidence: e.confidence, distance: e.distance, method: e.method,
                             relation: e.relation, weight: e.weight, aligned: e.aligned,
                             lambda: $lambda, runId: $runId, createdAt: datetime()}]->(p)
  RETURN count(*) AS edges
}
RETURN f.id AS id, memberships, edges
