-- `epoch` identifies this incarnation of the organization: a schema cache stamped with
-- another epoch (an org deleted and created again under the same name) is never reused.
CREATE TABLE _org_state (
    id integer NOT NULL PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    metadata_version bigint NOT NULL,
    epoch uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO _org_state (id, version, metadata_version) VALUES (1, 0, 0);
CREATE TABLE _entities (
    logical_name text NOT NULL PRIMARY KEY,
    position integer NOT NULL,
    definition text NOT NULL
);
-- Index names start with '_' so they never collide with the `ix_<entity>_<attribute>`
-- indexes created from metadata (tables and indexes share one namespace per schema).
CREATE TABLE _tombstones (
    entity text NOT NULL,
    id uuid NOT NULL,
    versionnumber bigint NOT NULL,
    deletedon timestamptz NOT NULL
);
CREATE INDEX _ix_tombstones_version ON _tombstones (entity, versionnumber);
CREATE INDEX _ix_tombstones_deletedon ON _tombstones (deletedon);
CREATE TABLE _change_horizon (
    entity text NOT NULL PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE _state (
    key text NOT NULL PRIMARY KEY,
    value text NOT NULL
);
