//! `rfm workers`: the workers a coordinator knows, with their state, running
//! tasks and the time since their last heartbeat; `rfm health`: whether a
//! coordinator or worker serves (gRPC health).

use anyhow::{Context, Result};
use rfm_proto::v1::ListWorkersRequest;

use crate::cli::{HealthArgs, WorkersArgs};
use crate::cluster;

/// What `rfm workers` says of a coordinator started with `--insecure`.
const INSECURE_COORDINATOR: &str =
    "coordinator: INSECURE (started with --insecure: no credential or data root required)";

pub fn workers(args: WorkersArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let workers = runtime.block_on(async {
        let mut conn = cluster::connect(
            &args.coordinator,
            args.auth.token()?,
            args.keepalive.keepalive(),
        )
        .await?;
        let url = conn.url.clone();
        let list = conn
            .client
            .list_workers(conn.token.request(ListWorkersRequest {}))
            .await
            .map_err(|s| cluster::JobError {
                code: crate::exit::CLUSTER,
                message: cluster::refusal_message(&url, &s),
            })?;
        anyhow::Ok(list.into_inner())
    })?;
    let insecure = workers.coordinator_insecure;
    let workers = workers.workers;
    if args.json {
        let rows: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                serde_json::json!({
                    "id": w.worker_id,
                    "address": w.address,
                    "state": w.state,
                    "slots": w.slots,
                    "running_tasks": w.running_tasks,
                    "seconds_since_heartbeat": w.seconds_since_heartbeat,
                    "insecure": w.insecure,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        if insecure {
            eprintln!("{INSECURE_COORDINATOR}");
        }
        return Ok(());
    }
    if insecure {
        println!("{INSECURE_COORDINATOR}");
    }
    println!(
        "{:<8} {:<24} {:<6} {:>7} {:>5} {:>14}",
        "id", "address", "state", "running", "slots", "heartbeat (s)"
    );
    for w in &workers {
        println!(
            "{:<8} {:<24} {:<6} {:>7} {:>5} {:>14.1}",
            w.worker_id, w.address, w.state, w.running_tasks, w.slots, w.seconds_since_heartbeat
        );
        if w.insecure {
            println!("  {}: INSECURE (started with --insecure)", w.worker_id);
        }
    }
    if workers.is_empty() {
        eprintln!("no worker has registered with {}", args.coordinator);
    }
    Ok(())
}

/// `rfm health URL`: `grpc.health.v1.Health/Check` of the whole server.
pub fn health(args: HealthArgs) -> Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let url = if args.url.contains("://") {
        args.url.clone()
    } else {
        format!("http://{}", args.url)
    };
    let unhealthy = |message: String| cluster::JobError {
        code: crate::exit::CLUSTER,
        message,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| crate::exit::UsageError(format!("invalid URL {:?}: {e}", args.url)))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout);
    let status = runtime.block_on(async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| unhealthy(format!("{url} does not answer: {e}")))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| unhealthy(format!("{url}: health check refused: {}", s.message())))?;
        Ok::<_, cluster::JobError>(reply.into_inner().status())
    })?;
    if status != ServingStatus::Serving {
        return Err(unhealthy(format!("{url} is {}", status.as_str_name())).into());
    }
    println!("SERVING");
    Ok(())
}
