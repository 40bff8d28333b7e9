//! `rfm config`: the effective settings of every subcommand (defaults <
//! rfm.toml < RFM_* environment < flags) and where each value came from.

use std::ffi::OsString;
use std::fmt::Write as _;

use anyhow::Result;
use clap::CommandFactory;
use rfm_settings::{Resolved, Scope};
use serde_json::{json, Map};

use crate::cli::{Cli, ConfigArgs};
use crate::exit::UsageError;

/// The settings of each subcommand (or of `only`), resolved as that
/// subcommand would resolve them with no flags.
pub fn tables(file: Option<&std::path::Path>, only: Option<&str>) -> Result<Vec<Resolved>> {
    let cmd = rfm_settings::augment(Cli::command());
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help" && n != "config")
        .collect();
    if let Some(o) = only {
        if !names.iter().any(|n| n == o) {
            return Err(UsageError(format!(
                "`rfm config {o}`: there is no subcommand {o:?}; choose one of {}",
                names.join(", ")
            ))
            .into());
        }
    }
    let env = |n: &str| std::env::var(n).ok();
    let mut out = Vec::new();
    for name in names
        .iter()
        .filter(|n| only.is_none_or(|o| o == n.as_str()))
    {
        let mut argv: Vec<OsString> = vec!["rfm".into(), name.into()];
        if let Some(f) = file {
            argv.push("--config".into());
            argv.push(f.into());
        }
        let r = rfm_settings::resolve(&cmd, &argv, Scope::Subcommand, &env)
            .map_err(|e| UsageError(e.to_string()))?;
        if !r.entries.is_empty() {
            out.push(r);
        }
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
