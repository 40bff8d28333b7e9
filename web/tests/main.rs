//! The integration tests of rfm-web, in one test binary.
