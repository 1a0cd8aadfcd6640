-- A work item may name an org that does not exist yet (a registration queued by ConnectAsync):
-- the queue no longer references orgs; deleting an org deletes its items explicitly.
CREATE TABLE work_next (
    id BLOB NOT NULL PRIMARY KEY,
    org TEXT NOT NULL,
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
INSERT INTO work_next SELECT id, org, kind, payload, status, due, lease_owner, lease_expires, attempts,
    last_error, result, created, updated FROM work;
DROP TABLE work;
ALTER TABLE work_next RENAME TO work;
CREATE INDEX work_claim ON work (status, due);
CREATE INDEX work_org ON work (org, created);
