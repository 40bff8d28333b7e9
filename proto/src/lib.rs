//! gRPC protocol of the rfm coordinator and workers: the generated
//! tonic/prost code of `proto/rfm/v1/rfm.proto`, the protocol version both
//! sides check at registration, and small shared helpers.

pub mod auth;
pub mod duration;
pub mod options;
pub mod serve;

/// Generated messages and services of package `rfm.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("rfm.v1");
}

/// Bumped on every incompatible change of the protocol; a worker or client
/// speaking another version is refused at registration / submission.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest gRPC message either side accepts (merged states can be large).
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;
