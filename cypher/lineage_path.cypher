// The path between two models through their tree: up from $a to their lowest common
// ancestor and down to $b (the tree has one such path).  Nodes in order from $a to $b;
// each edge says which end is the parent, and its relation and weight.  No row when they are not related within 50
// steps (different families) or one of them is unknown.
// Parameters: $a, $b (model ids)
MATCH (a:Model {id: $a}), (b:Model {id: $b})
MATCH p = shortestPath((a)-[:DERIVED_FROM*0..50]-(b))
RETURN [n IN nodes(p) | n {.id, .name}] AS nodes,
       [r IN relationships(p) | {parent: endNode(r).id, child: startNode(r).id,
                                 confidence: r.confidence, relation: coalesce(r.relation, 'finetune'),
                                 weight: r.weight}] AS edges,
       length(p) AS length
