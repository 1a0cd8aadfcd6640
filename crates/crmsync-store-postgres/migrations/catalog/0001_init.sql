CREATE TABLE orgs (
    name text NOT NULL PRIMARY KEY,
    created_on timestamptz NOT NULL
);
CREATE TABLE users (
    id uuid NOT NULL PRIMARY KEY,
    org text NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    email text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL,
    created_on timestamptz NOT NULL,
    UNIQUE (org, email)
);
