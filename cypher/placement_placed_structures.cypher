// Which of these backbones (backbone keys) already have placed full models: only new
// models of those backbones need a search for stored relatives.
// Parameters: $backboneKeys = [key, ...]
UNWIND $backboneKeys AS key
MATCH (m:Model {backboneKey: key})
WHERE m.status = 'ok' AND NOT m.isAdapter AND EXISTS { (m)-[:IN_FAMILY]->(:Family) }
RETURN DISTINCT key AS backboneKey
