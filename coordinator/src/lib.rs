//! The rfm coordinator.
