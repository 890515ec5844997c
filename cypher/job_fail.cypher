// Mark jobs failed with a message (used for jobs whose process is gone).
// Parameters: $ids = [job id, ...], $message
UNWIND $ids AS id
MATCH (j:Job {id: id})
WHERE j.state IN ['queued', 'running']
SET j.state = 'failed', j.message = $message, j.updatedAt = datetime()
RETURN j.id AS id
