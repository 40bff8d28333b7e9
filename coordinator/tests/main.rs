//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod cluster;
mod deploy;
mod faults;
mod leases;
mod load;
mod observability;
mod publish;
mod shutdown;
mod support;
mod task_cancel;
mod tls;
