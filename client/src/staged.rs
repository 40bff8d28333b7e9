//! A fetched job's `customers.csv`, written as it arrives: a thread of its
//! own writes each piece into the folder that will hold the run's results
//! ([`OutDir::stage_customers`]) while the next pieces come over the
//! network. The client keeps no copy of the file (a result of millions of
//! customers is hundreds of megabytes of text), only the pieces not yet
//! written, at most [`PIECES_AHEAD`] (a slow disk holds the fetch back), and
//! once the last piece is in, only the small files, the syncs and the rename
//! are left.

use std::thread::JoinHandle;

use bytes::Bytes;
use rfm_core::output::{OutDir, StagedCustomers};

/// Pieces received and not yet written, at most (each at most 2 MiB).
pub const PIECES_AHEAD: usize = 8;

/// The writing thread of one `customers.csv`; dropped before
/// [`finish`](StagedWriter::finish), it stops and its folder is removed.
#[derive(Debug)]
pub struct StagedWriter {
    pieces: Option<tokio::sync::mpsc::Sender<Bytes>>,
    thread: Option<JoinHandle<rfm_core::Result<StagedCustomers>>>,
}

impl StagedWriter {
    /// Starts writing into a fresh folder beside `out`'s target; `None` when
    /// no thread can be started (the caller keeps the text instead).
    pub fn start(out: &OutDir) -> Option<StagedWriter> {
        let out = out.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(PIECES_AHEAD);
        let thread = std::thread::Builder::new()
            .name("rfm-customers".into())
            .spawn(move || {
                let mut staged = out.stage_customers()?;
                // On a failed write the pieces still coming are dropped
                // with the channel; the error is told by `finish`.
                while let Some(piece) = rx.blocking_recv() {
                    staged.write(&piece)?;
                }
                Ok(staged)
            })
            .ok()?;
        Some(StagedWriter {
            pieces: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands the next piece of the text to the writing thread, waiting
    /// while [`PIECES_AHEAD`] pieces are still to be written.
    pub async fn push(&self, piece: Bytes) {
        if let Some(tx) = &self.pieces {
            // A writer that has stopped on an error says so in `finish`.
            let _ = tx.send(piece).await;
        }
    }

    /// Waits for the last piece to be written: the file, not yet synced, in
    /// its folder, for [`OutDir::write_results_staged`].
    pub fn finish(mut self) -> rfm_core::Result<StagedCustomers> {
        self.pieces = None;
        let thread = self.thread.take().expect("finished once");
        thread.join().unwrap_or_else(|_| {
            Err(rfm_core::Error::Output {
                path: "customers.csv".into(),
                source: std::io::Error::other("the thread writing it failed"),
            })
        })
    }
}

impl Drop for StagedWriter {
    fn drop(&mut self) {
        // Ends the thread's loop; joined so that its folder is gone (the
        // staged file dropped with it) before the process goes on or exits.
        self.pieces = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
