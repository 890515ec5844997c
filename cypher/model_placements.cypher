// Placement vectors (Model.placement, 256 floats) of these models, for the candidate
// search of a recluster; null for models stored without one (adapters).
// Parameters: $ids = [model id, ...]
UNWIND $ids AS id
MATCH (m:Model {id: id})
RETURN m.id AS id, m.placement AS placement
