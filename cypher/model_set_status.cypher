// Set a model's processing status (processing|ok|error) and error message.
// An error also takes the model out of its family (membership and parent edges): a model
// whose weights cannot be read takes no part in genealogies until it is reprocessed.
// Parameters: $id, $status, $error (null unless status is error)
MATCH (m:Model {id: $id})
SET m.status = $status, m.error = $error, m.processedAt = datetime()
WITH m
CALL (m) {
  WITH m WHERE $status = 'error'
  OPTIONAL MATCH (m)-[r:IN_FAMILY|DERIVED_FROM]->()
  DELETE r
}
RETURN m.id AS id, m.status AS status
