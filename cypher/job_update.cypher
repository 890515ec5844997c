// Update a job's state, progress (0..1), message and result (a JSON string); a null
// parameter leaves that field as it is.  No row when the job is unknown.
// Parameters: $id, $state (queued|running|succeeded|failed or null), $progress, $message, $result
MATCH (j:Job {id: $id})
SET j.state = coalesce($state, j.state),
    j.progress = coalesce($progress, j.progress),
    j.message = coalesce($message, j.message),
    j.result = coalesce($result, j.result),
    j.updatedAt = datetime()
RETURN j {.*} AS job
