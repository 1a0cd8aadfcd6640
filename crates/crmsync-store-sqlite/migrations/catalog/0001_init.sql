CREATE TABLE orgs (
    name TEXT NOT NULL PRIMARY KEY,
    created_on INTEGER NOT NULL
);
CREATE TABLE users (
    id BLOB NOT NULL PRIMARY KEY,
    org TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_on INTEGER NOT NULL,
    UNIQUE (org, email)
);
