// Create models together with their fingerprints (one row each), in one statement.
// Parameters: $rows = [{props: {id, name, description, sha256, format, params, tensors,
//   layers, structureHash, dtype, isAdapter, adapterRank, kurtosis, status, error, path, uploaded,
//   declaredBase, declaredRelation, declaredBases, quantization, revision, placement}, fingerprint: <bytes>, fingerprintVersion: 1}]
// Fails with a constraint violation (and writes nothing) when an id, a name or the
// content (Fingerprint.sha256) is already taken.
UNWIND $rows AS row
CREATE (m:Model)
SET m = row.props, m.createdAt = datetime(), m.processedAt = datetime()
CREATE (fp:Fingerprint {modelId: m.id, sha256: m.sha256, data: row.fingerprint, version: row.fingerprintVersion})-[:OF]->(m)
RETURN m.id AS id, m.name AS name
