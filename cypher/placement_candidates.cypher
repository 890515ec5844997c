// Nearest placed models of the same backbone by placement vector (vector index
// `model_placement`, Euclidean): candidates to compare exactly with a new model.
// score = 1 / (1 + d^2) for the Euclidean distance d between the vectors.
// Parameters: $vector (256 floats), $backboneKey, $exclude = [model id, ...],
//   $k (neighbours asked from the index, > $limit to survive the filters), $limit
CALL db.index.vector.queryNodes('model_placement', $k, $vector) YIELD node, score
WHERE node.backboneKey = $backboneKey AND node.status = 'ok' AND NOT node.id IN $exclude
MATCH (node)-[:IN_FAMILY]->(f:Family)
RETURN node.id AS id, node.sha256 AS sha256, f.id AS familyId, score, node.layers AS layers
ORDER BY score DESC
LIMIT $limit
