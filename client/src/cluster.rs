//! Talking to an rfm cluster: submitting a job, drawing its progress from the
//! event stream, fetching the result (the coordinator's report, and the
//! scored tables it streams over Arrow Flight: the client never scores); and
//! the embedded cluster of `rfm run` (a coordinator and a worker in this
//! process, through the same gRPC and Flight services over loopback, the
//! coordinator publishing to the run database like any other). The connection pings the coordinator
//! (HTTP/2 keepalive) and the event stream has an inactivity deadline: a
//! coordinator that stops answering fails the command, never hangs it.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::Ticket;
use prost::Message;
use rfm_coordinator::flight_decode::BatchDecoder;
use rfm_core::output::{CustomersFile, OutDir, CUSTOMERS_HEADER};
use rfm_core::report::{RunReport, Stage, UploadedFile};
use rfm_core::segment::Segment;
use rfm_core::{customers_csv, tables, RfmResult, RunOptions};
use rfm_proto::auth::{random_hex, Credentials, Identity, Token};
use rfm_proto::keepalive::Keepalive;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::{
    ErrorClass, JobRef, JobState, JobStatus, ResultTable, ResultTicket, ScoredResult,
    SubmitJobRequest,
};
use rfm_proto::{MAX_CONTROL_MESSAGE_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, WATCH_BEAT};
use rfm_store::Recorder;
use tonic::transport::Channel;
use tonic::Code;

use crate::exit;
use crate::failure::{At as _, Failed};
use crate::staged::StagedWriter;

/// A failed job or a refused request, with the exit code it maps to.
#[derive(Debug)]
pub struct JobError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

fn job_error(class: ErrorClass, message: String) -> JobError {
    let code = match class {
        ErrorClass::Usage => exit::USAGE,
        ErrorClass::Input => exit::INPUT,
        ErrorClass::Cluster | ErrorClass::Cancelled => exit::CLUSTER,
        ErrorClass::None | ErrorClass::Internal => exit::INTERNAL,
    };
    JobError { code, message }
}

/// The message of a refused call, saying what to do when the credential
/// was missing, wrong or of another role.
pub fn refusal_message(url: &str, status: &tonic::Status) -> String {
    match status.code() {
        Code::Unauthenticated => format!(
            "coordinator {url} refused the credential: {}",
            status.message()
        ),
        Code::PermissionDenied => format!(
            "coordinator {url} does not allow this call with that token: {}",
            status.message()
        ),
        _ => format!("coordinator {url}: {}", status.message()),
    }
}

/// A refused gRPC call as an error naming the coordinator.
pub fn status_error(url: &str, status: tonic::Status) -> JobError {
    if rfm_proto::is_shutting_down_status(&status) {
        return JobError {
            code: exit::CLUSTER,
            message: format!("coordinator {url}: {}", status.message()),
        };
    }
    if rfm_proto::is_database_status(&status) {
        return JobError {
            code: exit::DATABASE,
            message: format!("coordinator {url}: {}", status.message()),
        };
    }
    if let Some(tls) = rfm_proto::tls::explain(&status, url, "coordinator", None) {
        return job_error(
            ErrorClass::Cluster,
            format!("cannot talk to the coordinator at {url}: {tls}"),
        );
    }
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            job_error(ErrorClass::Cluster, refusal_message(url, &status))
        }
        Code::InvalidArgument => job_error(ErrorClass::Usage, status.message().to_string()),
        Code::FailedPrecondition => job_error(ErrorClass::Input, status.message().to_string()),
        Code::Unavailable => job_error(
            ErrorClass::Cluster,
            format!(
                "cannot reach the coordinator at {url}: {}; check --coordinator and that rfm-coordinator is running",
                status.message()
            ),
        ),
        Code::Unimplemented => job_error(
            ErrorClass::Cluster,
            format!("{url} is not an rfm coordinator (it does not know the job API)"),
        ),
        _ => job_error(ErrorClass::Cluster, format!("coordinator {url}: {}", status.message())),
    }
}

/// The error of a call that failed after `waited` without an answer: when
/// that is at least a keepalive interval and the failure is the
/// connection's (not a refusal the coordinator sent), the coordinator
/// stopped answering (stopped, frozen, or cut off).
fn call_error(
    url: &str,
    status: tonic::Status,
    waited: Duration,
    keepalive: &Keepalive,
) -> JobError {
    let sent_by_coordinator = status.metadata().contains_key(rfm_proto::ERROR_CLASS_KEY)
        || matches!(
            status.code(),
            Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::NotFound
                | Code::AlreadyExists
                | Code::Unauthenticated
                | Code::PermissionDenied
                | Code::ResourceExhausted
                | Code::Unimplemented
        );
    if sent_by_coordinator || waited < keepalive.interval {
        return status_error(url, status);
    }
    stopped_answering(url, waited, keepalive)
}

