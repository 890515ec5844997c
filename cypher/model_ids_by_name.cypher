// Which of these names are taken, and by which model (and content).
// Parameters: $names = [name, ...]
UNWIND $names AS name
MATCH (m:Model {name: name})
RETURN name, m.id AS id, m.sha256 AS sha256
