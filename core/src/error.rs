//! Errors of the engine. Each names the file, setting or value at fault and
//! says what to do; [`Error::kind`] sorts them for exit codes.

use std::path::PathBuf;

/// Broad classes of failure, for exit codes and retry decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad option value.
    Usage,
    /// The input cannot be read or is not usable data (deterministic: never retried).
    Input,
    /// Writing results failed.
    Output,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid option {option}: {message}")]
    InvalidOption { option: String, message: String },

    #[error("{}: cannot read: {source}; check that the path exists and is readable", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A path outside the data root, or missing: one message for both, so
    /// that it never tells whether a path outside the root exists.
    #[error("{}: no such input file under the data root; give a path relative to the data root (or an absolute path under it) of a readable file, without links leading out of the root", path.display())]
    NotInDataRoot { path: PathBuf },

    #[error("no input files match {spec:?}; give a CSV file, a directory holding *.csv files, or a glob")]
    NoInput { spec: String },

    #[error("{}: the file is empty; expected a CSV header line and data lines", path.display())]
    EmptyFile { path: PathBuf },

    #[error("{}: only a header, no data lines", path.display())]
    NoDataLines { path: PathBuf },

    #[error("{}: required column {role} is missing (accepted names: {accepted}); header found: {header}{hint}", path.display())]
    MissingColumn {
        path: PathBuf,
        role: &'static str,
        accepted: &'static str,
        header: String,
        hint: String,
    },

    #[error("{malformed} of {lines_read} lines are malformed ({share:.2}% > limit {limit:.2}%); first: {first}; fix the input, or raise --max-malformed-share")]
    TooManyMalformed {
        malformed: u64,
        lines_read: u64,
        share: f64,
        limit: f64,
        first: String,
    },

    #[error("{}: {count} dates such as {example:?} have a first field above 12, so they are not month first (M/D/YYYY, how rfm reads slash dates without a format); if the file is day first, run again with --date-format '{format}'", path.display())]
    DayFirstDates {
        path: PathBuf,
        count: u64,
        example: String,
        format: String,
    },

    #[error("as-of {as_of} is not after the latest purchase date {latest}; give a later --as-of or leave it out")]
    AsOfTooEarly { as_of: String, latest: String },

    #[error("no purchase line in {input}: {ledger}; a purchase line needs a customer id, an invoice not starting with C, and a quantity and a price above 0")]
    NoPurchases { input: String, ledger: String },

    #[error("money overflow: {what} is not {}, the range rfm computes exactly; check the input for a wrong quantity or price, or run on smaller parts of the input", crate::money::RANGE_TEXT)]
    Overflow { what: String },

    #[error("cannot write results to {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: the file changed while being read: was {was} bytes, now {now}; run again on a stable copy", path.display())]
    InputChanged { path: PathBuf, was: u64, now: u64 },

    /// A mapped input truncated in place while a chunk read it
    /// ([`crate::mapped`]): what was read held zeros for the lost bytes.
    #[error("{}: the file was cut short by another program while being read; nothing read from it was used: run again on a stable copy", path.display())]
    InputCutShort { path: PathBuf },

    /// An `s3://` or `http(s)://` input that cannot be read: what is missing.
    #[error("{url}: {message}")]
    Remote { url: String, message: String },

    #[error("{}: the header line is longer than {limit} bytes; check the delimiter and the quoting, or raise --max-record-size", path.display())]
    HeaderTooLong { path: PathBuf, limit: u64 },

    #[error("{}: not a readable {format} file: {message}; check that the file is complete (a download or copy may have been cut short) and that it is {format} (or give --format)", path.display())]
    BadInput {
        path: PathBuf,
        format: &'static str,
        message: String,
    },

    #[error("{}: not a readable Excel workbook: {message}; check that the file is a complete .xlsx or .xls (download or copy it again), or give --format csv for a CSV file", path.display())]
    Workbook { path: PathBuf, message: String },

    #[error("{}: the workbook's part {entry:?} {message}", path.display())]
    WorkbookTooLarge {
        path: PathBuf,
        entry: String,
        message: String,
    },

    #[error("{}: the workbook has no sheet {sheet:?}; its sheets are: {sheets}; give --sheet with one of those names (or no --sheet for every sheet)", path.display())]
    MissingSheet {
        path: PathBuf,
        sheet: String,
        sheets: String,
    },

    /// The work was stopped on request (a cancelled task or a client gone);
    /// never shown to a user.
    #[error("cancelled")]
    Cancelled,

    #[error("partial state is not valid: {0}")]
    BadState(String),

    /// A mapped state cache entry cut short by another program while the
    /// run read it (see [`crate::mapped`]).
    #[error("{}: this state cache entry was cut short by another program while the run read it; nothing was written: run again (the entry is then recomputed)", path.display())]
    CacheEntryCut { path: PathBuf },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOption { .. } => ErrorKind::Usage,
            Error::Output { .. } => ErrorKind::Output,
            _ => ErrorKind::Input,
        }
    }

    /// The stage of a run this error stops.
    pub fn stage(&self) -> crate::report::Stage {
        use crate::report::Stage;
        match self {
            Error::InvalidOption { .. }
            | Error::Unreadable { .. }
            | Error::NoInput { .. }
            | Error::NotInDataRoot { .. }
            | Error::InputChanged { .. }
            | Error::InputCutShort { .. }
            | Error::BadInput { .. }
            | Error::Workbook { .. }
            | Error::WorkbookTooLarge { .. }
            | Error::MissingSheet { .. }
            | Error::Remote { .. }
            | Error::DayFirstDates { .. } => Stage::Input,
            Error::EmptyFile { .. }
            | Error::NoDataLines { .. }
            | Error::MissingColumn { .. }
            | Error::HeaderTooLong { .. } => Stage::Header,
            Error::Cancelled => Stage::Planning,
            Error::TooManyMalformed { .. } => Stage::MalformedLimit,
            Error::AsOfTooEarly { .. } => Stage::AsOf,
            Error::NoPurchases { .. }
            | Error::Overflow { .. }
            | Error::BadState(_)
            | Error::CacheEntryCut { .. } => Stage::Scoring,
            Error::Output { .. } => Stage::Writing,
        }
    }

    pub fn invalid_option(option: &str, message: impl Into<String>) -> Error {
        Error::InvalidOption {
            option: option.to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
