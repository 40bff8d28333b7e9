//! The loader thread: runs [`Command`]s against the [`Source`] off the UI
//! thread and sends back [`Loaded`] results, so the screen never blocks.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::{Command, Loaded};
use crate::source::Source;

/// Name of the loader thread (the panic hook recognises it).
pub const THREAD_NAME: &str = "rfm-dashboard-loader";

/// Handle to the loader thread: send commands, poll results.
pub struct Loader {
    commands: Option<Sender<Command>>,
    results: Receiver<Loaded>,
    thread: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn spawn(source: Box<dyn Source>) -> Loader {
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let (res_tx, res_rx) = mpsc::channel::<Loaded>();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                for command in cmd_rx {
                    if res_tx
                        .send(execute_caught(source.as_ref(), command))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .ok();
        Loader {
            commands: Some(cmd_tx),
            results: res_rx,
            thread,
        }
    }

    pub fn send(&self, command: Command) {
        if let Some(tx) = &self.commands {
            let _ = tx.send(command);
        }
    }

    /// Results ready now, without waiting.
    pub fn ready(&self) -> Vec<Loaded> {
        self.results.try_iter().collect()
    }

    /// Waits for the next result (for tests and scripts).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<Loaded> {
        self.results.recv_timeout(timeout).ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its current load is done;
        // do not wait for it, so quitting is immediate.
        self.commands.take();
        self.thread.take();
    }
}

/// Runs one command; a panic (a bug) becomes an error for the status line.
pub fn execute_caught(source: &dyn Source, command: Command) -> Loaded {
    let failed = |message: String| match &command {
        Command::ListRuns => Loaded::Runs(Err(message)),
        Command::LoadRun { entry, role } => Loaded::Run {
            role: *role,
            key: entry.key.clone(),
            result: Err(message),
        },
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(source, command.clone())
    }));
    match outcome {
        Ok(loaded) => loaded,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            failed(format!(
                "internal error while loading (please report it): {what}"
            ))
        }
    }
}

/// Runs one command.
pub fn execute(source: &dyn Source, command: Command) -> Loaded {
    match command {
        Command::ListRuns => Loaded::Runs(source.list_runs().map_err(|e| e.to_string())),
        Command::LoadRun { entry, role } => Loaded::Run {
            role,
            key: entry.key.clone(),
            result: source
                .load_run(&entry)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        },
    }
}
