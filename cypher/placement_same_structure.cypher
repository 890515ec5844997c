// Placed full models of one architecture (structural hash) with their families and
// placement vectors: the candidates when the architecture has few models (see
// placement_architecture_size).
// Parameters: $structureHash, $exclude = [model id, ...], $limit
MATCH (m:Model {structureHash: $structureHash})-[:IN_FAMILY]->(f:Family)
WHERE m.status = 'ok' AND NOT m.isAdapter AND NOT m.id IN $exclude
RETURN m.id AS id, m.sha256 AS sha256, f.id AS familyId, m.placement AS placement
ORDER BY m.createdAt, m.id
LIMIT $limit
