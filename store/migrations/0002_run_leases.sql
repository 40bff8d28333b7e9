-- Run leases: a running run has an owner (host, pid, kind of process, a random
-- instance id) and a lease its owner renews while the run is in progress. A
-- run whose lease expired is marked `abandoned` by the next process that
-- starts with this database (its owner was killed or lost the database).

ALTER TABLE rfm_runs
    ADD COLUMN owner_host       text,
    ADD COLUMN owner_pid        integer,
    ADD COLUMN owner_kind       text,
    ADD COLUMN owner_instance   text,
    ADD COLUMN lease_expires_at timestamptz;

ALTER TABLE rfm_runs DROP CONSTRAINT rfm_runs_status_check;
ALTER TABLE rfm_runs ADD CONSTRAINT rfm_runs_status_check
    CHECK (status IN ('running', 'published', 'failed', 'abandoned'));

-- Runs recorded before leases have no owner renewing them: their lease ends
-- now, and the next start marks them abandoned.
UPDATE rfm_runs SET lease_expires_at = now() WHERE status = 'running';

CREATE INDEX rfm_runs_running ON rfm_runs (owner_instance, lease_expires_at)
    WHERE status = 'running';
