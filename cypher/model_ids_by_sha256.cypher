// Which of these contents (SHA-256 of the weight files) are already in the catalogue.
// Parameters: $sha256s = [hex digest, ...]
UNWIND $sha256s AS sha
MATCH (m:Model {sha256: sha})
RETURN sha AS sha256, m.id AS id, m.name AS name
