// One job by id.  No row when unknown.
// Parameters: $id
MATCH (j:Job {id: $id})
RETURN j {.*} AS job
