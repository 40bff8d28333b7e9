//! `rfm`: the command-line front of the RFM engine.

mod cli;
mod cluster;
mod db;
mod exit;
mod options;
mod run;
mod submit;
mod summary;
mod workers;

use std::io::Write;

use anyhow::Context;
use clap::Parser;

fn gen(args: cli::GenArgs) -> anyhow::Result<()> {
    if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        return rfm_core::gen::generate(args.rows, args.seed, w)
            .context("cannot write to standard output");
    }
    let tmp = args.out.with_extension("csv.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    rfm_core::gen::generate(args.rows, args.seed, &mut w)
        .and_then(|_| w.flush())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(w);
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    Ok(())
}

fn main() {
    let cli = cli::Cli::parse();
    let outcome = match cli.command {
        cli::Command::Run(a) => run::run(a),
        cli::Command::Gen(a) => gen(a),
        cli::Command::Submit(a) => submit::submit(a),
        cli::Command::Workers(a) => workers::workers(a),
        cli::Command::Runs(a) => db::runs(a),
        cli::Command::Diff(a) => db::diff(a),
    };
    if let Err(err) = outcome {
        eprintln!("error: {err:#}");
        std::process::exit(exit::of_error(&err));
    }
}
