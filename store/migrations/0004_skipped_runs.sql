-- Scheduled runs that found nothing new to read are recorded `skipped`, with
-- their reason in `error` ("no new or changed files"). The rfm_latest_*
-- views keep reading published runs only.

ALTER TABLE rfm_runs DROP CONSTRAINT rfm_runs_status_check;
ALTER TABLE rfm_runs ADD CONSTRAINT rfm_runs_status_check
    CHECK (status IN ('running', 'published', 'failed', 'abandoned', 'skipped'));
