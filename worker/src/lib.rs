//! The rfm worker.
