//! gRPC protocol of the rfm coordinator and workers: the generated
//! tonic/prost code of `proto/rfm/v1/rfm.proto`, the protocol version both
//! sides check at registration, and small shared helpers.

pub mod auth;
pub mod cluster_status;
pub mod duration;
pub mod flight;
pub mod ident;
pub mod input;
pub mod keepalive;
pub mod local;
pub mod options;
pub mod report;
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
/// Version 4: the coordinator alone scores: `GetJobResult` carries the run
/// report as protobuf fields and clients fetch the scored tables over Arrow
/// Flight on the coordinator's port (a `ResultTicket`), never the merged state;
/// tasks carry their input file as protobuf fields, not JSON.
/// Version 5: run options carry `until`; ledgers count each file's date
/// forms and the lines after `until`; reports carry the first purchase, each
/// file's date form and warnings.
/// Version 6: input files carry their format (`csv.gz`, `csv.zst`, `parquet`,
/// `xlsx`) and a workbook's sheets, whose tasks are row ranges, not byte
/// ranges: a version-5 worker would read them as CSV. Run options carry
/// `--format`, `--sheet` and `no_cache`; reports say how the run used the
/// state cache (`cache`).
/// Version 7: input files carry a remote object's planned ETag and whether
/// an http(s) object may be read only from public addresses: a version-6
/// worker would read whatever version is there, from any address.
/// Version 8: a state batch carries each customer's invoices as packed keys
/// (`invoices`, 16 bytes each) and those over 15 bytes apart
/// (`long_invoices`): a version-7 state does not decode.
/// Version 9: `SplitTask` cuts a running task short, and `RunTaskResponse`
/// says where the task's range ended (`end`): a version-8 worker answers
/// without it, which reads as a range that ended at byte 0.
/// Version 10: a finished job's `customers.csv` can be fetched as text
/// (`RESULT_TABLE_CUSTOMERS_CSV`), which `rfm submit` writes as it comes: a
/// version-9 coordinator refuses that ticket.
pub const PROTOCOL_VERSION: u32 = 10;

/// A job's watchers get its status at least this often, also when nothing
/// changes: they tell a quiet job from a coordinator that stopped answering.
pub const WATCH_BEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a job state (`JobStatus.state`) is final: succeeded, failed or
/// cancelled.
pub fn is_terminal(state: i32) -> bool {
    [
        v1::JobState::Succeeded,
        v1::JobState::Failed,
        v1::JobState::Cancelled,
    ]
    .iter()
    .any(|s| *s as i32 == state)
}

/// Largest message of an Arrow Flight stream (a worker's partial state, a
/// job's scored table): Flight splits batches into messages of about 2 MiB,
/// but one row is never split.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Largest control message (a submission, a registration, a task, a job
/// reference, a ticket) the coordinator's and the workers' ports decode: a
/// caller cannot make them buffer more than this per call.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 1 << 20;

/// Bytes of file content in one `UploadChunk` of an upload: well below
/// [`MAX_CONTROL_MESSAGE_BYTES`], which bounds every message of the
/// coordinator's service (the chunk's framing fits in the rest).
pub const UPLOAD_CHUNK_BYTES: usize = 512 << 10;
const _: () = assert!(UPLOAD_CHUNK_BYTES + 4096 <= MAX_CONTROL_MESSAGE_BYTES);

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
