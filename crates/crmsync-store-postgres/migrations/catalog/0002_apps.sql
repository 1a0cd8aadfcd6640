CREATE TABLE apps (
    client_id uuid NOT NULL PRIMARY KEY,
    org text NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    name text NOT NULL,
    secret_hash text NOT NULL,
    role text NOT NULL,
    created_on timestamptz NOT NULL
);
CREATE INDEX apps_org ON apps (org, created_on);
