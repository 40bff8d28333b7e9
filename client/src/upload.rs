//! `rfm submit --upload`: sends a file of this machine to the coordinator
//! (`UploadInput`), which keeps it under its data root, so that a cluster
//! that cannot see the user's disk can run on it. The file is read twice,
//! in chunks, never whole: once for its SHA-256 (the coordinator checks the
//! bytes against it, and stores the same content once), once to send it;
//! the gRPC stream's flow control holds the reading back to the network's
//! pace. On a terminal a progress bar shows both passes.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rfm_core::report::UploadedFile;
use rfm_core::text::escape_for_terminal;
use rfm_proto::v1::upload_chunk::Part;
use rfm_proto::v1::{UploadChunk, UploadStart};
use rfm_proto::{PROTOCOL_VERSION, UPLOAD_CHUNK_BYTES};
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::cluster::{self, Connection, JobError};
use crate::exit::{self, UsageError};

/// Chunks read ahead of the network: the rest waits on the stream.
const READ_AHEAD_CHUNKS: usize = 4;

/// A file the coordinator holds now.
pub struct Uploaded {
    /// The input to submit (relative to the coordinator's data root).
    pub input: String,
    /// What the run's report says of the file.
    pub record: UploadedFile,
}

/// The file `rfm submit --upload INPUT` sends, checked before a run exists:
/// one local file (a URL, a directory or a glob is a usage error).
pub fn local_file(input: &str) -> Result<PathBuf> {
    if rfm_core::remote::is_remote(Path::new(input)) {
        return Err(UsageError(format!(
            "--upload sends a file of this machine; {input} is a remote object: submit it \
             without --upload"
        ))
        .into());
    }
    let path = std::path::absolute(input).unwrap_or_else(|_| PathBuf::from(input));
    if path.is_dir() {
        return Err(UsageError(format!(
            "--upload sends one file; {} is a folder: upload its files one at a time, or \
             submit the folder by path where the cluster sees it",
            path.display()
        ))
        .into());
    }
    Ok(path)
}

/// Uploads `path` to the coordinator of `conn`; with `progress`, tells how
/// it goes on stderr (a bar on a terminal). Errors name the file.
pub async fn upload(conn: &mut Connection, path: &Path, progress: bool) -> Result<Uploaded> {
    let shown = escape_for_terminal(&path.display().to_string()).into_owned();
    let size = open_file(path)?
        .metadata()
        .map_err(|source| unreadable(path, source))?
        .len();
    let bar = Bar::new(progress, size);
    bar.phase(&format!("checking {shown}"));
    let sha256 = {
        let (path, bar) = (path.to_path_buf(), bar.clone());
        tokio::task::spawn_blocking(move || digest(&path, &bar))
            .await
            .context("hashing the file failed")??
    };
    bar.phase(&format!("uploading {shown}"));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
    let start = UploadStart {
        protocol_version: PROTOCOL_VERSION,
        file_name,
        size,
        sha256: sha256.clone(),
    };
    // Cannot fail: the channel is new and has room.
    let _ = tx.try_send(UploadChunk {
        part: Some(Part::Start(start)),
    });
    let reader = {
        let (path, bar) = (path.to_path_buf(), bar.clone());
        tokio::task::spawn_blocking(move || send_file(&path, size, &tx, &bar))
    };
    let answer = conn
        .client
        .upload_input(conn.token.request(ReceiverStream::new(rx)))
        .await;
    // The reader stops once the stream is gone (answered or refused).
    let read = reader.await.context("reading the file failed")?;
    bar.done();
    let answer = match (answer, read) {
        (Ok(answer), _) => answer.into_inner(),
        // A file that could not be read is the cause of what follows.
        (Err(_), Err(unread)) => return Err(unread),
        (Err(status), Ok(())) => return Err(refused(&conn.url, path, status).into()),
    };
    if progress {
        eprintln!(
            "{}",
            escape_for_terminal(&format!(
                "uploaded {} ({} bytes){} as {}",
                path.display(),
                size,
                if answer.reused {
                    ", already on the coordinator,"
                } else {
                    ""
                },
                answer.input
            ))
        );
    }
    Ok(Uploaded {
        input: answer.input,
        record: UploadedFile {
            file: path.display().to_string(),
            bytes: size,
            sha256,
        },
    })
}

/// The error of a refused upload, naming the file and the coordinator.
fn refused(url: &str, path: &Path, status: tonic::Status) -> JobError {
    let e = if status.code() == Code::Unimplemented {
        JobError {
            code: exit::CLUSTER,
            message: format!(
                "coordinator {url} takes no uploads (an older rfm release?); run the same rfm \
                 release everywhere"
            ),
        }
    } else {
        cluster::status_error(url, status)
    };
    JobError {
        code: e.code,
        message: format!("cannot upload {}: {}", path.display(), e.message),
    }
}

fn open_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| unreadable(path, source))
}

/// An input file that cannot be read (exit 3, naming it).
fn unreadable(path: &Path, source: std::io::Error) -> anyhow::Error {
    rfm_core::Error::Unreadable {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// The SHA-256 of the file, in lowercase hex, read a chunk at a time.
fn digest(path: &Path, bar: &Bar) -> Result<String> {
    let mut file = open_file(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; UPLOAD_CHUNK_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(|e| unreadable(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.advance(n);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Sends the file's first `size` bytes as data chunks; stops early when the
/// stream is gone (the coordinator answered or refused). A file that
/// shrank ends the stream short, and the coordinator refuses it.
fn send_file(
    path: &Path,
    size: u64,
    tx: &tokio::sync::mpsc::Sender<UploadChunk>,
    bar: &Bar,
) -> Result<()> {
    let mut file = open_file(path)?.take(size);
    loop {
        let mut buf = vec![0u8; UPLOAD_CHUNK_BYTES];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file
                .read(&mut buf[filled..])
                .map_err(|e| unreadable(path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(());
        }
        buf.truncate(filled);
        let chunk = UploadChunk {
            part: Some(Part::Data(buf)),
        };
        if tx.blocking_send(chunk).is_err() {
            return Ok(());
        }
        bar.advance(filled);
    }
}

/// The progress of an upload on stderr: a bar on a terminal, else a line
/// a phase; nothing without `progress` (`--quiet`).
#[derive(Clone)]
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

impl Bar {
    fn new(progress: bool, size: u64) -> Bar {
        let tty = progress && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new(size);
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .map(|st| st.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Bar {
            bar,
            lines: progress && !tty,
        }
    }

    fn phase(&self, what: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(0);
                bar.set_message(what.to_string());
            }
            None if self.lines => eprintln!("{what}"),
            None => {}
        }
    }

    fn advance(&self, bytes: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes as u64);
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
