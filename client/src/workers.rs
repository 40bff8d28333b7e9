//! `rfm workers`: the workers a coordinator knows, with their state, running
//! tasks and the time since their last heartbeat.

use anyhow::{Context, Result};
use rfm_proto::auth::Token;
use rfm_proto::v1::ListWorkersRequest;

use crate::cli::WorkersArgs;
use crate::cluster;

pub fn workers(args: WorkersArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let workers = runtime.block_on(async {
        let mut conn = cluster::connect(&args.coordinator, Token::new(args.token.clone())).await?;
        let url = conn.url.clone();
        let list = conn
            .client
            .list_workers(conn.token.request(ListWorkersRequest {}))
            .await
            .map_err(|s| anyhow::anyhow!("coordinator {url}: {}", s.message()))?;
        anyhow::Ok(list.into_inner().workers)
    })?;
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
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
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
    }
    if workers.is_empty() {
        eprintln!("no worker has registered with {}", args.coordinator);
    }
    Ok(())
}
