-- A work item may name an org that does not exist yet (a registration queued by ConnectAsync):
-- the queue no longer references orgs; deleting an org deletes its items explicitly.
ALTER TABLE work DROP CONSTRAINT IF EXISTS work_org_fkey;
