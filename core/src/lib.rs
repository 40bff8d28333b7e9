//! rfm-core: the RFM engine, with no network and no database.
//!
//! Data flows one way: raw CSV bytes ([`scan`]) → classified lines in Arrow
//! batches ([`parse`]) → a mergeable [`partial::PartialState`] per chunk →
//! one merged state → scores and segments ([`score`]) → result files
//! ([`output`]). [`engine`] ties these together for a local run; the worker
//! and coordinator crates use the same pieces across processes.

pub mod atomic;
pub mod aws_profile;
pub mod byte_blocks;
pub mod cache;
pub mod cancel;
pub mod compressed;
pub mod cron;
pub mod customers_csv;
pub mod data_root;
pub mod date;
pub mod engine;
pub mod error;
pub mod excel;
pub mod exit;
pub mod figures;
pub mod format;
pub mod gen;
pub mod gen_formats;
pub mod huge_pages;
pub mod input;
pub mod ledger;
pub mod mapped;
pub mod money;
pub mod output;
pub mod parquet_input;
pub mod parse;
pub mod partial;
pub mod percent;
pub mod rank;
pub mod remote;
pub mod report;
pub mod scan;
pub mod score;
pub mod segment;
pub mod short_bytes;
pub mod split;
pub mod status;
pub mod tables;
pub mod text;
pub mod urgent;
pub mod watch;

pub use cancel::{Cancel, CancelOnDrop};
pub use data_root::DataRoot;
pub use engine::{Chunk, InputFile, RunOptions};
pub use error::{Error, ErrorKind, Result};
pub use partial::PartialState;
pub use score::RfmResult;
pub use segment::Segment;
pub use status::RunStatus;
