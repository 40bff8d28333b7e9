//! Layered configuration of the rfm binaries (`rfm`, `rfm-coordinator`,
//! `rfm-worker`, `rfm-dashboard` and `rfm-web`, whose flags are defined in
//! [`dashboard`] and [`web`]):
//! built-in defaults < `rfm.toml` < `RFM_*` environment
//! variables < command-line flags.
//!
//! The flags of a binary are the settings: a flag `--foo-bar` is the key
//! `foo_bar` of the binary's table in `rfm.toml` (`[coordinator]`,
//! `[worker]`, or the `rfm` subcommand's name: `[run]`, `[submit]`, …; a few
//! [`SHARED_KEYS`] may also stand at the top level) and the environment
//! variable `RFM_FOO_BAR`, unless the flag names its own (`rfm-web`'s
//! `RFM_WEB_LISTEN`, `RFM_WEB_TOKEN`, …). The file is `--config PATH`, else `$RFM_CONFIG`,
//! else `./rfm.toml` when it exists.
//!
//! [`parse`] replaces clap's `Parser::parse`: it parses the command line
//! leniently, looks every flag not given on the command line up in the
//! environment and the file, checks each such value with the flag's own clap
//! parser (an error names the key and where it came from), and parses the
//! command line again with those values added. `--print-config` prints the
//! effective settings and their sources instead of running.

pub mod dashboard;
mod file;
pub mod logging;
pub mod read;
mod resolve;
pub mod secret;
mod show;
pub mod web;

pub use file::ConfigFile;
pub use logging::{fatal, init_logging, LogFormat};
pub use resolve::{env_name, env_of, key_of, resolve, settable_args, Entry, Resolved, Source};
pub use show::{entry_json, mask, render_entries, render_json, render_text, settings_json};

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command, FromArgMatches};
use rfm_core::exit;

/// Keys that may stand at the top level of `rfm.toml`, outside any table;
/// they apply to every binary or subcommand that has the flag.
pub const SHARED_KEYS: &[&str] = &[
    "coordinator",
    "database_url",
    "log_format",
    "results_root",
    "token",
];

/// Tables `rfm.toml` may hold: one per binary and per `rfm` subcommand.
pub const TABLES: &[&str] = &[
    "cache",
    "cancel",
    "certs",
    "completions",
    "config",
    "coordinator",
    "customer",
    "customers",
    "dashboard",
    "diff",
    "export",
    "gen",
    "health",
    "job",
    "jobs",
    "run",
    "runs",
    "segments",
    "submit",
    "watch",
    "web",
    "worker",
    "workers",
];

/// The file read when neither `--config` nor `RFM_CONFIG` names one.
pub const DEFAULT_FILE: &str = "rfm.toml";
/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "RFM_CONFIG";
/// Id (and long name) of the global `--config PATH` flag.
pub const CONFIG_ARG: &str = "config";
/// Id of the global `--print-config` flag.
pub const PRINT_CONFIG_ARG: &str = "print-config";

/// Errors of the configuration layers; each names the key and its source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("unknown setting `{key}` in {place}; {hint}")]
    UnknownKey {
        key: String,
        place: String,
        hint: String,
    },
    #[error("setting `{key}` from {origin} must be a single value (a string, number or boolean)")]
    NotAValue { key: String, origin: String },
    #[error("invalid value {value:?} for setting `{key}` from {origin}: {message}")]
    BadValue {
        key: String,
        value: String,
        origin: String,
        message: String,
    },
    /// A command-line error, `--help` or `--version`: clap prints it.
    #[error("{0}")]
    Clap(#[from] clap::Error),
}

/// Where settings are looked up: the binary's own table (`rfm-coordinator`,
/// `rfm-worker`) or the table named after the subcommand (`rfm`).
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// The root command's flags, in this table.
    Table(&'a str),
    /// The chosen subcommand's flags, in the table named after it.
    Subcommand,
}

