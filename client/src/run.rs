//! `rfm run`: the whole job in this process, then the result files and summary.
//! A run that fails at any stage after its options leaves a failed `run.json`
//! (see [`crate::failure`]).

use std::time::Instant;

use anyhow::{Context, Result};
use rfm_core::engine;
use rfm_core::output::OutDir;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_for_terminal;
use rfm_core::RunOptions;

use crate::cli::RunArgs;
use crate::failure::{self, At as _, Failed};
use crate::{db, options, summary};

pub fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    // Usage errors stop the command before a run exists: nothing is written.
    let opts = options::run_options(&args.input)?;
    let threads = match args.threads {
        Some(0) => {
            return Err(crate::exit::UsageError(
                "invalid option --threads: must be at least 1".into(),
            )
            .into())
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let run_id = report::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(&run_id));
    let out = OutDir::prepare(&out_dir)?;
    let mut report = RunReport::before_input(&run_id, &args.input.input, &opts);
    let mut publisher = None;
    let run = Run {
        args: &args,
        opts: &opts,
        threads,
        out: &out,
        started,
    };
    match run.attempt(&mut report, &mut publisher) {
        Ok(()) => Ok(()),
        Err(failed) => {
            failure::complete(&mut report, &failed, started);
            if let Some(p) = publisher {
                p.fail(&report);
            }
            Err(failure::leave(&out, &report, failed, args.quiet))
        }
    }
}

/// One `rfm run` between its checked options and its end.
struct Run<'a> {
    args: &'a RunArgs,
    opts: &'a RunOptions,
    threads: usize,
    out: &'a OutDir,
    started: Instant,
}

impl Run<'_> {
    /// Runs the job, writes the results and publishes them; `report` holds
    /// what is known when it fails.
    fn attempt(
        &self,
        report: &mut RunReport,
        publisher: &mut Option<db::Publisher>,
    ) -> Result<(), Failed> {
        let args = self.args;
        let files = engine::open_inputs(&args.input.input, &self.opts.parse)?;
        *report = RunReport::begin(&report.run_id, &files, self.opts);
        *publisher =
            db::Publisher::start(args.database_url.as_deref(), report).at(Stage::Database)?;

        // The embedded cluster: a coordinator and a worker in this process,
        // through the same gRPC and Flight services as a real cluster.
        let run = crate::cluster::run_embedded(
            &args.input.input,
            self.opts,
            &report.run_id,
            self.threads,
            !(args.quiet || args.json),
        );
        if let Some(coordinators) = run.report {
            *report = coordinators;
        }
        let result = run.outcome?;
        report.set_result(&result);
        report.finished_at = report::utc_now();
        report.seconds = self.started.elapsed().as_secs_f64();
        self.out.write_results(&result, report).at(Stage::Writing)?;
        if let Some(p) = publisher.take() {
            if let Err(e) = p.publish(report, &result) {
                return Err(Failed {
                    stage: Stage::Database,
                    error: e.context(format!(
                        "results written to {} but run {} not published",
                        self.out.path().display(),
                        report.run_id
                    )),
                    results: Some(Box::new(result)),
                });
            }
        }
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&*report)
                    .context("cannot show the report")
                    .at(Stage::Writing)?
            );
        } else if !args.quiet {
            print!("{}", escape_for_terminal(&summary::full(report, &result)));
            println!();
            println!(
                "{}",
                escape_for_terminal(&format!(
                    "results: {}  ({:.2} s)",
                    self.out.path().display(),
                    report.seconds
                ))
            );
        }
        Ok(())
    }
}