/// The coordinator sent nothing, not even a keepalive answer, for `silent`.
fn stopped_answering(url: &str, silent: Duration, keepalive: &Keepalive) -> JobError {
    job_error(
        ErrorClass::Cluster,
        format!(
            "coordinator at {url} stopped answering for {:.0} s (keepalive pings every {:.0} s went \
             unanswered; see --keepalive-interval, --keepalive-timeout); is it stopped or cut off? \
             what became of the job there is unknown",
            silent.as_secs_f64(),
            keepalive.interval.as_secs_f64()
        ),
    )
}

/// The event stream fails when the coordinator sends nothing for this long:
/// a keepalive interval and its timeout, and at least a few of the
/// coordinator's beats (it repeats the job's status every second).
fn stream_deadline(keepalive: &Keepalive) -> Duration {
    keepalive.silence().max(WATCH_BEAT * 3)
}

/// A connection to a coordinator.
pub struct Connection {
    /// The URL, with its scheme.
    pub url: String,
    pub client: CoordinatorClient<Channel>,
    /// The coordinator's Flight service (a finished job's tables), on the
    /// same connection.
    pub flight: FlightServiceClient<Channel>,
    pub token: Token,
    /// The pings that tell a stopped coordinator.
    pub keepalive: Keepalive,
    /// The results of a coordinator in this process (the embedded
    /// cluster): taken in memory instead of fetched over Flight.
    pub local_results: Option<rfm_coordinator::LocalResults>,
    /// The largest `customers.csv` taken from the coordinator, in bytes.
    pub max_result_bytes: u64,
}

/// Default of [`Connection::max_result_bytes`] (`--max-result-size`).
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 4 << 30;

/// The TLS of a client's `--tls-ca`/`--tls-cert`/`--tls-key`, if any (a
/// file that cannot be used is a usage error naming the flag).
pub fn client_tls(args: &rfm_proto::tls::ClientTlsArgs) -> Result<Option<ClientTls>> {
    args.load()
        .map_err(|e| crate::exit::UsageError(e.to_string()).into())
}

/// Connects to a coordinator (`host:port`, `http://host:port`, or
/// `https://host:port` with `tls`), pinging it as `keepalive` says. A
/// failed TLS handshake is told in plain words (untrusted certificate,
/// wrong host name, a plaintext client against a TLS port).
pub async fn connect(
    url: &str,
    token: Token,
    keepalive: Keepalive,
    tls: Option<ClientTls>,
) -> Result<Connection> {
    let full = rfm_proto::tls::normalise_url(url, "--coordinator", tls.is_some())
        .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let endpoint = rfm_proto::tls::endpoint(&full, tls.as_ref(), None)
        .map_err(|e| {
            crate::exit::UsageError(format!("invalid option --coordinator: {url:?}: {e}"))
        })?
        .connect_timeout(Duration::from_secs(5))
        // A result's customers.csv (megabytes) comes without the sender
        // waiting for the window to open again every 2 MiB.
        .initial_stream_window_size(Some(RECEIVE_WINDOW_BYTES))
        .initial_connection_window_size(Some(2 * RECEIVE_WINDOW_BYTES));
    let channel = keepalive.client(endpoint).connect().await.map_err(|e| {
        let ca = tls.as_ref().map(|t| t.ca_path());
        let message = match rfm_proto::tls::explain(&e, &full, "coordinator", ca) {
            Some(tls) => format!("cannot talk to the coordinator at {full}: {tls}"),
            None => format!(
                "cannot reach the coordinator at {full}: {e}; check --coordinator and that \
                 rfm-coordinator is running"
            ),
        };
        job_error(ErrorClass::Cluster, message)
    })?;
    let client = CoordinatorClient::new(channel.clone())
        .max_decoding_message_size(MAX_CONTROL_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_CONTROL_MESSAGE_BYTES);
    let flight = FlightServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_CONTROL_MESSAGE_BYTES);
    Ok(Connection {
        url: full,
        client,
        flight,
        token,
        keepalive,
        local_results: None,
        max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
    })
}

