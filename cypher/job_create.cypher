// Create a queued job.  $owner names the process that runs it ("host:pid:token"), so a
// job left `running` by a process that is gone can be recognised and marked failed.
// Parameters: $id, $kind, $message, $owner
CREATE (j:Job {id: $id, kind: $kind, state: 'queued', progress: 0.0, message: $message,
               owner: $owner, createdAt: datetime(), updatedAt: datetime()})
RETURN j {.*} AS job
