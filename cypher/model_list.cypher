// A page of models matching optional filters, newest first (then by name), and how many
// match in all.  Each filter is null for "any".  Each item lists the model's recovered
// parents, main one first (as in model_get).
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
          model: m {.id, .name, .description, .sha256, .format, .params, .tensors, .layers, .structureHash, .dtype, .isAdapter, .adapterRank, .kurtosis, .status, .error, .createdAt, .processedAt, .path, .uploaded, .declaredBase, .declaredRelation, .declaredBases, .quantization, .revision},
          familyId: head([(m)-[:IN_FAMILY]->(f:Family) | f.id]),
          parentId: COLLECT { MATCH (m)-[r:DERIVED_FROM]->(p:Model)
                              RETURN p.id ORDER BY coalesce(r.weight, 1.0) DESC, p.name }[0],
          parentName: COLLECT { MATCH (m)-[r:DERIVED_FROM]->(p:Model)
                                RETURN p.name ORDER BY coalesce(r.weight, 1.0) DESC, p.name }[0],
          confidence: COLLECT { MATCH (m)-[r:DERIVED_FROM]->(p:Model)
                                RETURN r.confidence ORDER BY coalesce(r.weight, 1.0) DESC, p.name }[0],
          parents: COLLECT {
            MATCH (m)-[r:DERIVED_FROM]->(p:Model)
            RETURN {id: p.id, name: p.name, relation: coalesce(r.relation, 'finetune'), weight: r.weight,
                    confidence: r.confidence, distance: r.distance, method: r.method, aligned: r.aligned} AS parent
            ORDER BY coalesce(r.weight, 1.0) DESC, p.name
          }
       }] AS items