/// What the coordinator may send on one call before the client has read
/// it (HTTP/2's stream window).
const RECEIVE_WINDOW_BYTES: u32 = 8 << 20;

/// A succeeded job's result as the client writes it.
#[derive(Debug)]
pub struct Scored {
    /// The scores: every row, or only the segments when the customers came
    /// as text.
    pub result: Arc<RfmResult>,
    /// `customers.csv` as the coordinator formatted it and sent it (a job
    /// fetched over the network), when it was kept in memory.
    pub customers_text: Option<Arc<customers_csv::Text>>,
    /// `customers.csv` as the coordinator sent it, written as it came into
    /// the folder that will hold the results (`rfm submit`).
    pub staged: Option<StagedWriter>,
}

impl Scored {
    /// A result held whole (the embedded cluster's, taken in memory).
    pub fn whole(result: Arc<RfmResult>) -> Scored {
        Scored {
            result,
            customers_text: None,
            staged: None,
        }
    }

    /// What `customers.csv` is written from, when it was not written as
    /// it came (`staged`).
    pub fn customers_file(&self) -> CustomersFile<'_> {
        match &self.customers_text {
            Some(text) => CustomersFile::Text(text),
            None => CustomersFile::Rows(&self.result.customers),
        }
    }
}

/// How a job ended, as the client sees it.
pub struct Finished {
    pub status: JobStatus,
    /// The coordinator's run report, when it got that far.
    pub report: Option<RunReport>,
    /// The scored result of a job that succeeded, as the coordinator sent it.
    pub result: Option<Scored>,
    /// Where the coordinator published the run (its database), if it did.
    pub published_to: Option<String>,
    /// Why the coordinator could not publish the succeeded run, if so.
    pub publish_error: Option<String>,
}

impl Finished {
    /// The job's error, if it failed.
    pub fn error(&self) -> Option<JobError> {
        if self.status.state() == JobState::Succeeded {
            return None;
        }
        Some(job_error(
            self.status.error_class(),
            self.status.error.clone(),
        ))
    }
}

/// Draws job progress on stderr: a progress bar on a terminal, a line a
/// second otherwise; messages (retries, lost workers) always get their own line.
struct Progress {
    tty: bool,
    last_line: Option<Instant>,
    /// The status of the last line, without its elapsed time: the
    /// coordinator repeats an unchanged status every second.
    last_shown: Option<JobStatus>,
    bar: Option<indicatif::ProgressBar>,
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last_line: None,
            last_shown: None,
            bar: None,
        }
    }

    /// The terminal's progress bar: tasks done of total, bytes, lines, rate.
    fn draw_bar(&mut self, s: &JobStatus, message: &str, last: bool) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(u64::from(s.tasks_total));
            let style = indicatif::ProgressStyle::with_template(
                "{elapsed:>4} [{bar:30}] {pos}/{len} tasks  {msg}",
            )
            .map(|st| st.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        if !message.is_empty() {
            bar.println(message);
        }
        let rate = if s.elapsed_seconds > 0.0 {
            s.lines_done as f64 / s.elapsed_seconds
        } else {
            0.0
        };
        bar.set_length(u64::from(s.tasks_total));
        bar.set_position(u64::from(s.tasks_done));
        bar.set_message(format!(
            "[{}] {}/{} MB  {} lines  {:.0} rows/s  retries {}",
            s.stage,
            mb(s.bytes_done),
            mb(s.bytes_total),
            rfm_core::figures::count(s.lines_done),
            rate,
            s.retries
        ));
        if last {
            // Leave a plain line behind, not a half-drawn bar.
            bar.finish_and_clear();
            eprintln!(
                "[{}] tasks {}/{}  {}/{} MB  {} lines  retries {}",
                s.stage,
                s.tasks_done,
                s.tasks_total,
                mb(s.bytes_done),
                mb(s.bytes_total),
                rfm_core::figures::count(s.lines_done),
                s.retries
            );
        }
    }

    /// Shows a status and the coordinator's message (which may quote data:
    /// its control characters are escaped).
    fn show(&mut self, s: &JobStatus, message: &str, last: bool) {
        let message = rfm_core::text::escape_for_terminal(message);
        let message = message.as_ref();
        if self.tty {
            return self.draw_bar(s, message, last);
        }
        let mut err = std::io::stderr().lock();
        if !message.is_empty() {
            let _ = writeln!(err, "{message}");
        }
        let due = self
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        let timeless = JobStatus {
            elapsed_seconds: 0.0,
            ..s.clone()
        };
        let changed = self.last_shown.as_ref() != Some(&timeless);
        if !((due && changed) || last) {
            return;
        }
        self.last_line = Some(Instant::now());
        self.last_shown = Some(timeless);
        let rate = if s.elapsed_seconds > 0.0 {
            s.lines_done as f64 / s.elapsed_seconds
        } else {
            0.0
        };
        let line = format!(
            "[{}] tasks {}/{} ({} running)  {}/{} MB  {} lines  {:.0} rows/s  retries {}",
            s.stage,
            s.tasks_done,
            s.tasks_total,
            s.tasks_running,
            mb(s.bytes_done),
            mb(s.bytes_total),
            rfm_core::figures::count(s.lines_done),
            rate,
            s.retries
        );
        let _ = writeln!(err, "{line}");
    }
}

