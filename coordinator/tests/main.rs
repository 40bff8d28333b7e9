//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod cluster;
mod data_root;
mod deploy;
mod excel;
mod faults;
mod formats;
mod leases;
mod limits;
mod load;
mod observability;
mod publish;
mod remote;
mod roles;
mod shutdown;
mod support;
mod task_cancel;
mod tls;
mod upload;
mod watch;
