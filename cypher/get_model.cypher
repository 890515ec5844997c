// One Model node by id; no row when there is none.
MATCH (m:Model {id: $id})
RETURN properties(m) AS model