/// A job as it is asked of a coordinator.
pub struct Submission<'a> {
    /// The input, as the coordinator resolves it.
    pub input: &'a str,
    pub opts: &'a RunOptions,
    pub job_id: &'a str,
    /// Whether the coordinator's state cache is left out.
    pub no_cache: bool,
    /// The file uploaded for the job, if it was.
    pub upload: Option<&'a UploadedFile>,
}

/// Submits a job, follows its events until it ends and fetches its result
/// (its `customers.csv` written as it comes into a fresh folder beside
/// `stage`'s target, when given).
pub async fn submit_and_wait(
    conn: &mut Connection,
    job: Submission<'_>,
    show_progress: bool,
    stage: Option<&OutDir>,
) -> Result<Finished, Failed> {
    let request = SubmitJobRequest {
        protocol_version: PROTOCOL_VERSION,
        input: job.input.to_string(),
        options: Some(rfm_proto::v1::RunOptions {
            no_cache: job.no_cache,
            ..rfm_proto::options::to_proto(job.opts)
        }),
        job_id: job.job_id.to_string(),
        upload: job.upload.map(rfm_proto::report::upload_to_proto),
    };
    let (url, client, token) = (conn.url.as_str(), &mut conn.client, &conn.token);
    let keepalive = conn.keepalive;
    let asked = Instant::now();
    let submitted = client
        .submit_job(token.request(request))
        .await
        .map_err(|s| {
            let e = call_error(url, s, asked.elapsed(), &keepalive);
            // The coordinator could not record the job in its run database.
            let stage = if e.code == exit::DATABASE {
                Stage::Database
            } else {
                Stage::Planning
            };
            Failed::new(stage, e.into())
        })?
        .into_inner();
    let job = JobRef {
        job_id: submitted.job_id.clone(),
    };
    follow(conn, job, show_progress, stage)
        .await
        .at(Stage::Tasks)
}

/// Follows a submitted job's events until it ends and fetches its result
/// (its `customers.csv` written as it comes into a fresh folder beside
/// `stage`'s target, when given).
async fn follow(
    conn: &mut Connection,
    job: JobRef,
    show_progress: bool,
    stage: Option<&OutDir>,
) -> Result<Finished> {
    let (url, client, token) = (conn.url.as_str(), &mut conn.client, &conn.token);
    let keepalive = conn.keepalive;
    let asked = Instant::now();
    let mut events = client
        .watch_job(token.request(job.clone()))
        .await
        .map_err(|s| call_error(url, s, asked.elapsed(), &keepalive))?
        .into_inner();
    let mut progress = show_progress.then(Progress::new);
    let deadline = stream_deadline(&keepalive);
    let mut last_heard = Instant::now();
    loop {
        let Ok(event) = tokio::time::timeout(deadline, events.message()).await else {
            return Err(stopped_answering(url, last_heard.elapsed(), &keepalive).into());
        };
        let event = event.map_err(|s| call_error(url, s, last_heard.elapsed(), &keepalive))?;
        last_heard = Instant::now();
        let Some(event) = event else {
            break;
        };
        let Some(status) = event.status else { continue };
        let ended = rfm_proto::is_terminal(status.state);
        if let Some(p) = progress.as_mut() {
            p.show(&status, &event.message, ended);
        }
        if ended {
            break;
        }
    }
    tracing::debug!("rfm: job {} ended", job.job_id);
    let asked = Instant::now();
    let answer = client
        .get_job_result(token.request(job.clone()))
        .await
        .map_err(|s| call_error(url, s, asked.elapsed(), &keepalive))?
        .into_inner();
    let status = answer
        .status
        .ok_or_else(|| anyhow::anyhow!("the coordinator sent a result without a status"))?;
    let report = answer
        .report
        .as_ref()
        .map(rfm_proto::report::from_proto)
        .transpose()
        .map_err(|e| anyhow::anyhow!("the coordinator sent a report that is not valid: {e}"))?;
    let local = conn.local_results.as_ref();
    let result = match answer.scored {
        Some(scored) => match local.and_then(|l| l.take(&job.job_id)) {
            Some(result) => Some(Scored::whole(check_local(result, &scored)?)),
            None => {
                tracing::debug!(
                    "rfm: result of {} customers announced in {:.1} ms",
                    scored.customers,
                    asked.elapsed().as_secs_f64() * 1e3
                );
                let result = fetch_result(conn, &job.job_id, scored, stage).await?;
                tracing::debug!(
                    "rfm: result fetched {:.1} ms after it was asked for",
                    asked.elapsed().as_secs_f64() * 1e3
                );
                Some(result)
            }
        },
        None => None,
    };
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Finished {
        status,
        report,
        result,
        published_to: non_empty(answer.published_to),
        publish_error: non_empty(answer.publish_error),
    })
}

