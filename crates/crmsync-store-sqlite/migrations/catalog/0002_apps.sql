CREATE TABLE apps (
    client_id BLOB NOT NULL PRIMARY KEY,
    org TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_on INTEGER NOT NULL
);
CREATE INDEX apps_org ON apps (org, created_on);
