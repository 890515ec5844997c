// Recent jobs, newest first, optionally of one state.
// Parameters: $state (or null for any), $limit
MATCH (j:Job)
WHERE $state IS NULL OR j.state = $state
RETURN j {.*} AS job
ORDER BY j.createdAt DESC, j.id DESC
LIMIT $limit