/// Fetches a succeeded job's segments table and its `customers.csv` as
/// text over the coordinator's Flight service, both at once on the one
/// connection: the customers' text is written as it came (formatted on the
/// coordinator's cores, as `rfm run` formats it), into a fresh folder beside
/// `stage`'s target as it comes when given, and checked whole against the
/// counts announced.
async fn fetch_result(
    conn: &Connection,
    job_id: &str,
    scored: ScoredResult,
    stage: Option<&OutDir>,
) -> Result<Scored> {
    if scored.segments > Segment::ALL.len() as u64 {
        anyhow::bail!(
            "the coordinator announced {} segments; there are {}",
            scored.segments,
            Segment::ALL.len()
        );
    }
    let mut segments = Vec::new();
    let (_, customers) = tokio::try_join!(
        fetch_table(conn, job_id, ResultTable::Segments, scored.segments, |b| {
            tables::read_segments(b, &mut segments)
        }),
        fetch_customers_text(conn, job_id, scored.customers, stage),
    )?;
    if segments.len() as u64 != scored.segments {
        anyhow::bail!(
            "the coordinator sent {} segments for a result of {}",
            segments.len(),
            scored.segments
        );
    }
    customers
        .seen
        .check(&CUSTOMERS_HEADER, scored.customers)
        .map_err(|why| {
            anyhow::anyhow!("the coordinator sent a customers.csv that is not valid: {why}")
        })?;
    let result = tables::result_of_segments(
        scored.as_of,
        scored.latest_purchase,
        scored.customers,
        segments,
    )
    .context("the coordinator sent a result that is not valid")?;
    let (customers_text, staged) = match customers.into {
        CustomersInto::Memory(text) => (Some(Arc::new(text)), None),
        CustomersInto::Folder(writer) => (None, Some(writer)),
    };
    Ok(Scored {
        result: Arc::new(result),
        customers_text,
        staged,
    })
}

/// A fetched `customers.csv`: where its pieces went, and what was seen of it.
struct FetchedCustomers {
    into: CustomersInto,
    seen: customers_csv::TextCheck,
}

/// Where the pieces of a fetched `customers.csv` go.
enum CustomersInto {
    /// Kept, in the pieces they came in.
    Memory(customers_csv::Text),
    /// Written as they come, by a thread of their own.
    Folder(StagedWriter),
}

