CREATE TABLE work (
    id BLOB NOT NULL PRIMARY KEY,
    org TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    due INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX work_claim ON work (status, due);
CREATE INDEX work_org ON work (org, created);