/// The outcome of [`load`].
pub enum Loaded<T> {
    /// The parsed arguments, and the settings they came from.
    Args(T, Resolved),
    /// `--print-config` was given: the settings to print (as JSON).
    Print(Resolved),
}

/// Adds the global `--config PATH` and `--print-config` flags, and shows
/// every setting's environment variable in `--help` the way docs/CONFIG.md
/// names it (`[env: RFM_THREADS]`).
pub fn augment(cmd: Command) -> Command {
    show_env_names(cmd)
        .arg(
            Arg::new(CONFIG_ARG)
                .long("config")
                .value_name("PATH")
                .global(true)
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("Configuration file (default: $RFM_CONFIG, else ./rfm.toml if present)"),
        )
        .arg(
            Arg::new(PRINT_CONFIG_ARG)
                .long("print-config")
                .global(true)
                .action(ArgAction::SetTrue)
                .help("Print the effective settings and where each came from, as JSON, then exit"),
        )
}

/// Appends `[env: NAME]` to the help of each setting of `cmd` and its
/// subcommands. The environment is read by [`resolve`], never by clap: a
/// flag's own `env` only names its variable (hidden from clap's help, so
/// that it does not print `[env: NAME=]` for an unset variable), and
/// [`load`] drops it before clap parses.
fn show_env_names(cmd: Command) -> Command {
    let keys: Vec<String> = settable_args(&cmd)
        .iter()
        .map(|a| a.get_id().to_string())
        .collect();
    cmd.mut_args(|a| {
        if !keys.iter().any(|k| k == a.get_id().as_str()) {
            return a;
        }
        let names = if key_of(&a) == "database_url" {
            format!("{}, DATABASE_URL", env_name(&a))
        } else {
            env_name(&a)
        };
        let suffix = format!("[env: {names}]");
        let help = a.get_help().map(|h| format!("{h} {suffix}"));
        let long = a.get_long_help().map(|h| format!("{h}\n\n{suffix}"));
        let mut a = a.hide_env(true).help(help.unwrap_or(suffix));
        if let Some(long) = long {
            a = a.long_help(long);
        }
        a
    })
    .mut_subcommands(show_env_names)
}

/// `cmd` whose flags, in every subcommand, read no variable.
fn without_env(cmd: Command) -> Command {
    cmd.mut_args(|a| a.env(None)).mut_subcommands(without_env)
}

/// A flag's help without the `[env: …]` that [`augment`] appends.
pub(crate) fn help_without_env(help: &str) -> &str {
    match help.rfind(" [env: ") {
        Some(i) if help.ends_with(']') => &help[..i],
        _ => help,
    }
}

/// Parses `argv` with the layers: flags given on the command line win, then
/// `RFM_*` variables, then `rfm.toml`, then the built-in defaults.
pub fn load<T: FromArgMatches>(
    cmd: Command,
    argv: Vec<OsString>,
    scope: Scope<'_>,
) -> Result<Loaded<T>, Error> {
    let cmd = augment(cmd);
    let env = |name: &str| std::env::var(name).ok();
    let resolved = resolve(&cmd, &argv, scope, &env)?;
    if resolved.print {
        return Ok(Loaded::Print(resolved));
    }
    // Every variable was read by `resolve`: clap reads none again.
    let matches = without_env(cmd).try_get_matches_from(resolved.argv.clone())?;
    let args = T::from_arg_matches(&matches)?;
    Ok(Loaded::Args(args, resolved))
}

/// [`load`] for a binary's `main`: exits with clap's message and code for
/// command-line errors, code 2 for configuration errors, and 0 after
/// `--print-config`.
pub fn parse<T: clap::Parser>(scope: Scope<'_>) -> (T, Resolved) {
    match load::<T>(T::command(), std::env::args_os().collect(), scope) {
        Ok(Loaded::Args(args, resolved)) => (args, resolved),
        Ok(Loaded::Print(resolved)) => {
            print!("{}", render_json(&resolved));
            std::process::exit(exit::SUCCESS)
        }
        Err(Error::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(exit::USAGE)
        }
    }
}
