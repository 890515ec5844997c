// Jobs still queued or running, with the process that owns them (for the start-up check).
// Parameters: none
MATCH (j:Job)
WHERE j.state IN ['queued', 'running']
RETURN j.id AS id, j.owner AS owner, j.state AS state
