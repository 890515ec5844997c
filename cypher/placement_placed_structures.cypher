// Which of these architectures (structural hashes) already have placed full models: only
// new models of those architectures need a search for stored relatives.
// Parameters: $structureHashes = [hash, ...]
UNWIND $structureHashes AS hash
MATCH (m:Model {structureHash: hash})
WHERE m.status = 'ok' AND NOT m.isAdapter AND EXISTS { (m)-[:IN_FAMILY]->(:Family) }
RETURN DISTINCT hash AS structureHash
