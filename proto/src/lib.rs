//! gRPC protocol of the rfm coordinator and workers.
