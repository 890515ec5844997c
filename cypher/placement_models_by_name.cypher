// Placed models whose name is one of these (a declared base resolved by name), with
// their family: where an adapter that names its base is attached.
// Parameters: $names = [name, ...]
UNWIND $names AS name
MATCH (m:Model {name: name})-[:IN_FAMILY]->(f:Family)
WHERE m.status = 'ok'
RETURN m.id AS id, m.name AS name, m.sha256 AS sha256, f.id AS familyId, m.isAdapter AS isAdapter
