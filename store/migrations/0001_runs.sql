-- Runs, their customers and segments, and views over the latest published run.

CREATE TABLE rfm_runs (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id                      text NOT NULL UNIQUE,
    status                      text NOT NULL CHECK (status IN ('running', 'published', 'failed')),
    started_at                  timestamptz NOT NULL,
    finished_at                 timestamptz,
    -- Order of publication: the latest published run has the highest value.
    published_seq               bigint UNIQUE,
    input                       jsonb NOT NULL,
    options                     jsonb NOT NULL,
    as_of                       date,
    latest_purchase             date,
    lines_read                  bigint NOT NULL DEFAULT 0,
    purchase_lines              bigint NOT NULL DEFAULT 0,
    excluded_missing_customer   bigint NOT NULL DEFAULT 0,
    excluded_cancellation       bigint NOT NULL DEFAULT 0,
    excluded_quantity_le_0      bigint NOT NULL DEFAULT 0,
    excluded_price_le_0         bigint NOT NULL DEFAULT 0,
    malformed                   bigint NOT NULL DEFAULT 0,
    malformed_samples           jsonb NOT NULL DEFAULT '[]',
    customers                   bigint NOT NULL DEFAULT 0,
    revenue                     numeric,
    seconds                     double precision,
    error                       text,
    -- The whole run report (run.json).
    report                      jsonb NOT NULL DEFAULT '{}'
);

CREATE SEQUENCE rfm_publish_seq;

CREATE INDEX rfm_runs_published ON rfm_runs (published_seq DESC) WHERE status = 'published';

CREATE TABLE rfm_customers (
    run             bigint NOT NULL REFERENCES rfm_runs (id) ON DELETE CASCADE,
    customer_id     text NOT NULL,
    recency         integer NOT NULL,
    frequency       bigint NOT NULL,
    -- Exact Σ quantity × price; views round it to 2 decimals.
    monetary        numeric NOT NULL,
    first_purchase  timestamp NOT NULL,
    last_purchase   timestamp NOT NULL,
    country         text NOT NULL,
    r               smallint NOT NULL,
    f               smallint NOT NULL,
    m               smallint NOT NULL,
    rfm_score       text NOT NULL,
    segment         text NOT NULL,
    PRIMARY KEY (run, customer_id)
);

CREATE INDEX rfm_customers_segment ON rfm_customers (run, segment);
CREATE INDEX rfm_customers_customer ON rfm_customers (customer_id);

CREATE TABLE rfm_segments (
    run             bigint NOT NULL REFERENCES rfm_runs (id) ON DELETE CASCADE,
    segment         text NOT NULL,
    customers       bigint NOT NULL,
    customers_share numeric NOT NULL,
    -- Exact Σ monetary; views round it to 2 decimals.
    revenue         numeric NOT NULL,
    revenue_share   numeric,
    avg_recency     numeric NOT NULL,
    avg_frequency   numeric NOT NULL,
    avg_monetary    numeric NOT NULL,
    PRIMARY KEY (run, segment)
);

-- The latest published run (one statement's snapshot: never a half-loaded run).
CREATE VIEW rfm_latest_run AS
SELECT *
FROM rfm_runs
WHERE status = 'published'
ORDER BY published_seq DESC
LIMIT 1;

CREATE VIEW rfm_latest_customers AS
SELECT c.customer_id,
       c.recency,
       c.frequency,
       round(c.monetary, 2) AS monetary,
       c.first_purchase,
       c.last_purchase,
       c.country,
       c.r,
       c.f,
       c.m,
       c.rfm_score,
       c.segment,
       c.monetary AS monetary_exact,
       c.run
FROM rfm_customers c
WHERE c.run = (SELECT id FROM rfm_latest_run);

CREATE VIEW rfm_latest_segments AS
SELECT s.segment,
       s.customers,
       s.customers_share,
       round(s.revenue, 2) AS revenue,
       s.revenue_share,
       s.avg_recency,
       s.avg_frequency,
       s.avg_monetary,
       s.revenue AS revenue_exact,
       s.run
FROM rfm_segments s
WHERE s.run = (SELECT id FROM rfm_latest_run);
