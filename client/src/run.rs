//! `rfm run`: the whole job in this process, then the result files and summary.
//! A run that fails at any stage after its options leaves a failed `run.json`
//! (see [`crate::failure`]); SIGINT/SIGTERM record it `failed` ("interrupted")
//! the same way (see [`crate::interrupt`]).

use std::time::Instant;

use anyhow::{Context, Result};
use rfm_core::engine;
use rfm_core::output::OutDir;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_for_terminal;
use rfm_core::RunOptions;

use crate::cli::RunArgs;
use crate::failure::{self, At as _, Failed};
use crate::{db, interrupt, options, summary};

/// Whoever owns runs recorded by this process, on the terms of the flags.
fn lease(args: &RunArgs) -> Result<rfm_store::Lease> {
    rfm_store::Lease::new("rfm run", args.run_lease, args.run_heartbeat).map_err(|e| {
        crate::exit::UsageError(format!("invalid options --run-lease/--run-heartbeat: {e}")).into()
    })
}

/// Arms the interrupt: the first SIGINT/SIGTERM records `report` as failed
/// (in `db` when the run is recorded there) and leaves it in `out`.
pub fn arm_interrupt(
    out: &OutDir,
    report: &RunReport,
    db: Option<db::RunRecord>,
    started: Instant,
) {
    let (out, mut report) = (out.clone(), report.clone());
    interrupt::on_signal(move |_| {
        report.fail(Stage::Interrupted, interrupt::INTERRUPTED);
        report.finished_at = report::utc_now();
        report.seconds = started.elapsed().as_secs_f64();
        if let Some(record) = db {
            record.fail(&report);
        }
        if let Err(e) = out.write_report(&report) {
            eprintln!("{}", escape_for_terminal(&format!("error: {e:#}")));
        }
    });
}

pub fn run(args: RunArgs) -> Result<()> {
    interrupt::listen()?;
    let started = Instant::now();
    // Usage errors stop the command before a run exists: nothing is written.
    let opts = options::run_options(&args.input)?;
    let lease = lease(&args)?;
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
    arm_interrupt(&out, &report, None, started);
    let mut publisher = None;
    let mut finishing = None;
    let run = Run {
        args: &args,
        opts: &opts,
        threads,
        out: &out,
        started,
        lease,
    };
    match run.attempt(&mut report, &mut publisher, &mut finishing) {
        Ok(()) => Ok(()),
        Err(failed) => {
            // From here this command records its outcome: a signal waits.
            let _finishing = finishing.unwrap_or_else(interrupt::finishing);
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
    lease: rfm_store::Lease,
}

impl Run<'_> {
    /// Runs the job, writes the results and publishes them; `report` holds
    /// what is known when it fails. Once the job has ended, `finishing` holds
    /// off a signal until the outcome is recorded.
    fn attempt(
        &self,
        report: &mut RunReport,
        publisher: &mut Option<db::Publisher>,
        finishing: &mut Option<interrupt::Finishing>,
    ) -> Result<(), Failed> {
        let args = self.args;
        let files = engine::open_inputs(&args.input.input, &self.opts.parse)?;
        *report = RunReport::begin(&report.run_id, &files, self.opts);
        arm_interrupt(self.out, report, None, self.started);
        *publisher = db::Publisher::start(args.database_url.as_deref(), report, self.lease.clone())
            .at(Stage::Database)?;
        if let Some(p) = publisher.as_ref() {
            arm_interrupt(self.out, report, Some(p.record()), self.started);
        }

        // The embedded cluster: a coordinator and a worker in this process,
        // through the same gRPC and Flight services as a real cluster.
        let run = crate::cluster::run_embedded(
            &args.input.input,
            self.opts,
            &report.run_id,
            self.threads,
            !(args.quiet || args.json),
        );
        *finishing = Some(interrupt::finishing());
        if let Some(coordinators) = run.report {
            *report = coordinators;
        }
        let result = run.outcome?;
        report.set_result(&result);
        report.finished_at = report::utc_now();
        report.seconds = self.started.elapsed().as_secs_f64();
        self.out.write_results(&result, report).at(Stage::Writing)?;
        let published_to = match publisher.take() {
            None => None,
            Some(p) => match p.publish(report, &result) {
                Ok(target) => Some(target),
                Err(e) => {
                    return Err(Failed {
                        stage: Stage::Database,
                        error: e.context(format!(
                            "results written to {} but run {} not published",
                            self.out.path().display(),
                            report.run_id
                        )),
                        results: Some(Box::new(result)),
                    })
                }
            },
        };
        summary::show_success(
            report,
            &result,
            self.out.path(),
            published_to.as_deref(),
            args.json,
            args.quiet,
        )
        .context("cannot show the report")
        .at(Stage::Writing)?;
        Ok(())
    }
}
