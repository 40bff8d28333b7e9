//! Files and folders that appear whole or not at all. Everything rfm writes
//! goes first under a temporary name beside its target: unguessable (128
//! random bits), created exclusively and never through a symbolic link
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdir`), so a link planted at a temporary
//! name cannot redirect a write. Once complete it is synced, renamed into
//! place, and the parent folder is synced so the rename survives a crash.

use std::borrow::Borrow;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// A temporary name beside `target`: `.NAME.rfm-KIND-<32 hex digits>`.
fn temp_name(target: &Path, kind: &str) -> io::Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file or folder",
        )
    })?;
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).map_err(|e| io::Error::other(format!("no random bits: {e}")))?;
    let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".rfm-{kind}-{hex}"));
    Ok(target.with_file_name(temp))
}

/// Creates a new file for writing: fails if anything (a file, a link) is
/// already at `path`.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Makes a folder's entries (new names, renames) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file written under a temporary name beside its target, removed unless
/// [`TempFile::persist`] puts it in place.
pub struct TempFile {
    path: PathBuf,
    file: File,
    placed: bool,
}

impl TempFile {
    /// A new, empty temporary file beside `target`.
    pub fn beside(target: &Path) -> io::Result<TempFile> {
        let path = temp_name(target, "tmp")?;
        let file = create_new(&path)?;
        Ok(TempFile {
            path,
            file,
            placed: false,
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, to write into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Syncs the file, renames it to `target` (replacing a file there) and
    /// syncs the folder.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, target)?;
        self.placed = true;
        sync_dir(parent_of(target))
    }

    /// Renames the file to `target` without syncing it or the folder: other
    /// processes see it whole once it has its name, but a crash may forget
    /// the rename or leave the name on bytes that never reached the disk.
    /// For files whose loss costs only their recomputation and whose damage
    /// is found when they are read: cache entries, which carry their own
    /// length and checksum.
    pub fn persist_unsynced(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A fresh folder beside its target, removed with its content unless
/// [`TempDir::replace`] puts it in place.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    placed: bool,
}

impl TempDir {
    /// Creates a new, empty folder beside `target` (`mkdir` fails if anything
    /// is at that name, a link included).
    pub fn beside(target: &Path) -> io::Result<TempDir> {
        let path = temp_name(target, "tmp")?;
        fs::create_dir(&path)?;
        Ok(TempDir {
            path,
            placed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the folder at `target`, replacing whatever folder is there as a
    /// whole; readers see either the old folder or the new one, never a mix.
    /// The parent folder is synced and the old folder removed, side by side.
    pub fn replace(mut self, target: &Path) -> io::Result<()> {
        let parent = parent_of(target);
        let exists = fs::symlink_metadata(target).is_ok();
        if !exists {
            fs::rename(&self.path, target)?;
            self.placed = true;
            return sync_dir(parent);
        }
        if exchange(&self.path, target)? {
            // The old folder now has the temporary name: it is removed while
            // the parent is synced (both done before returning; freeing a
            // large old file's blocks can take as long as the sync).
            self.placed = true;
            let old = &self.path;
            return std::thread::scope(|scope| {
                let removing = std::thread::Builder::new()
                    .name("rfm-remove-old".into())
                    .spawn_scoped(scope, move || {
                        let _ = fs::remove_dir_all(old);
                    });
                let synced = sync_dir(parent);
                match removing {
                    Ok(thread) => {
                        let _ = thread.join();
                    }
                    // No thread: removed here.
                    Err(_) => {
                        let _ = fs::remove_dir_all(old);
                    }
                }
                synced
            });
        }
        // No atomic exchange on this filesystem: move the old folder aside,
        // then the new one in (a crash between the two leaves both under
        // their hidden names beside the target).
        let aside = temp_name(target, "old")?;
        fs::rename(target, &aside)?;
        if let Err(e) = fs::rename(&self.path, target) {
            let _ = fs::rename(&aside, target);
            return Err(e);
        }
        self.placed = true;
        sync_dir(parent)?;
        let _ = fs::remove_dir_all(&aside);
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Bytes written between two requests to start writing back.
const WRITEBACK_EVERY: u64 = 1 << 20;

/// Writes straight to a file (no buffer: its user writes large blocks) and
/// asks the kernel to start writing each megabyte back as soon as it is
/// written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait),
/// so the final `fsync` waits for the last megabyte and the journal, not
/// for the whole file. Elsewhere than on Linux it only writes.
#[derive(Debug)]
pub struct EarlyWriteback<F: Borrow<fs::File>> {
    file: F,
    /// Bytes written so far.
    written: u64,
    /// Where the bytes not yet asked back start.
    pending_from: u64,
}

impl<F: Borrow<fs::File>> EarlyWriteback<F> {
    /// Writes into `file` (an open file, or a reference to one) from its start.
    pub fn new(file: F) -> EarlyWriteback<F> {
        EarlyWriteback {
            file,
            written: 0,
            pending_from: 0,
        }
    }

    /// The file written into.
    pub fn file(&self) -> &fs::File {
        self.file.borrow()
    }

    /// The file, given back once written.
    pub fn into_file(self) -> F {
        self.file
    }

    fn start_writeback(&mut self) {
        let len = self.written - self.pending_from;
        if len >= WRITEBACK_EVERY {
            start_writeback(self.file.borrow(), self.pending_from, len);
            self.pending_from = self.written;
        }
    }
}

impl<F: Borrow<fs::File>> io::Write for EarlyWriteback<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut self.file.borrow()).write(buf)?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts writing `len` bytes of `file` from `offset` back to disk. Only a
/// hint: durability comes from the `fsync` after, so a refusal is ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: a valid open descriptor; the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &fs::File, _: u64, _: u64) {}

/// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`); `false` where
/// the filesystem or the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; the call only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(err),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_hidden_and_unguessable() {
        let a = temp_name(Path::new("/x/out"), "tmp").unwrap();
        let b = temp_name(Path::new("/x/out"), "tmp").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".out.rfm-tmp-") && name.len() == ".out.rfm-tmp-".len() + 32);
    }

    #[test]
    fn a_link_at_the_name_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_new(&link).is_err());
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert!(create_new(&dangling).is_err());
        assert!(!d.path().join("nowhere").exists());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_folder_is_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("run");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.csv"), b"old").unwrap();
        let staging = TempDir::beside(&target).unwrap();
        fs::write(staging.path().join("new.csv"), b"new").unwrap();
        staging.replace(&target).unwrap();
        let names: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["new.csv"]);
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no folder left aside"
        );
    }
}
