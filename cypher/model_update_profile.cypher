// Refresh a model after its weights were re-read: profile properties, placement vector
// and fingerprint; status back to ok.  No row when the model is unknown.
// Parameters: $id, $props (same keys as model_create's props, without id/name),
//   $fingerprint (<bytes>), $fingerprintVersion
MATCH (m:Model {id: $id})
SET m += $props, m.status = 'ok', m.error = null, m.processedAt = datetime()
MERGE (fp:Fingerprint {modelId: m.id})-[:OF]->(m)
SET fp.sha256 = m.sha256, fp.data = $fingerprint, fp.version = $fingerprintVersion
RETURN m.id AS id
