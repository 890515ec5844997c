// Models whose declared lineage (model card base_model / base_model_relation, adapter
// config) disagrees with the recovered one; one row per model.
// A merge declaration (relation 'merge', or several declared bases) agrees when the
// recovered parents are exactly the declared bases, each by a 'merge' edge: a declared
// base that is not a recovered parent, or a recovered parent that was not declared, is a
// 'parent' disagreement. Any other declaration names one base: 'parent' when it is none
// of the recovered parents (or outside the catalogue), 'relation' when it is one by
// another relation. Hugging Face's 'quantized' is our 'quantization'; a declaration
// without a relation only checks the parents.
// Columns: the model, the declared relation (as the card words it), 'reason', the
// declared base the row is about (the first declared base missing among the recovered
// parents, else the first declared base) and the relation of the recovered edge to it
// (null when there is none), every declared base, every recovered parent (main one
// first) and the main recovered parent.
// Parameters: $id (a model id, or null for every model), $limit (>= 1)
MATCH (m:Model)-[d:DECLARED_BASE]->(declared)
WHERE $id IS NULL OR m.id = $id
WITH m, d, declared ORDER BY declared.name
WITH m, collect(declared) AS bases, collect(d.relation) AS words
WITH m, bases, head(words) AS declaredWord,
     COLLECT {
       MATCH (m)-[r:DERIVED_FROM]->(p:Model)
       RETURN {id: p.id, name: p.name, relation: coalesce(r.relation, 'finetune'), confidence: r.confidence}
       ORDER BY coalesce(r.weight, 1.0) DESC, p.name
     } AS recovered
WITH m, bases, declaredWord, recovered,
     CASE declaredWord WHEN 'quantized' THEN 'quantization' ELSE declaredWord END AS declaredRelation,
     declaredWord = 'merge' OR size(bases) > 1 AS mergeDeclared,
     [p IN recovered | p.id] AS recoveredIds,
     [b IN bases WHERE b:Model | b.id] AS baseIds
WITH m, bases, declaredWord, recovered, declaredRelation, mergeDeclared, baseIds,
     [b IN bases WHERE NOT b:Model OR NOT b.id IN recoveredIds] AS missing,
     [p IN recovered WHERE NOT p.id IN baseIds] AS extra
WITH m, bases, declaredWord, recovered, missing,
     coalesce(head(missing), head(bases)) AS subject,
     CASE
       WHEN size(missing) > 0 OR (mergeDeclared AND size(extra) > 0) THEN 'parent'
       WHEN declaredRelation IS NULL THEN null
       WHEN mergeDeclared AND any(p IN recovered WHERE p.relation <> declaredRelation) THEN 'relation'
       WHEN NOT mergeDeclared AND any(p IN recovered WHERE p.id = head(baseIds) AND p.relation <> declaredRelation)
         THEN 'relation'
     END AS reason
WHERE reason IS NOT NULL
RETURN m.id AS id, m.name AS name, declaredWord AS relation, reason,
       subject.name AS declaredName, CASE WHEN subject:Model THEN subject.id END AS declaredId,
       subject:ExternalModel AS declaredExternal,
       [b IN bases | {id: CASE WHEN b:Model THEN b.id END, name: b.name, external: b:ExternalModel}]
         AS declaredBases,
       recovered[0].id AS recoveredId, recovered[0].name AS recoveredName,
       recovered[0].confidence AS confidence, recovered[0].relation AS recoveredRelation,
       head([p IN recovered WHERE subject:Model AND p.id = subject.id | p.relation]) AS relationToDeclared,
       recovered AS recoveredParents
ORDER BY m.name
LIMIT $limit
