// Family size distribution from real membership: how many families have each size.
// Parameters: none
MATCH (f:Family)
WITH COUNT { (:Model)-[:IN_FAMILY]->(f) } AS size
RETURN size, count(*) AS families
ORDER BY size
