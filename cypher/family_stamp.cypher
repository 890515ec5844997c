// A family's version (bumped by every rewrite of its tree), read after its genealogy: a
// version other than the one the genealogy read means a rewrite landed meanwhile and the
// genealogy is read again.  No row when the family is unknown.
// Parameters: $id
MATCH (f:Family {id: $id})
RETURN f.version AS version
