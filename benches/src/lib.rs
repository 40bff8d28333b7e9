//! Benchmarks of rfm: see benches/ and race.sh.
