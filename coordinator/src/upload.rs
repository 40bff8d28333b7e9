//! Uploads (`rfm submit --upload`): a client streams a file of its own into
//! the data root's `uploads/` folder, then submits it by the path this
//! answers, as if it had always been there.
//!
//! The stored name is the content's SHA-256 and the original name's
//! extension, sanitized (`uploads/<sha256>.csv.gz`): no name a client gives
//! can lead out of the folder, and the same content is stored once (a file
//! already there with the declared size is reused without its bytes being
//! sent again). The bytes go to a temporary file in the same folder, checked
//! against the declared size and digest, synced, then renamed into place: a
//! job never sees a half-written file, and a stream that is cut, stalls,
//! sends too much or does not match leaves nothing behind (the temporary file
//! is removed when the call ends, however it ends). A file larger than
//! `--max-upload-size` is refused from its declared size, before any byte is
//! written, and the limit holds for the bytes actually sent.
//!
//! Uploads do not pile up: one neither sent again nor new for
//! `--upload-retention` (default 7 days) is removed when the coordinator
//! starts and whenever a new upload arrives. Sending a file again marks it
//! used through its access time, not its modification time, so the state
//! cache, which keys a file by its modification time, still knows it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rfm_core::text::escape_controls;
use rfm_core::DataRoot;
use rfm_proto::v1::upload_chunk::Part;
use rfm_proto::v1::{UploadChunk, UploadInputResponse, UploadStart};
use rfm_proto::PROTOCOL_VERSION;
use sha2::{Digest, Sha256};
use tonic::{Status, Streaming};

/// Default `--max-upload-size`: 16 GiB.
pub const DEFAULT_MAX_UPLOAD_SIZE: u64 = 16 << 30;
/// Default `--upload-retention`: 7 days.
pub const DEFAULT_UPLOAD_RETENTION: Duration = Duration::from_secs(7 * 86400);
/// The folder of the data root uploads are stored in.
pub const UPLOADS_DIR: &str = "uploads";
/// An upload that sends nothing for this long is given up (its temporary
/// file removed).
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Suffix of the temporary files of uploads in progress.
const PART_SUFFIX: &str = ".part";
/// A temporary file untouched for this long is left over from a coordinator
/// that stopped mid-upload (a live upload writes at least every
/// [`UPLOAD_IDLE_TIMEOUT`]): it is removed at start.
const STALE_PART_AGE: Duration = Duration::from_secs(600);
/// Longest extension kept from the original name (e.g. `csv.gz`).
const MAX_EXTENSION_CHARS: usize = 16;
/// Longest original file name accepted (a file name's limit on Linux).
const MAX_FILE_NAME_BYTES: usize = 255;

/// Where uploads go, and how large they may be.
#[derive(Clone, Debug)]
pub struct Uploads {
    root: std::sync::Arc<DataRoot>,
    max_size: u64,
    /// Unused this long, an upload is removed; zero keeps them.
    retention: Duration,
}

impl Uploads {
    pub fn new(root: std::sync::Arc<DataRoot>, max_size: u64, retention: Duration) -> Uploads {
        Uploads {
            root,
            max_size,
            retention,
        }
    }

    /// Receives one upload: the first message must be its metadata, the
    /// rest its bytes.
    pub async fn receive(&self, mut stream: Streaming<UploadChunk>) -> Result<Received, Status> {
        let start = match next(&mut stream).await? {
            Some(Part::Start(start)) => start,
            Some(Part::Data(_)) | None => {
                return Err(Status::invalid_argument(
                    "an upload must begin with its metadata (UploadStart)",
                ))
            }
        };
        let plan = self.check(&start)?;
        let dir = self.dir()?;
        let target = dir.join(&plan.stored_name);
        if let Some(len) = regular_file_len(&target) {
            if len == start.size {
                // Used again: young for --upload-retention; the modification
                // time (the cache's key) stays.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&target)
                    .and_then(|f| {
                        f.set_times(std::fs::FileTimes::new().set_accessed(SystemTime::now()))
                    });
                return Ok(self.received(&plan, &start, true));
            }
        }
        let part = TempFile::create(&dir, &start.sha256)?;
        let written = receive_into(&mut stream, &part, &start).await?;
        part.persist(&target)
            .map_err(|e| io_status(&e, &start, "store"))?;
        debug_assert_eq!(written, start.size);
        Ok(self.received(&plan, &start, false))
    }

