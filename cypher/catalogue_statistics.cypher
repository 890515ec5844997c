// Counts of everything in the catalogue: models (by status; adapters), families, recovered
// and declared edges, placeholders of external bases, fingerprints and jobs (by state),
// plus consistency checks (models ok without a family, families whose stored memberCount
// differs from their real membership, families without members).
// Parameters: none
CALL () {
  MATCH (m:Model)
  WITH m.status AS status, count(*) AS n
  RETURN collect({status: status, count: n}) AS modelsByStatus
}
CALL () {
  MATCH (j:Job)
  WITH j.state AS state, count(*) AS n
  RETURN collect({state: state, count: n}) AS jobsByState
}
CALL () {
  MATCH (f:Family)
  WITH f, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS real
  RETURN count(f) AS families,
         sum(CASE WHEN coalesce(f.memberCount, -1) <> real THEN 1 ELSE 0 END) AS staleFamilies,
         sum(CASE WHEN real = 0 THEN 1 ELSE 0 END) AS emptyFamilies
}
RETURN COUNT { (:Model) } AS models,
       COUNT { (m:Model) WHERE m.isAdapter } AS adapters,
       modelsByStatus,
       families, staleFamilies, emptyFamilies,
       COUNT { (m:Model {status: 'ok'}) WHERE NOT EXISTS { (m)-[:IN_FAMILY]->(:Family) } } AS unplacedModels,
       COUNT { (:Model)-[:DERIVED_FROM]->(:Model) } AS derivedEdges,
       COUNT { (:Model)-[:DECLARED_BASE]->() } AS declaredEdges,
       COUNT { (:ExternalModel) } AS externalModels,
       COUNT { (:Fingerprint) } AS fingerprints,
       jobsByState
