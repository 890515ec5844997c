// Create one Model node from the property map $props (must contain id).
// Fails with a constraint violation when a Model with that id exists.
CREATE (m:Model {id: $props.id})
SET m += $props
RETURN properties(m) AS model
