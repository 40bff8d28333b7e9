//! PostgreSQL sink of rfm runs.