    fn received(&self, plan: &Plan, start: &UploadStart, reused: bool) -> Received {
        Received {
            response: UploadInputResponse {
                input: format!("{UPLOADS_DIR}/{}", plan.stored_name),
                reused,
                bytes: start.size,
            },
            file_name: start.file_name.clone(),
        }
    }

    /// Checks the metadata: the protocol, the size against the limit, the
    /// digest's form, the name.
    fn check(&self, start: &UploadStart) -> Result<Plan, Status> {
        if start.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version mismatch: the client speaks version {}, this coordinator \
                 speaks version {PROTOCOL_VERSION}; run the same rfm release everywhere",
                start.protocol_version
            )));
        }
        if start.size > self.max_size {
            return Err(Status::failed_precondition(format!(
                "{} is {} bytes, more than this coordinator accepts (its --max-upload-size, {} \
                 bytes); put the file under the coordinator's data root and submit it by path, \
                 or ask for a larger --max-upload-size",
                escape_controls(&start.file_name),
                start.size,
                self.max_size
            )));
        }
        if !is_sha256(&start.sha256) {
            return Err(Status::invalid_argument(
                "the upload's sha256 must be 64 lowercase hex digits",
            ));
        }
        if start.file_name.len() > MAX_FILE_NAME_BYTES {
            return Err(Status::invalid_argument(format!(
                "the upload's file name is longer than {MAX_FILE_NAME_BYTES} bytes"
            )));
        }
        let extension = stored_extension(&start.file_name);
        let stored_name = if extension.is_empty() {
            start.sha256.clone()
        } else {
            format!("{}.{extension}", start.sha256)
        };
        Ok(Plan { stored_name })
    }

    /// The uploads folder, made when missing; it must lie under the root
    /// (a link leading out of it is refused).
    fn dir(&self) -> Result<PathBuf, Status> {
        let dir = self.root.path().join(UPLOADS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Status::internal(format!(
                "the coordinator cannot make its uploads folder {}: {e}",
                dir.display()
            ))
        })?;
        match std::fs::canonicalize(&dir) {
            Ok(real) if real.starts_with(self.root.path()) && real.is_dir() => Ok(real),
            _ => Err(Status::internal(format!(
                "the coordinator's uploads folder {} is not a folder under its data root; \
                 its operator should remove it",
                dir.display()
            ))),
        }
    }

    /// Removes the uploads neither stored nor sent again for the retention
    /// (the later of their access and modification times); returns how
    /// many, and their bytes. Temporary files are left to
    /// [`Self::remove_stale_parts`].
    pub fn remove_expired(&self) -> (usize, u64) {
        if self.retention.is_zero() {
            return (0, 0);
        }
        let dir = self.root.path().join(UPLOADS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return (0, 0);
        };
        let now = SystemTime::now();
        let (mut removed, mut bytes) = (0, 0);
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let last_used = match (meta.accessed(), meta.modified()) {
                (Ok(a), Ok(m)) => a.max(m),
                (Ok(t), Err(_)) | (Err(_), Ok(t)) => t,
                (Err(_), Err(_)) => continue,
            };
            let expired = now
                .duration_since(last_used)
                .is_ok_and(|age| age >= self.retention);
            if meta.is_file() && expired && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
                bytes += meta.len();
            }
        }
        (removed, bytes)
    }

    /// Removes temporary files left by a coordinator that stopped
    /// mid-upload; returns how many.
    pub fn remove_stale_parts(&self) -> usize {
        let dir = self.root.path().join(UPLOADS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let now = SystemTime::now();
        entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with('.') && name.ends_with(PART_SUFFIX)
            })
            .filter(|e| {
                e.metadata()
                    .ok()
                    .filter(|m| m.is_file())
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age >= STALE_PART_AGE)
            })
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }
}

/// A received upload: the answer, and the client's name for the file (to log).
pub struct Received {
    pub response: UploadInputResponse,
    pub file_name: String,
}

/// What an accepted upload's metadata makes of it.
struct Plan {
    /// `<sha256>[.<ext>]`.
    stored_name: String,
}

