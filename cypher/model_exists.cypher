// Which of these model ids exist.
// Parameters: $ids = [model id, ...]
UNWIND $ids AS id
OPTIONAL MATCH (m:Model {id: id})
RETURN id, m IS NOT NULL AS exists
