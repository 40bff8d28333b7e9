-- Cut points saved with the run: for each score 1–5 of R, F and M, the
-- smallest and largest value among the customers that got it, as scoring
-- computed them (`{"recency": [[k, min, max], …], "frequency": …,
-- "monetary": [[k, "min", "max"], …]}`). NULL for runs published before.

ALTER TABLE rfm_runs ADD COLUMN cut_points jsonb;