/// The next message's part; an idle stream is given up.
async fn next(stream: &mut Streaming<UploadChunk>) -> Result<Option<Part>, Status> {
    match tokio::time::timeout(UPLOAD_IDLE_TIMEOUT, stream.message()).await {
        Err(_) => Err(Status::deadline_exceeded(format!(
            "the upload sent nothing for {UPLOAD_IDLE_TIMEOUT:?}: given up"
        ))),
        Ok(Err(status)) => Err(status),
        Ok(Ok(None)) => Ok(None),
        Ok(Ok(Some(chunk))) => chunk
            .part
            .map(Some)
            .ok_or_else(|| Status::invalid_argument("an upload message holds nothing")),
    }
}

/// Writes the data messages into `part`, checking them against `start`;
/// returns the bytes written.
async fn receive_into(
    stream: &mut Streaming<UploadChunk>,
    part: &TempFile,
    start: &UploadStart,
) -> Result<u64, Status> {
    let name = escape_controls(&start.file_name);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut file = part.file()?;
    while let Some(message) = next(stream).await? {
        let Part::Data(data) = message else {
            return Err(Status::invalid_argument(
                "an upload has one metadata message, the first",
            ));
        };
        written += data.len() as u64;
        if written > start.size {
            return Err(Status::failed_precondition(format!(
                "the upload of {name} sent more than the {} bytes it declared",
                start.size
            )));
        }
        hasher.update(&data);
        // Blocking writes of at most a chunk, off the async threads.
        file = tokio::task::spawn_blocking(move || file.write_all(&data).map(|()| file))
            .await
            .map_err(|e| Status::internal(format!("writing the upload failed: {e}")))?
            .map_err(|e| io_status(&e, start, "write"))?;
    }
    if written != start.size {
        return Err(Status::failed_precondition(format!(
            "the upload of {name} ended after {written} of its {} bytes; send it again",
            start.size
        )));
    }
    let digest = hex(&hasher.finalize());
    if digest != start.sha256 {
        return Err(Status::failed_precondition(format!(
            "the upload of {name} does not match its declared SHA-256 (got {digest}): \
             did the file change while it was sent? send it again"
        )));
    }
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(|e| Status::internal(format!("syncing the upload failed: {e}")))?
        .map_err(|e| io_status(&e, start, "sync"))?;
    Ok(written)
}

/// A temporary file of an upload in progress, removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// A new `.<sha256>.<random>.part` in `dir`.
    fn create(dir: &Path, sha256: &str) -> Result<TempFile, Status> {
        let path = dir.join(format!(
            ".{sha256}.{}{PART_SUFFIX}",
            rfm_proto::auth::random_hex(8)
        ));
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                Status::internal(format!(
                    "the coordinator cannot create {}: {e}",
                    path.display()
                ))
            })?;
        Ok(TempFile {
            path,
            persisted: false,
        })
    }

    fn file(&self) -> Result<std::fs::File, Status> {
        std::fs::File::options()
            .write(true)
            .open(&self.path)
            .map_err(|e| {
                Status::internal(format!(
                    "the coordinator cannot open {}: {e}",
                    self.path.display()
                ))
            })
    }

    /// Renames the (synced) file to `target` and syncs the folder, so the
    /// rename survives a crash.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The status of a failed write: a full disk (or quota) says so.
fn io_status(e: &std::io::Error, start: &UploadStart, doing: &str) -> Status {
    use std::io::ErrorKind;
    let name = escape_controls(&start.file_name);
    if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        return Status::resource_exhausted(format!(
            "the coordinator's data root has no room left for {name} ({} bytes): {e}; free space \
             there (old files under {UPLOADS_DIR}/ can go) and upload again",
            start.size
        ));
    }
    Status::internal(format!(
        "the coordinator could not {doing} the upload of {name}: {e}"
    ))
}

/// The size of a regular file (not a link) at `path`.
fn regular_file_len(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map(|m| m.len())
}

