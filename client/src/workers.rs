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
            cluster::client_tls(&args.tls)?,
        )
        .await?;
        let url = conn.url.clone();
        let list = conn
            .client
            .list_workers(conn.token.request(ListWorkersRequest {}))
            .await
            .map_err(|s| cluster::status_error(&url, s))?;
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
                    "tls": w.tls,
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
    let tls = cluster::client_tls(&args.tls)?;
    let url = rfm_proto::tls::normalise_url(&args.url, "URL", tls.is_some())
        .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let unhealthy = |message: String| cluster::JobError {
        code: crate::exit::CLUSTER,
        message,
    };
    let endpoint = rfm_proto::tls::endpoint(&url, tls.as_ref(), None)
        .map_err(|e| crate::exit::UsageError(format!("invalid URL {:?}: {e}", args.url)))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout);
    let ca = tls.as_ref().map(|t| t.ca_path());
    let status = runtime.block_on(async {
        let channel = endpoint.connect().await.map_err(|e| {
            unhealthy(match rfm_proto::tls::explain(&e, &url, "server", ca) {
                Some(tls) => format!("{url}: {tls}"),
                None => format!("{url} does not answer: {e}"),
            })
        })?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| {
                unhealthy(match rfm_proto::tls::explain(&s, &url, "server", ca) {
                    Some(tls) => format!("{url}: {tls}"),
                    // A worker with --tls-client-ca drops a caller without a
                    // certificate right after the handshake (TLS 1.3).
                    None if ca.is_some()
                        && args.tls.tls_cert.is_none()
                        && std::error::Error::source(&s).is_some() =>
                    {
                        format!(
                            "{url}: the server closed the connection ({}); if it checks client \
                             certificates (a worker with --tls-client-ca), give --tls-cert and \
                             --tls-key signed by that CA (`rfm certs` writes client.pem and client.key)",
                            s.message()
                        )
                    }
                    None => format!("{url}: health check refused: {}", s.message()),
                })
            })?;
        Ok::<_, cluster::JobError>(reply.into_inner().status())
    })?;
    if status != ServingStatus::Serving {
        return Err(unhealthy(format!("{url} is {}", status.as_str_name())).into());
    }
    println!("SERVING");
    Ok(())
}
