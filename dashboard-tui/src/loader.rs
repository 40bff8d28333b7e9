//! The loader thread: runs [`Command`]s against the [`Source`] off the UI
//! thread and sends back [`Loaded`] results, so the screen never blocks. A
//! command that fails because the source lost its connection (the database
//! went away) is retried with a growing wait, announced by
//! [`Loaded::Retrying`] for the status line.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::{Command, Loaded};
use crate::source::Source;

/// Name of the loader thread (the panic hook recognises it).
pub const THREAD_NAME: &str = "rfm-dashboard-loader";

/// How long to wait before retrying a command whose source lost its
/// connection: `first`, doubling up to `max`; retries go on until they succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Handle to the loader thread: send commands, poll results.
pub struct Loader {
    commands: Option<Sender<Command>>,
    results: Receiver<Loaded>,
    thread: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn spawn(source: Box<dyn Source>) -> Loader {
        Loader::spawn_with(source, RetryPolicy::default())
    }

    /// A loader that retries commands failing on a lost connection with
    /// `retry`, sending [`Loaded::Retrying`] before each wait.
    pub fn spawn_with(source: Box<dyn Source>, retry: RetryPolicy) -> Loader {
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let (res_tx, res_rx) = mpsc::channel::<Loaded>();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || serve(source.as_ref(), retry, &cmd_rx, &res_tx))
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
    pub fn wait(&self, timeout: Duration) -> Option<Loaded> {
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

/// The loader thread's loop: runs commands in order until the channel
/// closes; a command whose source lost its connection is retried (commands
/// arriving meanwhile wait their turn).
fn serve(
    source: &dyn Source,
    retry: RetryPolicy,
    commands: &Receiver<Command>,
    results: &Sender<Loaded>,
) {
    let mut queue: VecDeque<Command> = VecDeque::new();
    loop {
        let command = match queue.pop_front() {
            Some(c) => c,
            None => match commands.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let mut attempt = 0u32;
        let loaded = loop {
            match attempt_caught(source, &command) {
                Attempt::Done(loaded) => break loaded,
                Attempt::ConnectionLost(message) => {
                    attempt += 1;
                    let delay = retry.delay(attempt);
                    let notice = Loaded::Retrying {
                        message: format!("retry {attempt} in {}: {message}", seconds(delay)),
                    };
                    if results.send(notice).is_err() {
                        return;
                    }
                    let deadline = Instant::now() + delay;
                    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                        match commands.recv_timeout(left) {
                            Ok(c) => queue.push_back(c),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                }
            }
        };
        if results.send(loaded).is_err() {
            return;
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The outcome of one try of a command.
enum Attempt {
    /// A result for the app (a success or an error that retrying will not fix).
    Done(Loaded),
    /// The source lost its connection: worth trying again.
    ConnectionLost(String),
}

/// The error result of `command`.
fn failed(command: &Command, message: String) -> Loaded {
    match command {
        Command::ListRuns => Loaded::Runs(Err(message)),
        Command::LoadRun { entry, role } => Loaded::Run {
            role: *role,
            key: entry.key.clone(),
            result: Err(message),
        },
    }
}

/// Runs one command once, without catching panics.
fn attempt(source: &dyn Source, command: &Command) -> Attempt {
    match command {
        Command::ListRuns => match source.list_runs() {
            Err(e) if e.is_connection_lost() => Attempt::ConnectionLost(e.to_string()),
            result => Attempt::Done(Loaded::Runs(result.map_err(|e| e.to_string()))),
        },
        Command::LoadRun { entry, role } => match source.load_run(entry) {
            Err(e) if e.is_connection_lost() => Attempt::ConnectionLost(e.to_string()),
            result => Attempt::Done(Loaded::Run {
                role: *role,
                key: entry.key.clone(),
                result: result.map(Arc::new).map_err(|e| e.to_string()),
            }),
        },
    }
}

/// Runs one command once; a panic (a bug) becomes an error for the status line.
fn attempt_caught(source: &dyn Source, command: &Command) -> Attempt {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| attempt(source, command)));
    match outcome {
        Ok(a) => a,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Attempt::Done(failed(
                command,
                format!("internal error while loading (please report it): {what}"),
            ))
        }
    }
}

/// Runs one command (once: a lost connection is an error like any other).
pub fn execute(source: &dyn Source, command: Command) -> Loaded {
    match attempt(source, &command) {
        Attempt::Done(loaded) => loaded,
        Attempt::ConnectionLost(message) => failed(&command, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_double_up_to_the_maximum() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=6).map(|a| p.delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(u32::MAX), p.max);
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
    }
}
