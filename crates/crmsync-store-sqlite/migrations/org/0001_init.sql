CREATE TABLE _org_state (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    metadata_version INTEGER NOT NULL
);
INSERT INTO _org_state (id, version, metadata_version) VALUES (1, 0, 0);
CREATE TABLE _entities (
    logical_name TEXT NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL,
    definition TEXT NOT NULL
);
CREATE TABLE _tombstones (
    entity TEXT NOT NULL,
    id BLOB NOT NULL,
    versionnumber INTEGER NOT NULL,
    deletedon INTEGER NOT NULL
);
CREATE INDEX ix_tombstones_version ON _tombstones (entity, versionnumber);
CREATE INDEX ix_tombstones_deletedon ON _tombstones (deletedon);
CREATE TABLE _change_horizon (
    entity TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE _state (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
