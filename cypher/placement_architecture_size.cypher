// How many models share this backbone (Fingerprint.backbone_key: the compared matrices'
// names and shapes per block), from the index alone: it decides whether a new model is
// compared with all of them or with the vector index's nearest candidates.
// Parameters: $backboneKey
MATCH (m:Model {backboneKey: $backboneKey})
RETURN count(m) AS models