/// Streams a finished job's `customers.csv` as text, in the pieces it comes
/// in, into a fresh folder beside `stage`'s target when given (else into
/// memory); stops at the first record beyond the `customers` announced, or
/// at the first byte beyond the connection's `max_result_bytes`.
async fn fetch_customers_text(
    conn: &Connection,
    job_id: &str,
    customers: u64,
    stage: Option<&OutDir>,
) -> Result<FetchedCustomers> {
    let url = conn.url.as_str();
    let mut stream = do_get(conn, job_id, ResultTable::CustomersCsv).await?;
    let mut into = match stage.and_then(StagedWriter::start) {
        Some(writer) => CustomersInto::Folder(writer),
        None => CustomersInto::Memory(customers_csv::Text::default()),
    };
    let mut seen = customers_csv::TextCheck::default();
    let mut last_heard = Instant::now();
    while let Some(piece) = stream
        .message()
        .await
        .map_err(|s| call_error(url, s, last_heard.elapsed(), &conn.keepalive))
        .context("fetching the result (customers.csv) failed")?
    {
        last_heard = Instant::now();
        if !piece.data_header.is_empty() {
            anyhow::bail!("the coordinator sent customers.csv as Arrow data, not as text");
        }
        let received = seen.len().saturating_add(piece.data_body.len() as u64);
        if received > conn.max_result_bytes {
            return Err(JobError {
                code: exit::OUTPUT,
                message: format!(
                    "the coordinator sent a customers.csv of more than {} (--max-result-size); \
                     nothing was written: raise --max-result-size if the result is that large",
                    rfm_proto::size::format(conn.max_result_bytes)
                ),
            }
            .into());
        }
        seen.see(&piece.data_body);
        if seen.records() > customers.saturating_add(1) {
            anyhow::bail!(
                "the coordinator sent a customers.csv of more than the {customers} customers \
                 it announced"
            );
        }
        match &mut into {
            CustomersInto::Memory(text) => text.push(piece.data_body),
            CustomersInto::Folder(writer) => writer.push(piece.data_body).await,
        }
    }
    Ok(FetchedCustomers { into, seen })
}

/// A result taken from a coordinator in this process, checked against the
/// counts it announced as a fetched one is.
fn check_local(result: Arc<RfmResult>, scored: &ScoredResult) -> Result<Arc<RfmResult>> {
    let counts = (result.customers.len() as u64, result.segments.len() as u64);
    if counts != (scored.customers, scored.segments) {
        anyhow::bail!(
            "the coordinator holds {} customers and {} segments for a result of {} and {}",
            counts.0,
            counts.1,
            scored.customers,
            scored.segments
        );
    }
    Ok(result)
}

/// Streams one table of a finished job, handing each batch to `read`;
/// stops at the first batch whose rows go beyond the `rows` announced.
async fn fetch_table(
    conn: &Connection,
    job_id: &str,
    table: ResultTable,
    rows: u64,
    mut read: impl FnMut(&arrow::array::RecordBatch) -> rfm_core::Result<()>,
) -> Result<()> {
    let url = conn.url.as_str();
    let mut stream = do_get(conn, job_id, table).await?;
    let what = match table {
        ResultTable::Customers => "customers",
        ResultTable::Segments => "segments",
        ResultTable::CustomersCsv => "customers.csv",
        ResultTable::Unspecified => "unknown",
    };
    let fetch_failed = || format!("fetching the result ({what}) from {url} failed");
    let mut decoder = BatchDecoder::default();
    let mut received = 0u64;
    while let Some(data) = stream.message().await.with_context(fetch_failed)? {
        let decoded = decoder
            .decode(&data)
            .map_err(anyhow::Error::msg)
            .with_context(fetch_failed)?;
        if let Some(batch) = decoded {
            received = received.saturating_add(batch.num_rows() as u64);
            if received > rows {
                anyhow::bail!(
                    "the coordinator sent a {what} table of more than the {rows} rows it announced"
                );
            }
            read(&batch).with_context(|| {
                format!("the coordinator sent a {what} table that is not valid")
            })?;
        }
    }
    decoder
        .schema()
        .map_err(anyhow::Error::msg)
        .with_context(fetch_failed)?;
    Ok(())
}

/// Asks the coordinator's Flight service for one of a finished job's tables.
async fn do_get(
    conn: &Connection,
    job_id: &str,
    table: ResultTable,
) -> Result<tonic::Streaming<arrow_flight::FlightData>> {
    let ticket = Ticket {
        ticket: ResultTicket {
            job_id: job_id.to_string(),
            table: table as i32,
        }
        .encode_to_vec()
        .into(),
    };
    let asked = Instant::now();
    let stream = conn
        .flight
        .clone()
        .do_get(conn.token.request(ticket))
        .await
        .map_err(|s| call_error(&conn.url, s, asked.elapsed(), &conn.keepalive))?
        .into_inner();
    Ok(stream)
}

