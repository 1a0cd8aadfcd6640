CREATE TABLE work (
    id uuid NOT NULL PRIMARY KEY,
    org text NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    kind text NOT NULL,
    payload text NOT NULL,
    status text NOT NULL,
    due timestamptz NOT NULL,
    lease_owner text,
    lease_expires timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    result text,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);
CREATE INDEX work_claim ON work (status, due);
CREATE INDEX work_org ON work (org, created);
