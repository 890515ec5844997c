// Serialised fingerprints (heritage.reading.fingerprint.Fingerprint.to_bytes) of these models.
// Parameters: $ids = [model id, ...]
UNWIND $ids AS id
MATCH (:Model {id: id})<-[:OF]-(fp:Fingerprint)
RETURN id, fp.sha256 AS sha256, fp.version AS version, fp.data AS data
