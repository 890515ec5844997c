// Placed full models of one backbone (backbone key: models whose matrices align, whatever
// their heads, buffers, vocabulary or number of blocks) with their families, placement
// vectors and block counts: the candidates when the backbone has few models (see
// placement_architecture_size).
// Parameters: $backboneKey, $exclude = [model id, ...], $limit
MATCH (m:Model {backboneKey: $backboneKey})-[:IN_FAMILY]->(f:Family)
WHERE m.status = 'ok' AND NOT m.isAdapter AND NOT m.id IN $exclude
RETURN m.id AS id, m.sha256 AS sha256, f.id AS familyId, m.placement AS placement, m.layers AS layers
ORDER BY m.createdAt, m.id
LIMIT $limit