/// Asks the coordinator to cancel a job (its tasks stop) for `reason`, which
/// becomes the job's error; with `until_ended`, also waits for the job to
/// end there (its run recorded); gives up after `within`.
pub fn cancel_blocking(
    url: &str,
    token: Token,
    tls: Option<ClientTls>,
    job_id: &str,
    reason: &'static str,
    until_ended: bool,
    within: Duration,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cancel = async {
            let mut conn = connect(url, token, Keepalive::default(), tls).await?;
            let job = JobRef {
                job_id: job_id.to_string(),
            };
            let mut request = conn.token.request(job.clone());
            request.metadata_mut().insert(
                rfm_proto::CANCEL_REASON_KEY,
                tonic::metadata::MetadataValue::from_static(reason),
            );
            let mut status = conn
                .client
                .cancel_job(request)
                .await
                .map_err(|s| status_error(&conn.url, s))?
                .into_inner();
            while until_ended && !rfm_proto::is_terminal(status.state) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                status = conn
                    .client
                    .get_job(conn.token.request(job.clone()))
                    .await
                    .map_err(|s| status_error(&conn.url, s))?
                    .into_inner();
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::time::timeout(within, cancel)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer from {url} within {within:?}")))
    })
}

/// How a job ended as the client sees it: its error with the stage that
/// failed (the coordinator's report names it; else the tasks did).
pub fn job_failure(finished: &Finished) -> Option<Failed> {
    let error = finished.error()?;
    let stage = finished
        .report
        .as_ref()
        .and_then(|r| r.stage)
        .unwrap_or(Stage::Tasks);
    Some(Failed::new(stage, error.into()))
}

/// The runtime a command talks to a cluster on (and runs the embedded one).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .at(Stage::Planning)
}

/// Whether the process's global rayon pool has `threads` threads, starting
/// it with that many (named `rfm-compute-N`) if nothing has used it yet.
fn global_pool_of(threads: usize) -> bool {
    let started = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rfm-compute-{i}"))
        .build_global()
        .is_ok();
    started || rayon::current_num_threads() == threads
}

/// How to reach the embedded coordinator while its job runs (an interrupt
/// cancels the job there, so that its run is recorded `failed`).
pub struct EmbeddedAccess {
    pub url: String,
    pub token: Token,
}

/// The embedded cluster's shutdown (its servers stopped, its threads
/// joined), done on a thread of its own while the run's results are
/// written: it waits for nothing the results need. Dropping it waits for
/// the shutdown to end.
#[derive(Default)]
pub struct Teardown(Option<std::thread::JoinHandle<()>>);