/// The extension a stored upload keeps of the original name: its last
/// extension, and the one before it when the last is a compression
/// (`csv.gz`, `csv.zst`), lowercased; only ASCII letters and digits, short;
/// empty when there is none worth keeping.
pub fn stored_extension(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut parts: Vec<&str> = base.split('.').skip(1).collect();
    let clean = |p: &str| {
        !p.is_empty()
            && p.len() <= MAX_EXTENSION_CHARS
            && p.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let Some(last) = parts.pop().filter(|p| clean(p)) else {
        return String::new();
    };
    let last = last.to_ascii_lowercase();
    let compressed = matches!(last.as_str(), "gz" | "gzip" | "zst" | "zstd");
    match parts.pop().filter(|p| compressed && clean(p)) {
        Some(inner) => format!("{}.{last}", inner.to_ascii_lowercase()),
        None => last,
    }
}

/// Whether `text` is a SHA-256 digest as uploads give it: 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_is_kept_sanitized() {
        assert_eq!(stored_extension("retail.csv"), "csv");
        assert_eq!(stored_extension("Retail.CSV.GZ"), "csv.gz");
        assert_eq!(stored_extension("a.b.csv.zst"), "csv.zst");
        assert_eq!(stored_extension("x.parquet"), "parquet");
        assert_eq!(stored_extension("book.xlsx"), "xlsx");
        assert_eq!(stored_extension("old.xls"), "xls");
        assert_eq!(stored_extension("notes.tar.csv"), "csv");
        assert_eq!(stored_extension("noext"), "");
        assert_eq!(stored_extension(".hidden"), "hidden");
        assert_eq!(stored_extension("x.."), "");
        assert_eq!(stored_extension("../../etc/passwd"), "");
        assert_eq!(stored_extension("a.c\\sv"), "");
        assert_eq!(stored_extension("a./../x"), "");
        assert_eq!(stored_extension("a.csv/../../x"), "");
        assert_eq!(stored_extension("a.c%2fsv"), "");
        assert_eq!(stored_extension("a.verylongextension123"), "");
        assert_eq!(stored_extension("a.gz"), "gz");
    }

    #[test]
    fn metadata_is_checked_before_any_byte() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::sync::Arc::new(DataRoot::new(dir.path()).unwrap());
        let uploads = Uploads::new(root, 1000, DEFAULT_UPLOAD_RETENTION);
        let start = |size: u64, sha: &str, name: &str| UploadStart {
            protocol_version: PROTOCOL_VERSION,
            file_name: name.into(),
            size,
            sha256: sha.into(),
        };
        let sha = "a".repeat(64);
        let plan = uploads.check(&start(1000, &sha, "x.csv.gz")).unwrap();
        assert_eq!(plan.stored_name, format!("{sha}.csv.gz"));
        let err = uploads.check(&start(1001, &sha, "big.csv")).err().unwrap();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("--max-upload-size"), "{err}");
        assert!(err.message().contains("big.csv"), "{err}");
        let bad = uploads.check(&start(1, &"A".repeat(64), "x.csv")).err();
        assert_eq!(bad.unwrap().code(), tonic::Code::InvalidArgument);
        let bad = uploads.check(&start(1, "../x", "x.csv")).err();
        assert_eq!(bad.unwrap().code(), tonic::Code::InvalidArgument);
        let mut old = start(1, &sha, "x.csv");
        old.protocol_version = PROTOCOL_VERSION + 1;
        let bad = uploads.check(&old).err().unwrap();
        assert_eq!(bad.code(), tonic::Code::FailedPrecondition);
        assert!(!dir.path().join(UPLOADS_DIR).exists());
    }

    #[test]
    fn stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::sync::Arc::new(DataRoot::new(dir.path()).unwrap());
        let uploads = Uploads::new(root, 1000, DEFAULT_UPLOAD_RETENTION);
        let folder = uploads.dir().unwrap();
        let old = folder.join(".abc.1234.part");
        let fresh = folder.join(".def.5678.part");
        let kept = folder.join("abc.csv");
        for f in [&old, &fresh, &kept] {
            std::fs::write(f, "x").unwrap();
        }
        let long_ago = SystemTime::now() - 2 * STALE_PART_AGE;
        for f in [&old, &kept] {
            std::fs::File::options()
                .append(true)
                .open(f)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert_eq!(uploads.remove_stale_parts(), 1);
        assert!(!old.exists());
        assert!(fresh.exists() && kept.exists());
    }
}
