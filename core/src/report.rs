//! The run report (`run.json`): what was read, what was excluded and why, the
//! malformed samples, the options and the result's headline figures; for a
//! failed run, the stage that failed and the error.

use serde::{Deserialize, Serialize};

use crate::engine::{InputFile, RunOptions};
use crate::ledger::{Excluded, LineLedger};
use crate::score::CutPoints;
use crate::status::RunStatus;

/// A malformed line as reported: file path and 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSample {
    pub file: String,
    pub line: Option<u64>,
    pub text: String,
    pub problem: String,
}

/// The most characters a malformed sample's text or problem keeps in the
/// report (a longer one is cut and ends with `… (N bytes)`).
pub const MAX_SAMPLE_CHARS: usize = 1024;

/// The stage of a run that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Finding the input files and opening them.
    Input,
    /// Reading a file's header and finding its columns.
    Header,
    /// Starting the job: the cluster, the coordinator's checks, the chunks.
    Planning,
    /// Reading the chunks on the workers (a task failed, workers lost, cancelled).
    Tasks,
    /// Too many malformed lines.
    MalformedLimit,
    /// The as-of date is not after the latest purchase.
    AsOf,
    /// Scoring the merged state.
    Scoring,
    /// Writing the result files.
    Writing,
    /// Recording or publishing the run in the database.
    Database,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Header => "header",
            Stage::Planning => "planning",
            Stage::Tasks => "tasks",
            Stage::MalformedLimit => "malformed-limit",
            Stage::AsOf => "as-of",
            Stage::Scoring => "scoring",
            Stage::Writing => "writing",
            Stage::Database => "database",
            Stage::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The options a run used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    pub delimiter: String,
    pub decimal_comma: bool,
    pub date_format: Option<String>,
    pub as_of: Option<String>,
    /// `--until`: purchases after this day were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub max_malformed_share: f64,
    pub chunk_size: u64,
}

/// Columns used in one input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileColumns {
    pub file: String,
    pub bytes: u64,
    /// role → header name used.
    pub columns: Vec<(String, String)>,
    /// The date forms the file used, in words (see
    /// [`crate::ledger::DateForms::describe`]); absent before the file is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_form: Option<String>,
}

/// How a run used the state cache ([`crate::cache`]): input files whose
/// state came from it, files read, and why entries were not used or written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheUse {
    pub hits: u64,
    pub computed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A file `rfm submit --upload` sent to the coordinator: the run's `input`
/// is the coordinator's copy (`uploads/<sha256>.<ext>` under its data root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// The file's path on the machine it was uploaded from.
    pub file: String,
    pub bytes: u64,
    /// SHA-256 of the content (lowercase hex).
    pub sha256: String,
}

/// Everything `run.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// `running`, `succeeded`, `failed` or `skipped` (one of [`RunStatus::REPORTED`]).
    pub status: RunStatus,
    pub input: Vec<String>,
    pub files: Vec<FileColumns>,
    pub options: ReportOptions,
    pub lines_read: u64,
    pub purchase_lines: u64,
    pub excluded: Excluded,
    pub malformed: u64,
    pub malformed_samples: Vec<ReportSample>,
    pub customers: u64,
    pub as_of: Option<String>,
    /// The day of the first purchase line (absent from older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_purchase: Option<String>,
    pub latest_purchase: Option<String>,
    pub revenue: Option<String>,
    /// What the user should know about how the input was read (an
    /// ambiguous date form); empty when nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub error: Option<String>,
    /// Where a failed run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The value bounds of each score of a succeeded run; absent from the
    /// reports of older versions (readers then compute them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_points: Option<CutPoints>,
    /// How the run used the state cache; absent when it used none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
    /// The file the input was uploaded from (`rfm submit --upload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadedFile>,
}

impl RunReport {
    /// A report with the run's identity, inputs and options, before any figures.
    pub fn begin(run_id: &str, files: &[InputFile], opts: &RunOptions) -> RunReport {
        RunReport {
            run_id: run_id.to_string(),
            status: RunStatus::Running,
            input: files.iter().map(|f| f.path.display().to_string()).collect(),
            files: files
                .iter()
                .map(|f| FileColumns {
                    file: f.path.display().to_string(),
                    bytes: f.layout.len,
                    columns: f.layout.columns.names.clone(),
                    date_form: None,
                })
                .collect(),
            options: ReportOptions {
                delimiter: (opts.parse.delimiter as char).to_string(),
                decimal_comma: opts.parse.decimal_comma,
                date_format: opts
                    .parse
                    .date_format
                    .as_ref()
                    .map(|f| f.as_str().to_string()),
                as_of: opts.as_of.map(crate::date::format_date),
                until: opts.parse.until.map(crate::date::format_date),
                max_malformed_share: opts.max_malformed_share,
                chunk_size: opts.chunk_size,
            },
            lines_read: 0,
            purchase_lines: 0,
            excluded: Excluded::default(),
            malformed: 0,
            malformed_samples: Vec::new(),
            customers: 0,
            as_of: None,
            first_purchase: None,
            latest_purchase: None,
            revenue: None,
            warnings: Vec::new(),
            started_at: utc_now(),
            finished_at: String::new(),
            seconds: 0.0,
            error: None,
            stage: None,
            cut_points: None,
            cache: None,
            upload: None,
        }
    }