impl Teardown {
    /// Runs `shutdown` on a thread of its own (here when no thread starts).
    fn aside(shutdown: impl FnOnce() + Send + 'static) -> Teardown {
        let shutdown = std::sync::Mutex::new(Some(shutdown));
        let run = move || {
            if let Some(f) = shutdown.lock().ok().and_then(|mut f| f.take()) {
                f();
            }
        };
        let run = Arc::new(run);
        let on_thread = run.clone();
        match std::thread::Builder::new()
            .name("rfm-cluster-teardown".into())
            .spawn(move || on_thread())
        {
            Ok(thread) => Teardown(Some(thread)),
            Err(_) => {
                run();
                Teardown(None)
            }
        }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Runs a job on an embedded cluster: a coordinator and one worker with
/// `threads` slots, over loopback gRPC and Flight; the coordinator scores and
/// records the run through `recorder`, when given. `started` hears how to
/// reach the coordinator once it is up. With `progress`, draws a progress bar
/// on stderr when it is a terminal. With `cache`, the coordinator reuses
/// and keeps the files' states there ([`rfm_core::cache`]). `files` are
/// `input`'s files as this run opened them: handed to the coordinator,
/// which does not list and open them again. Once the job has ended the
/// cluster shuts down beside the caller: the returned [`Teardown`] waits
/// for it when dropped (after the results are written).
#[allow(clippy::too_many_arguments)]
pub fn run_embedded(
    input: &str,
    files: Vec<rfm_core::InputFile>,
    opts: &RunOptions,
    run_id: &str,
    threads: usize,
    progress: bool,
    recorder: Option<Arc<Recorder>>,
    cache: Option<Arc<rfm_core::cache::Cache>>,
    started: impl FnOnce(EmbeddedAccess),
) -> (Result<Finished, Failed>, Teardown) {
    // The worker computes on the process's pool, the one the coordinator
    // merges and scores on: one thread a core, not two pools whose idle
    // threads spin while the other's work. Another size gets its own pool.
    let shared_pool = global_pool_of(threads);
    // The cache looked up on a thread of its own while the cluster starts:
    // keys made and the set entry's decoding begun before the job's tasks.
    let lookup = cache.clone().and_then(|cache| {
        rfm_coordinator::cached::EarlyLookup::start(cache, files.clone(), opts.parse.clone())
    });
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return (Err(e), Teardown::default()),
    };
    let pool = if shared_pool {
        None
    } else {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("cannot start the worker threads")
            .at(Stage::Planning)
        {
            Ok(pool) => Some(Arc::new(pool)),
            Err(e) => return (Err(e), Teardown::default()),
        }
    };
    // The worker leaves its states in memory for the coordinator.
    let local_states = Arc::new(rfm_proto::local::LocalStates::default());
    // The input files this run opened: the coordinator does not open them again.
    let local_inputs = Arc::new(rfm_coordinator::local_inputs::LocalInputs::default());
    local_inputs.put(run_id, input, &opts.parse, files, lookup);
    let ran = runtime.block_on(async {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = tokio::net::TcpListener::bind(loopback)
            .await
            .context("cannot listen on loopback for the embedded coordinator")
            .at(Stage::Planning)?;
        // Fresh tokens keep other local users off the loopback ports.
        let (token, worker_token) = (random_hex(16), random_hex(16));
        let mut credentials = Credentials::default();
        credentials
            .add(Identity::Client("client".into()), &token)
            .and_then(|()| credentials.add(Identity::Worker, &worker_token))
            .context("cannot make the embedded cluster's tokens")
            .at(Stage::Planning)?;
        let config = rfm_coordinator::CoordinatorConfig {
            credentials,
            // Its user's own machine: any chunk size, any number of tasks.
            limits: rfm_coordinator::limits::Limits::embedded(),
            recorder,
            cache,
            // Its user's own inputs, wherever they are.
            remote_inputs: rfm_core::remote::RemoteInputs::All,
            local_states: Some(local_states.clone()),
            local_inputs: Some(local_inputs),
            ..Default::default()
        };
        let coordinator = rfm_coordinator::start(config, listener)
            .context("cannot start the embedded coordinator")
            .at(Stage::Planning)?;
        let url = coordinator.url();
        // The client connects while the worker registers; the job is
        // submitted once both are done (its plan counts the worker's slots).
        let worker = rfm_worker::start(rfm_worker::WorkerConfig {
            coordinator: url.clone(),
            listen: loopback,
            advertise: None,
            slots: threads,
            pool: pool.clone(),
            heartbeat_interval: rfm_coordinator::DEFAULT_HEARTBEAT_INTERVAL,
            register_timeout: Duration::from_secs(10),
            protocol_version: PROTOCOL_VERSION,
            // The workers' test knob (honoured only by test builds), to make
            // a run long enough to interrupt.
            task_delay: rfm_worker::task_delay_from_env(),
            worker_token: Token::new(Some(worker_token)),
            insecure: false,
            keepalive: Keepalive::default(),
            data_root: None,
            // Loopback in this process: plaintext.
            tls: Default::default(),
            local_states: Some(local_states),
        });
        let client = connect(
            &url,
            Token::new(Some(token.clone())),
            Keepalive::default(),
            None,
        );
        let (worker, client) = tokio::join!(worker, client);
        let worker = worker
            .context("cannot start the embedded worker")
            .at(Stage::Planning)?;
        started(EmbeddedAccess {
            url: url.clone(),
            token: Token::new(Some(token)),
        });
        let outcome = match client.at(Stage::Planning) {
            Ok(mut conn) => {
                // The scored result, too, is taken in memory.
                conn.local_results = Some(coordinator.local_results());
                let show = progress && std::io::stderr().is_terminal();
                let job = Submission {
                    input,
                    opts,
                    job_id: run_id,
                    no_cache: false,
                    upload: None,
                };
                submit_and_wait(&mut conn, job, show, None).await
            }
            Err(e) => Err(e),
        };
        Ok((outcome, worker, coordinator))
    });
    match ran {
        Ok((outcome, worker, coordinator)) => {
            let teardown = Teardown::aside(move || {
                runtime.block_on(async {
                    worker.shutdown().await;
                    coordinator.shutdown().await;
                });
                drop(runtime);
                drop(pool);
            });
            (outcome, teardown)
        }
        Err(e) => (Err(e), Teardown::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_pool_is_shared_only_at_the_size_asked_for() {
        // The first call starts the pool with 3 threads, whatever the
        // machine (each test is a process of its own under nextest; where
        // another test started the pool first, its size is the one shared).
        let started_here = global_pool_of(3);
        let size = rayon::current_num_threads();
        if started_here {
            assert_eq!(size, 3);
        }
        assert!(global_pool_of(size), "the pool started keeps being shared");
        assert!(
            !global_pool_of(size + 1),
            "another size gets a pool of its own"
        );
        if size > 1 {
            assert!(!global_pool_of(size - 1));
        }
    }
}
