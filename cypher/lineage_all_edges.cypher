// Every recovered DERIVED_FROM edge of the catalogue, by model name (parent, child).
// Parameters: none
MATCH (c:Model)-[:DERIVED_FROM]->(p:Model)
RETURN p.name AS parent, c.name AS child
ORDER BY parent, child
