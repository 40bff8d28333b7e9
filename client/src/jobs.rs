//! `rfm jobs`, `rfm job ID` and `rfm cancel ID`: the jobs of a coordinator.

use anyhow::{Context, Result};
use rfm_core::text::escape_for_terminal;
use rfm_proto::v1::{JobRef, JobStatus, ListJobsRequest};
use serde_json::json;

use crate::cli::{CoordinatorArgs, JobArgs, JobsArgs};
use crate::cluster::{self, JobError};
use crate::exit;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn as_json(s: &JobStatus) -> serde_json::Value {
    json!({
        "job_id": s.job_id,
        "state": s.stage,
        "tasks_total": s.tasks_total,
        "tasks_done": s.tasks_done,
        "tasks_running": s.tasks_running,
        "bytes_total": s.bytes_total,
        "bytes_done": s.bytes_done,
        "lines_done": s.lines_done,
        "retries": s.retries,
        "seconds": s.elapsed_seconds,
        "error": s.error,
        "result_bytes": s.result_bytes,
    })
}

fn header() -> String {
    format!(
        "{:<28} {:<10} {:>11} {:>12} {:>8} {:>9} {:>8}  ERROR\n",
        "JOB", "STATE", "TASKS", "LINES", "RETRIES", "SECONDS", "RESULT"
    )
}

fn line(s: &JobStatus) -> String {
    format!(
        "{:<28} {:<10} {:>11} {:>12} {:>8} {:>9.1} {:>8}  {}\n",
        s.job_id,
        s.stage,
        format!("{}/{}", s.tasks_done, s.tasks_total),
        s.lines_done,
        s.retries,
        s.elapsed_seconds,
        rfm_proto::size::held(s.result_bytes),
        s.error
    )
}

/// Connects to the coordinator of `--coordinator`, with the token,
/// keepalive and TLS of the flags.
async fn connect(to: &CoordinatorArgs) -> Result<cluster::Connection> {
    cluster::connect(
        &to.coordinator,
        to.auth.token()?,
        to.keepalive.keepalive(),
        cluster::client_tls(&to.tls)?,
    )
    .await
}

/// A call refused by the coordinator at `url` (as [`connect`] normalised
/// it): unknown job ids are exit 3, the rest cluster errors.
fn refused(to: &CoordinatorArgs, url: &str, status: tonic::Status) -> anyhow::Error {
    let code = match status.code() {
        tonic::Code::NotFound => exit::INPUT,
        tonic::Code::InvalidArgument => exit::USAGE,
        _ => exit::CLUSTER,
    };
    let said = rfm_proto::tls::explain(&status, url, "coordinator", to.tls.tls_ca.as_deref());
    JobError {
        code,
        message: match said {
            Some(tls) => format!("coordinator {}: {tls}", to.coordinator),
            None => crate::cluster::refusal_message(&to.coordinator, &status),
        },
    }
    .into()
}

pub fn jobs(args: JobsArgs) -> Result<()> {
    let to = &args.to;
    let jobs = runtime()?.block_on(async {
        let mut conn = connect(to).await?;
        let list = conn
            .client
            .list_jobs(conn.token.request(ListJobsRequest {}))
            .await
            .map_err(|s| refused(to, &conn.url, s))?;
        anyhow::Ok(list.into_inner().jobs)
    })?;
    if to.json {
        let rows: Vec<_> = jobs.iter().map(as_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut out = header();
    for j in &jobs {
        out.push_str(&line(j));
    }
    print!("{}", escape_for_terminal(&out));
    if jobs.is_empty() {
        eprintln!("no job on {}", to.coordinator);
    }
    Ok(())
}

/// `rfm job ID` (or `rfm cancel ID` with `cancel`).
pub fn job(args: JobArgs, cancel: bool) -> Result<()> {
    let to = &args.to;
    let status = runtime()?.block_on(async {
        let mut conn = connect(to).await?;
        let job = JobRef {
            job_id: args.id.clone(),
        };
        if cancel {
            // A job that has ended cannot be cancelled: say so, not its status.
            let now = conn
                .client
                .get_job(conn.token.request(job.clone()))
                .await
                .map_err(|s| refused(to, &conn.url, s))?
                .into_inner();
            if rfm_proto::is_terminal(now.state) {
                return Err(JobError {
                    code: exit::INPUT,
                    message: format!(
                        "job {} already ended ({}): there is nothing to cancel",
                        now.job_id, now.stage
                    ),
                }
                .into());
            }
        }
        let answer = if cancel {
            conn.client.cancel_job(conn.token.request(job)).await
        } else {
            conn.client.get_job(conn.token.request(job)).await
        };
        anyhow::Ok(answer.map_err(|s| refused(to, &conn.url, s))?.into_inner())
    })?;
    if to.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&status))?);
    } else {
        print!("{}{}", header(), escape_for_terminal(&line(&status)));
    }
    Ok(())
}
