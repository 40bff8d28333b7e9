//! gRPC protocol of the rfm coordinator and workers: the generated
//! tonic/prost code of `proto/rfm/v1/rfm.proto`, the protocol version both
//! sides check at registration, and small shared helpers.

pub mod auth;
pub mod duration;
pub mod ident;
pub mod keepalive;
pub mod options;
pub mod serve;
pub mod size;
pub mod stop;
pub mod tls;

/// Generated messages and services of package `rfm.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("rfm.v1");
}

/// Bumped on every incompatible change of the protocol; a worker or client
/// speaking another version is refused at registration / submission.
/// Version 2: partial states key customers by their decoded UTF-8 text and
/// name the customer whose revenue overflowed.
/// Version 3: workers register with a call secret of their own (the only
/// credential their port accepts) and say whether they serve TLS.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest gRPC message of a result: a `GetJobResult` reply (merged states
/// can be large), decoded by clients, and a Flight stream's messages.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Largest control message (a submission, a registration, a task, a job
/// reference, a ticket) the coordinator's and the workers' ports decode: a
/// caller cannot make them buffer more than this per call.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 1 << 20;

/// Most task slots one worker may register with.
pub const MAX_WORKER_SLOTS: u32 = 1024;

/// gRPC metadata key a coordinator sets on a refused call whose cause is its
/// run database (value [`DATABASE_ERROR`]), so that clients can exit with the
/// database exit code rather than the cluster one.
pub const ERROR_CLASS_KEY: &str = "rfm-error-class";
/// Value of [`ERROR_CLASS_KEY`] for a database failure.
pub const DATABASE_ERROR: &str = "database";
/// Value of [`ERROR_CLASS_KEY`] for a coordinator that is shutting down.
pub const SHUTTING_DOWN: &str = "shutting-down";

/// gRPC metadata key of a `CancelJob` call saying why the job is cancelled
/// (e.g. `interrupted` when `rfm submit` got SIGINT/SIGTERM); the job's error
/// and its run in the database say so. Without it: "cancelled by the user".
pub const CANCEL_REASON_KEY: &str = "rfm-cancel-reason";

/// A refusal caused by the run database, marked with [`ERROR_CLASS_KEY`].
pub fn database_status(message: String) -> tonic::Status {
    let mut status = tonic::Status::unavailable(message);
    status.metadata_mut().insert(
        ERROR_CLASS_KEY,
        tonic::metadata::MetadataValue::from_static(DATABASE_ERROR),
    );
    status
}

/// Whether a refused call was caused by the coordinator's run database.
pub fn is_database_status(status: &tonic::Status) -> bool {
    status
        .metadata()
        .get(ERROR_CLASS_KEY)
        .is_some_and(|v| v.as_bytes() == DATABASE_ERROR.as_bytes())
}

/// A refusal of a coordinator that is shutting down (UNAVAILABLE, marked
/// with [`ERROR_CLASS_KEY`]).
pub fn shutting_down_status(message: String) -> tonic::Status {
    let mut status = tonic::Status::unavailable(message);
    status.metadata_mut().insert(
        ERROR_CLASS_KEY,
        tonic::metadata::MetadataValue::from_static(SHUTTING_DOWN),
    );
    status
}

/// Whether a call was refused because the coordinator is shutting down.
pub fn is_shutting_down_status(status: &tonic::Status) -> bool {
    status
        .metadata()
        .get(ERROR_CLASS_KEY)
        .is_some_and(|v| v.as_bytes() == SHUTTING_DOWN.as_bytes())
}
