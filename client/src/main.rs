//! `rfm`: the command-line front of the RFM engine.

/// Partial states allocate and free many small buffers; mimalloc keeps that
/// cheap where the system allocator spends a sixth of the run consolidating.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cache;
mod certs;
mod cli;
mod cluster;
mod exit;
mod explain;
mod export;
mod failure;
mod finish;
mod history;
mod inspect;
mod interrupt;
mod jobs;
mod options;
mod results;
mod run;
mod select;
mod settings;
mod staged;
mod submit;
mod summary;
mod upload;
mod watch;
mod workers;

use std::io::Write;

use anyhow::Context;
use rfm_core::format::InputFormat;

fn gen(args: cli::GenArgs) -> anyhow::Result<()> {
    let options = rfm_core::gen::GenOptions {
        customer_per_invoice: args.customer_per_invoice,
    };
    if InputFormat::choose(&args.out.to_string_lossy(), args.format) == InputFormat::Excel {
        return gen_xlsx(&args, options);
    }
    if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let w = std::io::BufWriter::with_capacity(1 << 20, stdout);
        let format = args.format.unwrap_or(InputFormat::Csv);
        return rfm_core::gen_formats::generate_as(args.rows, args.seed, options, format, w)
            .context("cannot write to standard output");
    }
    let format = InputFormat::choose(&args.out.to_string_lossy(), args.format);
    export::write_atomically(&args.out, |file| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        rfm_core::gen_formats::generate_as(args.rows, args.seed, options, format, &mut w)?;
        w.flush()?;
        Ok(())
    })
}

/// `rfm gen --format xlsx`: a workbook (written whole, so not to standard output).
fn gen_xlsx(args: &cli::GenArgs, options: rfm_core::gen::GenOptions) -> anyhow::Result<()> {
    if args.out.as_os_str() == "-" {
        anyhow::bail!("rfm gen writes a workbook to a file only: give --out FILE.xlsx");
    }
    let scratch = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    export::write_atomically(&args.out, |file| {
        rfm_core::excel::write::generate_xlsx(args.rows, args.seed, options, &scratch, file)?;
        Ok(())
    })
}

/// `rfm completions SHELL`: the completion script on standard output.
fn completions(args: cli::CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = rfm_settings::augment(<cli::Cli as clap::CommandFactory>::command());
    clap_complete::generate(args.shell, &mut cmd, "rfm", &mut std::io::stdout());
    Ok(())
}

fn main() {
    // Events of the embedded coordinator and worker (`rfm run`), and the
    // client's own stage timings, only when asked for (`RUST_LOG=debug`).
    if std::env::var_os("RUST_LOG").is_some() {
        rfm_settings::init_logging(rfm_settings::LogFormat::Text);
    }
    let (cli, resolved) = rfm_settings::parse::<cli::Cli>(rfm_settings::Scope::Subcommand);
    let token_on_command_line = resolved
        .get("token")
        .is_some_and(|e| e.source == rfm_settings::Source::Flag && e.value.is_some());
    if token_on_command_line {
        eprintln!(
            "warning: {}",
            rfm_proto::auth::load::command_line_warning("--token", "RFM_TOKEN", "--token-file")
        );
    }
    // `rfm run` and `rfm submit` end at once after success (see `exit_at_once`).
    let ends_at_once = matches!(cli.command, cli::Command::Run(_) | cli::Command::Submit(_));
    let outcome = match cli.command {
        cli::Command::Run(a) => run::run(a),
        cli::Command::Watch(a) => watch::watch(a),
        cli::Command::Gen(a) => gen(a),
        cli::Command::Cache(a) => cache::cache(a),
        cli::Command::Submit(a) => submit::submit(a),
        cli::Command::Workers(a) => workers::workers(a),
        cli::Command::Health(a) => workers::health(a),
        cli::Command::Runs(a) => history::runs(a),
        cli::Command::Diff(a) => history::diff(a),
        cli::Command::Config(a) => settings::show(a, &resolved),
        cli::Command::Segments(a) => inspect::segments(a),
        cli::Command::Customers(a) => inspect::customers(a),
        cli::Command::Customer(a) => explain::customer(a),
        cli::Command::Export(a) => export::export(a),
        cli::Command::Completions(a) => completions(a),
        cli::Command::Certs(a) => certs::certs(a),
        cli::Command::Jobs(a) => jobs::jobs(a),
        cli::Command::Job(a) => jobs::job(a, false),
        cli::Command::Cancel(a) => jobs::job(a, true),
    };
    if outcome.is_ok() && ends_at_once {
        exit_at_once();
    }
    if let Err(err) = outcome {
        // Messages quote header fields and values: never raw control characters.
        let message = format!("error: {err:#}");
        eprintln!("{}", rfm_core::text::escape_for_terminal(&message));
        std::process::exit(exit::of_error(&err));
    }
}

/// Ends a command that succeeded without the process's exit handlers: its
/// results are written and synced, its summary printed (flushed here), its
/// temporary folders removed and its threads' work waited for, so what is
/// left is the allocator giving every freed page back to the system one
/// `madvise` at a time (mimalloc collects at exit when linked statically),
/// about 10 ms after a run of 45,000 customers (whether scored here or
/// fetched from a cluster's coordinator), which the kernel's unmapping at
/// exit does at once.
fn exit_at_once() -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().flush();
    let _ = std::io::stderr().lock().flush();
    // SAFETY: `_exit` ends the process at once; nothing runs after it, and
    // everything this process owes its files is done (see above).
    unsafe { libc::_exit(0) }
}
