//! Terminal dashboard of rfm runs.
