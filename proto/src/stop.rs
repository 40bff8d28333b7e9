//! The stop signals of the servers: SIGINT (Ctrl-C, Docker's stop signal
//! here) and SIGTERM (Kubernetes, systemd). The first one starts a graceful
//! shutdown; a second one stops the process at once.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A received stop signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// The exit code of a process stopped at once by this signal (128 + its number).
    pub fn exit_code(self) -> i32 {
        match self {
            StopSignal::Interrupt => rfm_core::exit::SIGINT,
            StopSignal::Terminate => rfm_core::exit::SIGTERM,
        }
    }
}

/// SIGINT and SIGTERM, caught from creation on (their default action, to
/// end the process, no longer applies).
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn new() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> StopSignal {
        tokio::select! {
            _ = self.interrupt.recv() => StopSignal::Interrupt,
            _ = self.terminate.recv() => StopSignal::Terminate,
        }
    }

    /// In the background: a second signal ends the process at once with
    /// 128 + its number, after `say` has told why.
    pub fn exit_on_next(mut self, say: impl FnOnce(StopSignal) + Send + 'static) {
        tokio::spawn(async move {
            let second = self.next().await;
            say(second);
            std::process::exit(second.exit_code());
        });
    }
}
