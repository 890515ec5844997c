// Every model that takes part in genealogies (status ok), with what reclustering needs
// before reading any fingerprint: keys, backbone key and block count (which models are
// compared, and whose placement vectors are comparable), and whether a fingerprint is stored.
// Parameters: none
MATCH (m:Model {status: 'ok'})
RETURN m.id AS id, m.name AS name, m.sha256 AS sha256, m.isAdapter AS isAdapter,
       m.structureHash AS structureHash, m.backboneKey AS backboneKey, m.layers AS layers,
       m.declaredBase AS declaredBase,
       EXISTS { (m)<-[:OF]-(:Fingerprint) } AS hasFingerprint
ORDER BY m.createdAt, m.name
