// Schema of the heritage graph. Applied by graph.schema.apply_schema(); every
// statement is idempotent (IF NOT EXISTS) so it runs on every start-up.

// One node per model and per family, addressed by their ids.
CREATE CONSTRAINT model_id_unique IF NOT EXISTS
FOR (m:Model) REQUIRE m.id IS UNIQUE;

CREATE CONSTRAINT family_id_unique IF NOT EXISTS
FOR (f:Family) REQUIRE f.id IS UNIQUE;

// Look-ups by content hash (dedup on upload) and by name (search).
CREATE INDEX model_sha256 IF NOT EXISTS
FOR (m:Model) ON (m.sha256);

// ---- catalogue (heritage/catalogue): see cypher/README.md for the graph model ----

// Names are unique: a model is addressed by name in the CLI and the API.  A uniqueness
// constraint cannot coexist with a plain RANGE index on the same property, so the
// original `model_name` range index is dropped (on databases created before this
// constraint) and a TEXT index keeps name search (CONTAINS) fast.
DROP INDEX model_name IF EXISTS;

CREATE CONSTRAINT model_name_unique IF NOT EXISTS
FOR (m:Model) REQUIRE m.name IS UNIQUE;

CREATE TEXT INDEX model_name_text IF NOT EXISTS
FOR (m:Model) ON (m.name);

// One fingerprint per model, and one stored copy per content: the sha256 constraint is
// what makes concurrent imports of the same weights race-free (Model.sha256 keeps its
// plain index for look-ups).
CREATE CONSTRAINT fingerprint_model_unique IF NOT EXISTS
FOR (fp:Fingerprint) REQUIRE fp.modelId IS UNIQUE;

CREATE CONSTRAINT fingerprint_sha256_unique IF NOT EXISTS
FOR (fp:Fingerprint) REQUIRE fp.sha256 IS UNIQUE;

// Placement: candidates of the same backbone, and models still without a family.
CREATE INDEX model_structure_hash IF NOT EXISTS
FOR (m:Model) ON (m.structureHash);

CREATE INDEX model_backbone_key IF NOT EXISTS
FOR (m:Model) ON (m.backboneKey);

CREATE INDEX model_status IF NOT EXISTS
FOR (m:Model) ON (m.status);

// Nearest relatives of a new model among thousands: Model.placement is
// Fingerprint.placement_vector() (256 floats; Euclidean distance ~ relative l2).
CREATE VECTOR INDEX model_placement IF NOT EXISTS
FOR (m:Model) ON m.placement
OPTIONS {indexConfig: {`vector.dimensions`: 256, `vector.similarity_function`: 'euclidean'}};

// Declared bases that are not (yet) in the catalogue.
CREATE CONSTRAINT external_model_name_unique IF NOT EXISTS
FOR (x:ExternalModel) REQUIRE x.name IS UNIQUE;

// Families by architecture (adapter placement) and size (listing).
CREATE INDEX family_structure_hash IF NOT EXISTS
FOR (f:Family) ON (f.structureHash);

CREATE INDEX family_member_count IF NOT EXISTS
FOR (f:Family) ON (f.memberCount);

// Long-running work (recluster, batch import) as jobs.
CREATE CONSTRAINT job_id_unique IF NOT EXISTS
FOR (j:Job) REQUIRE j.id IS UNIQUE;

CREATE INDEX job_state IF NOT EXISTS
FOR (j:Job) ON (j.state);

CREATE INDEX job_created_at IF NOT EXISTS
FOR (j:Job) ON (j.createdAt);