    /// A report of a run that failed before its input files were open: what
    /// is known is the input as given and the options.
    pub fn before_input(run_id: &str, input: &str, opts: &RunOptions) -> RunReport {
        let mut report = RunReport::begin(run_id, &[], opts);
        report.input = vec![input.to_string()];
        report
    }

    /// Marks the run failed at `stage` with `error`.
    pub fn fail(&mut self, stage: Stage, error: &str) {
        self.status = RunStatus::Failed;
        self.stage = Some(stage);
        self.error = Some(error.to_string());
    }

    /// Marks a scheduled run skipped, for `reason` (kept as its `error`).
    pub fn skip(&mut self, reason: &str) {
        self.status = RunStatus::Skipped;
        self.stage = None;
        self.error = Some(reason.to_string());
        self.finished_at = self.started_at.clone();
    }

    /// Marks the run succeeded with the result's headline figures: customers,
    /// as-of date, latest purchase, total revenue (2 decimals) and cut points.
    pub fn set_result(&mut self, result: &crate::RfmResult) {
        self.status = RunStatus::Succeeded;
        self.customers = result.customers.len() as u64;
        self.as_of = Some(crate::date::format_date(result.as_of));
        self.first_purchase = result
            .customers
            .iter()
            .map(|c| c.first_purchase)
            .min()
            .map(|t| crate::date::format_date(crate::date::date_of(t)));
        self.latest_purchase = Some(crate::date::format_date(result.latest_purchase));
        self.revenue = Some(result.revenue.to_fixed(2));
        self.cut_points = Some(result.cut_points.clone());
    }

    /// Copies the ledger's figures into the report.
    pub fn set_ledger(&mut self, ledger: &LineLedger) {
        self.lines_read = ledger.lines_read;
        self.purchase_lines = ledger.purchase_lines;
        self.excluded = ledger.excluded;
        self.malformed = ledger.malformed;
        self.malformed_samples = ledger
            .malformed_samples
            .iter()
            .map(|s| ReportSample {
                file: self
                    .input
                    .get(s.file_index as usize)
                    .cloned()
                    .unwrap_or_default(),
                line: s.line,
                text: crate::text::cut(&s.text, MAX_SAMPLE_CHARS).into_owned(),
                problem: crate::text::cut(&s.problem, MAX_SAMPLE_CHARS).into_owned(),
            })
            .collect();
        self.set_date_forms(ledger);
    }

    /// Each file's date forms, and a warning per file whose slash dates all
    /// fit both readings (read month first: the user should know it was a
    /// guess, and how to choose).
    fn set_date_forms(&mut self, ledger: &LineLedger) {
        self.warnings.clear();
        let format = self.options.date_format.clone();
        for (i, forms) in ledger.dates.iter().enumerate() {
            let Some(file) = self.files.get_mut(i) else {
                continue;
            };
            file.date_form = forms.describe(format.as_deref());
            if format.is_none() && forms.ambiguous_only() {
                self.warnings.push(ambiguous_warning(&file.file));
            }
        }
    }
}

/// The warning of a file whose slash dates all fit both month first and day first.
pub fn ambiguous_warning(file: &str) -> String {
    format!(
        "{file}: ambiguous dates: every slash date fits both month first and day first \
         (1/12/2010 is 12 January or 1 December); read month first (M/D/YYYY, the spec's \
         reading); if the file is day first, run again with --date-format '%d/%m/%Y %H:%M'"
    )
}

impl RunReport {
    /// The span of the purchases: `2010-12-01 … 2011-12-09`.
    pub fn purchase_span(&self) -> Option<String> {
        match (&self.first_purchase, &self.latest_purchase) {
            (Some(a), Some(b)) => Some(format!("{a} … {b}")),
            (None, Some(b)) => Some(format!("… {b}")),
            _ => None,
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut s = crate::date::format_timestamp(secs).replace(' ', "T");
    s.push('Z');
    s
}

/// A new run id: UTC time plus 32 random bits in hex (`20111210T101500Z-3fa9c2e1`).
pub fn new_run_id() -> String {
    // 32 random bits: ids made in the same second (a coordinator takes many
    // jobs a second) must not collide.
    let mut bits = [0u8; 4];
    let salt = match getrandom::fill(&mut bits) {
        Ok(()) => u32::from_le_bytes(bits),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            nanos ^ std::process::id().rotate_left(16)
        }
    };
    let stamp = utc_now().replace(['-', ':'], "");
    format!("{stamp}-{salt:08x}")
}
