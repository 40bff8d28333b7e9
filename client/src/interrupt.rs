//! SIGINT and SIGTERM of `rfm run` and `rfm submit`. Once [`listen`]ing, the
//! first signal runs the command's armed cleanup (it records the run `failed`
//! with error [`INTERRUPTED`], in run.json and where the run is published,
//! and cancels a submitted job), then exits 130 (SIGINT) or 143 (SIGTERM).
//! A second signal exits at once. While the command writes its outcome
//! (a [`Finishing`] guard is held), the cleanup waits for it, so the two
//! never write the same files at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::exit;

/// The error recorded for a run stopped by a signal.
pub const INTERRUPTED: &str = "interrupted";

/// A signal that stops the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit code after this signal (128 + its number, as shells report it).
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => exit::SIGINT,
            Signal::Terminate => exit::SIGTERM,
        }
    }
}

type Cleanup = Box<dyn FnOnce(Signal) + Send>;

/// The armed cleanup; locked while the command writes its outcome.
static CLEANUP: Mutex<Option<Cleanup>> = Mutex::new(None);
/// The armed cleanup records no run (`rfm watch` between runs): no message.
static QUIET: AtomicBool = AtomicBool::new(false);

fn cleanup_slot() -> MutexGuard<'static, Option<Cleanup>> {
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner())
}

/// Catches SIGINT and SIGTERM from now on (a thread of its own waits for them).
pub fn listen() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal listener")?;
    let (mut int, mut term) = {
        let _in_runtime = runtime.enter();
        let int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
        let term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
        (int, term)
    };
    std::thread::Builder::new()
        .name("rfm-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut first = true;
                loop {
                    let got = tokio::select! {
                        _ = int.recv() => Signal::Interrupt,
                        _ = term.recv() => Signal::Terminate,
                    };
                    if !first {
                        eprintln!("\n{}: stopping now", got.name());
                        std::process::exit(got.exit_code());
                    }
                    first = false;
                    std::thread::spawn(move || stop(got));
                }
            })
        })
        .context("cannot start the signal listener")?;
    Ok(())
}

/// Runs the armed cleanup (after any [`Finishing`] guard is released) and exits.
fn stop(signal: Signal) {
    let mut slot = cleanup_slot();
    if let Some(cleanup) = slot.take() {
        if !QUIET.load(Ordering::SeqCst) {
            eprintln!(
                "\n{}: stopping; the run is recorded as failed ({INTERRUPTED})",
                signal.name()
            );
        }
        cleanup(signal);
    }
    std::process::exit(signal.exit_code());
}

/// Arms the cleanup the first signal runs.
pub fn on_signal(cleanup: impl FnOnce(Signal) + Send + 'static) {
    let mut slot = cleanup_slot();
    QUIET.store(false, Ordering::SeqCst);
    *slot = Some(Box::new(cleanup));
}

/// Arms a cleanup that records no run (it says what it does itself).
pub fn on_signal_quietly(cleanup: impl FnOnce(Signal) + Send + 'static) {
    let mut slot = cleanup_slot();
    QUIET.store(true, Ordering::SeqCst);
    *slot = Some(Box::new(cleanup));
}

/// Held while the command records its own outcome: disarms the cleanup, and
/// a signal meanwhile waits for the guard to drop, then exits.
pub struct Finishing {
    _slot: MutexGuard<'static, Option<Cleanup>>,
}

/// The command now records its outcome itself.
pub fn finishing() -> Finishing {
    let mut slot = cleanup_slot();
    *slot = None;
    Finishing { _slot: slot }
}
