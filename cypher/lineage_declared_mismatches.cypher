// Models whose declared lineage (model card base_model / base_model_relation, adapter
// config) disagrees with the recovered one: the declared base is none of the recovered
// parents (a different parent, no recovered parent, or a base outside the catalogue), or
// it is a recovered parent but by another relation.  Hugging Face's 'quantized' is our
// 'quantization'; a declaration without a relation only checks the parent.
// Columns: the model, the declared base and relation, the recovered parents (main one
// first) and the relation of the recovered edge to the declared base (null when there
// is none); 'reason' is 'parent' or 'relation'.
// Parameters: $id (a model id, or null for every model), $limit (>= 1)
MATCH (m:Model)-[d:DECLARED_BASE]->(declared)
WHERE $id IS NULL OR m.id = $id
OPTIONAL MATCH (m)-[toDeclared:DERIVED_FROM]->(declared)
WITH m, d, declared, toDeclared,
     CASE d.relation WHEN 'quantized' THEN 'quantization' ELSE d.relation END AS declaredRelation,
     COLLECT {
       MATCH (m)-[r:DERIVED_FROM]->(p:Model)
       RETURN {id: p.id, name: p.name, relation: coalesce(r.relation, 'finetune'), confidence: r.confidence}
       ORDER BY coalesce(r.weight, 1.0) DESC, p.name
     } AS recovered
WITH m, d, declared, toDeclared, declaredRelation, recovered,
     CASE
       WHEN toDeclared IS NULL THEN 'parent'
       WHEN declaredRelation IS NOT NULL AND declaredRelation <> coalesce(toDeclared.relation, 'finetune')
         THEN 'relation'
     END AS reason
WHERE reason IS NOT NULL
RETURN m.id AS id, m.name AS name, d.relation AS relation, reason,
       declared.name AS declaredName, declared.id AS declaredId,
       declared:ExternalModel AS declaredExternal,
       recovered[0].id AS recoveredId, recovered[0].name AS recoveredName,
       recovered[0].confidence AS confidence, recovered[0].relation AS recoveredRelation,
       coalesce(toDeclared.relation, CASE WHEN toDeclared IS NULL THEN null ELSE 'finetune' END)
         AS relationToDeclared,
       recovered AS recoveredParents
ORDER BY m.name, declared.name
LIMIT $limit
