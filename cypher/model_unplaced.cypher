// Models that are ok but belong to no family yet (left by an interrupted batch import),
// oldest first: the placement step picks them up.
// Parameters: none
MATCH (m:Model {status: 'ok'})
WHERE NOT EXISTS { (m)-[:IN_FAMILY]->(:Family) }
RETURN m.id AS id, m.name AS name, m.sha256 AS sha256, m.isAdapter AS isAdapter,
       m.structureHash AS structureHash, m.backboneKey AS backboneKey, m.declaredBase AS declaredBase
ORDER BY m.createdAt, m.name
