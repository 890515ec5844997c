// A page of models matching optional filters, newest first (then by name), and how many
// match in all.  Each filter is null for "any".
// Parameters: $q (case-insensitive substring of name or description), $familyId,
//   $format, $status, $skip (>= 0), $limit (>= 1)
MATCH (m:Model)
WHERE ($q IS NULL OR toLower(m.name) CONTAINS toLower($q)
       OR toLower(coalesce(m.description, '')) CONTAINS toLower($q))
  AND ($format IS NULL OR m.format = $format)
  AND ($status IS NULL OR m.status = $status)
  AND ($familyId IS NULL OR EXISTS { (m)-[:IN_FAMILY]->(:Family {id: $familyId}) })
WITH m ORDER BY m.createdAt DESC, m.name
WITH collect(m) AS matched
RETURN size(matched) AS total,
       [m IN matched[$skip..($skip + $limit)] | {
          model: m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision},
          familyId: head([(m)-[:IN_FAMILY]->(f:Family) | f.id]),
          parentId: head([(m)-[:DERIVED_FROM]->(p:Model) | p.id]),
          parentName: head([(m)-[:DERIVED_FROM]->(p:Model) | p.name]),
          confidence: head([(m)-[r:DERIVED_FROM]->(:Model) | r.confidence])
       }] AS items
