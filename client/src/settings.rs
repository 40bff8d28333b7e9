//! `rfm config`: the effective settings of every subcommand and of the
//! coordinator, worker, dashboard and web binaries (defaults < rfm.toml < RFM_*
//! environment < flags) and where each value came from.

use std::ffi::OsString;
use std::fmt::Write as _;

use anyhow::Result;
use clap::CommandFactory;
use rfm_settings::{Resolved, Scope};
use serde_json::{json, Map};

use crate::cli::{Cli, ConfigArgs};
use crate::exit::UsageError;

/// The other binaries whose settings `rfm config` shows, by table name.
fn servers() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("coordinator", rfm_coordinator::cli::Args::command()),
        ("worker", rfm_worker::cli::Args::command()),
        ("dashboard", rfm_settings::dashboard::Args::command()),
        ("web", rfm_settings::web::Args::command()),
    ]
}

/// The settings of each `rfm` subcommand and of `rfm-coordinator`,
/// `rfm-worker`, `rfm-dashboard` and `rfm-web` (or of the table `only`), resolved as
/// each would resolve them with no flags, in this environment and with this
/// configuration file.
pub fn tables(file: Option<&std::path::Path>, only: Option<&str>) -> Result<Vec<Resolved>> {
    let cmd = rfm_settings::augment(Cli::command());
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help" && n != "config")
        .collect();
    let servers = servers();
    if let Some(o) = only {
        if !subcommands.iter().any(|n| n == o) && !servers.iter().any(|(n, _)| *n == o) {
            let all: Vec<&str> = subcommands
                .iter()
                .map(String::as_str)
                .chain(servers.iter().map(|(n, _)| *n))
                .collect();
            return Err(UsageError(format!(
                "`rfm config {o}`: there is no table [{o}]; choose one of {}",
                all.join(", ")
            ))
            .into());
        }
    }
    let env = |n: &str| std::env::var(n).ok();
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let with_file = |mut argv: Vec<OsString>| {
        if let Some(f) = file {
            argv.push("--config".into());
            argv.push(f.into());
        }
        argv
    };
    let mut out = Vec::new();
    for name in subcommands.iter().filter(|n| wanted(n)) {
        let argv = with_file(vec!["rfm".into(), name.into()]);
        let r = rfm_settings::resolve(&cmd, &argv, Scope::Subcommand, &env)
            .map_err(|e| UsageError(e.to_string()))?;
        if !r.entries.is_empty() {
            out.push(r);
        }
    }
    for (name, server) in servers.into_iter().filter(|(n, _)| wanted(n)) {
        let server = rfm_settings::augment(server);
        let argv = with_file(vec![server.get_name().into()]);
        let r = rfm_settings::resolve(&server, &argv, Scope::Table(name), &env)
            .map_err(|e| UsageError(e.to_string()))?;
        out.push(r);
    }
    Ok(out)
}

pub fn show(args: ConfigArgs, own: &Resolved) -> Result<()> {
    let tables = tables(own.file.as_deref(), args.command.as_deref())?;
    let file = own.file.as_ref().map(|p| p.display().to_string());
    if args.json {
        let mut map = Map::new();
        for t in &tables {
            map.insert(
                t.table.clone().unwrap_or_default(),
                rfm_settings::settings_json(&t.entries),
            );
        }
        let v = json!({ "file": file, "tables": map });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = String::new();
    writeln!(
        out,
        "configuration file: {}",
        file.as_deref().unwrap_or("none")
    )?;
    for t in &tables {
        writeln!(out, "\n[{}]", t.table.as_deref().unwrap_or_default())?;
        rfm_settings::render_entries(&mut out, &t.entries);
    }
    print!("{out}");
    Ok(())
}
