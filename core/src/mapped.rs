//! Files mapped from the page cache rather than read into fresh memory: a
//! state cache entry, and the input file a CSV chunk is parsed from. A run
//! that takes most of its files from the cache spends most of its time on
//! memory it has never touched: every fresh page is zeroed by the kernel
//! (and, in a virtual machine, often faulted in by the host as well), while
//! the file's pages already sit in the page cache. Mapped, they are shared
//! as they are: no copy, no zeroing. An entry's mapping is populated when it
//! is made (`MAP_POPULATE`: one call maps every page, where faults would map
//! 16 at a time), since the entry's checksum reads it all at once anyway; an
//! input's is not, since a chunk reads only its part of the file.
//!
//! A mapped file that is cut short (truncated in place by another program)
//! while mapped would end the process with `SIGBUS` at the next read of a
//! page past its new end. The first mapping installs a handler for that
//! signal: a fault inside a mapping made here gets a page of zeros in place
//! of the lost one and is counted against that mapping
//! ([`MappedFile::was_cut_short`]), so the reader finds out and throws what
//! it read away; any other `SIGBUS` goes to the action there was before.
//! Entries are written whole and renamed into place (never rewritten in
//! place), so a cut-short entry is someone else's doing, and rare; what it
//! costs is one failed run (or one entry recomputed), never a crash or a
//! wrong result. An input cut short while a chunk reads it fails that chunk
//! ([`crate::Error::InputCutShort`]), as an input that changes while read
//! always did.
//!
//! A file rewritten in place (same size) while mapped shows the new bytes
//! where the reader has not been yet, as a read would: the modification time
//! checked after the reading refuses such a file either way.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How many files may be mapped at once; beyond it they are read. A
/// worker maps an input per running task besides the cache entries a job
/// reads: room for a worker of many slots.
const SLOTS: usize = 256;

/// The address ranges of the live mappings (`start == 0`: a free slot) and
/// the pages of each that were lost to a cut and replaced by zeros.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    lost_pages: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    lost_pages: AtomicU64::new(0),
};
static SLOTS_IN_USE: [Slot; SLOTS] = [FREE; SLOTS];

/// The page size, read once before the handler can run (`sysconf` is not
/// safe in a signal handler).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// Pages mapped when the mapping is made, where the kernel offers it.
#[cfg(target_os = "linux")]
const POPULATE: libc::c_int = libc::MAP_POPULATE;
#[cfg(all(unix, not(target_os = "linux")))]
const POPULATE: libc::c_int = 0;
#[cfg(not(unix))]
const POPULATE: i32 = 0;

/// A file's content, mapped read-only; unmapped when dropped.
pub struct MappedFile {
    path: PathBuf,
    ptr: *const u8,
    len: usize,
    /// Index into [`SLOTS_IN_USE`] (none for an empty file, or a mapping
    /// about to be dropped unguarded).
    slot: Option<usize>,
}

// SAFETY: the mapping is read-only and private to this value; the bytes
// are never written through it, so sharing `&[u8]` views across threads is
// as safe as sharing a `Vec<u8>`'s.
unsafe impl Send for MappedFile {}
// SAFETY: as above.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps the whole file at `path`. `Ok(None)` when it cannot be mapped
    /// with the guard (no slot free, the handler not installed, or a
    /// filesystem that maps no file): the caller reads it instead.
    pub fn open(path: &Path) -> io::Result<Option<MappedFile>> {
        let file = File::open(path)?;
        Self::map(&file, path, POPULATE)
    }

    /// [`open`](Self::open) of a file already open as `path`.
    pub fn map_open(file: &File, path: &Path) -> io::Result<Option<MappedFile>> {
        Self::map(file, path, POPULATE)
    }

    /// Maps an input file open as `path`, its pages mapped as they are read
    /// (a chunk reads its part of the file). `Ok(None)` as for
    /// [`open`](Self::open).
    pub fn map_input(file: &File, path: &Path) -> io::Result<Option<MappedFile>> {
        Self::map(file, path, 0)
    }

    #[cfg(unix)]
    fn map(file: &File, path: &Path, populate: libc::c_int) -> io::Result<Option<MappedFile>> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other("the file is larger than the address space"))?;
        if len == 0 {
            return Ok(Some(MappedFile {
                path: path.to_path_buf(),
                ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
                len: 0,
                slot: None,
            }));
        }
        if !guard_installed() {
            return Ok(None);
        }
        // SAFETY: a fresh read-only private mapping of an open file; the
        // kernel picks the address. Nothing else refers to it yet.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | populate,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            // A filesystem that maps no file (or no address space left):
            // read instead.
            return Ok(None);
        }
        let mut mapped = MappedFile {
            path: path.to_path_buf(),
            ptr: ptr as *const u8,
            len,
            slot: None,
        };
        let (start, end) = (ptr as usize, ptr as usize + len);
        for (i, slot) in SLOTS_IN_USE.iter().enumerate() {
            // The end first: a handler that sees the start sees the end.
            if slot
                .start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.lost_pages.store(0, Ordering::Relaxed);
                slot.end.store(end, Ordering::Release);
                slot.start.store(start, Ordering::Release);
                mapped.slot = Some(i);
                return Ok(Some(mapped));
            }
        }
        // No slot: unguarded, so not used (dropped: unmapped).
        Ok(None)
    }

    #[cfg(not(unix))]
    fn map(_file: &File, _path: &Path, _populate: i32) -> io::Result<Option<MappedFile>> {
        Ok(None)
    }

    /// The file's bytes (zeros where pages were lost to a cut, see
    /// [`was_cut_short`](Self::was_cut_short)).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self`
        // lives (a page lost to a cut is replaced by zeros, never unmapped).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Unmaps the whole pages within `[start, end)` of the file from this
    /// process (`MADV_DONTNEED`), once read: they leave its resident memory
    /// but stay in the page cache, and a later read of them maps them
    /// again. A reader going through a large file keeps only the pages it
    /// has not finished with.
    pub fn release(&self, start: usize, end: usize) {
        let page = PAGE_SIZE.load(Ordering::Relaxed).max(1);
        let (from, to) = (start.div_ceil(page) * page, end.min(self.len) / page * page);
        if from >= to {
            return;
        }
        #[cfg(unix)]
        // SAFETY: `[from, to)` lies within the mapping; dropping the pages
        // of a private mapping never written through only unmaps them (the
        // file's bytes come back on the next read).
        unsafe {
            libc::madvise(
                self.ptr.add(from) as *mut libc::c_void,
                to - from,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// Maps the pages within `[start, end)` of the file at once, where the
    /// kernel offers it (`MADV_POPULATE_READ`, Linux 5.14): one call where
    /// reading them would take a fault per 16 pages. A page lost to a cut
    /// is left for the read to meet (and the guard to count).
    pub fn populate(&self, start: usize, end: usize) {
        let page = PAGE_SIZE.load(Ordering::Relaxed).max(1);
        let (from, to) = (start / page * page, end.min(self.len));
        if from >= to {
            return;
        }
        #[cfg(target_os = "linux")]
        // SAFETY: `[from, to)` lies within the mapping; populating only maps
        // its pages (an error, such as a page past a cut, is ignored).
        unsafe {
            libc::madvise(
                self.ptr.add(from) as *mut libc::c_void,
                to - from,
                libc::MADV_POPULATE_READ,
            );
        }
    }

    /// Whether a page of the file was lost since it was mapped (the file was
    /// cut short meanwhile): what was read from it may hold zeros in place
    /// of its bytes, and must not be used.
    pub fn was_cut_short(&self) -> bool {
        self.slot
            .is_some_and(|i| SLOTS_IN_USE[i].lost_pages.load(Ordering::Acquire) > 0)
    }
}

/// An entry's bytes: mapped where the guard allows, else read.
pub enum FileBytes {
    Mapped(MappedFile),
    Read(Vec<u8>),
}

impl FileBytes {
    /// The whole content of the file at `path`, mapped (see the module's
    /// documentation) or, where it cannot be, read into memory.
    pub fn load(path: &Path) -> io::Result<FileBytes> {
        let mut file = File::open(path)?;
        Ok(match MappedFile::map_open(&file, path)? {
            Some(mapped) => FileBytes::Mapped(mapped),
            // The file opened once: read from the same open file.
            None => FileBytes::Read(crate::huge_pages::read_open(&mut file)?),
        })
    }

    /// The mapped file, when the bytes were mapped and it was cut short
    /// since (what was read from them must not be used).
    pub fn cut_short(&self) -> Option<&Path> {
        match self {
            FileBytes::Mapped(m) if m.was_cut_short() => Some(&m.path),
            _ => None,
        }
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m.bytes(),
            FileBytes::Read(v) => v,
        }
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(bytes: Vec<u8>) -> FileBytes {
        FileBytes::Read(bytes)
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Some(i) = self.slot {
            let slot = &SLOTS_IN_USE[i];
            slot.start.store(usize::MAX, Ordering::Release);
            slot.end.store(0, Ordering::Release);
        }
        #[cfg(unix)]
        // SAFETY: the mapping made in `map`, of `len` bytes, unmapped once;
        // no view of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
        if let Some(i) = self.slot {
            SLOTS_IN_USE[i].start.store(0, Ordering::Release);
        }
    }
}

/// The `SIGBUS` action in place before the guard, restored for a fault
/// that is not the guard's.
#[cfg(unix)]
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// Installs the `SIGBUS` handler once; whether it is in place.
#[cfg(unix)]
fn guard_installed() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: `sysconf` with a constant name.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if page > 0 {
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
            }
            // SAFETY: a zeroed `sigaction` is a valid value to fill; the
            // handler below only reads atomics and calls `mmap`/`sigaction`.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                (libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0).then_some(previous)
            }
        })
        .is_some()
}

/// A `SIGBUS`: a page of a guarded mapping lost to a cut gets zeros in its
/// place (the faulting read then goes on); any other fault is handed back
/// to the previous action, which the repeated fault then meets.
#[cfg(unix)]
extern "C" fn on_sigbus(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for slot in &SLOTS_IN_USE {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == usize::MAX {
            continue;
        }
        if addr >= start && addr < slot.end.load(Ordering::Acquire) {
            let at = addr / page * page;
            // SAFETY: replaces one page inside a live mapping of ours with
            // a private zero page at the same address (`MAP_FIXED`).
            let zeros = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeros != libc::MAP_FAILED {
                slot.lost_pages.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
    }
    // Not ours: the previous action takes the repeated fault.
    if let Some(Some(previous)) = PREVIOUS.get() {
        // SAFETY: restores the action saved at installation.
        unsafe {
            libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_file_has_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let bytes: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mapped = MappedFile::open(&path).unwrap().expect("mapped");
        assert_eq!(mapped.bytes(), &bytes[..]);
        assert!(!mapped.was_cut_short());
        std::fs::write(&path, b"").unwrap();
        let empty = MappedFile::open(&path).unwrap().expect("mapped");
        assert!(empty.bytes().is_empty());
    }

    #[test]
    fn a_file_cut_short_while_mapped_reads_zeros_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let page = PAGE_SIZE.load(Ordering::Relaxed).max(4096);
        std::fs::write(&path, vec![7u8; 4 * page]).unwrap();
        let mapped = MappedFile::open(&path).unwrap().expect("mapped");
        assert_eq!(mapped.bytes()[3 * page], 7);
        // Cut in place to one page: the last three pages are gone.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        let bytes = mapped.bytes();
        assert_eq!(bytes[0], 7, "the page kept is read as it is");
        assert_eq!(bytes[3 * page], 0, "a lost page reads as zeros, no SIGBUS");
        assert_eq!(bytes[2 * page + 5], 0);
        assert!(mapped.was_cut_short());
        drop(mapped);
        // A new mapping of the slot starts clean.
        let again = MappedFile::open(&path).unwrap().expect("mapped");
        assert!(!again.was_cut_short());
        assert_eq!(again.bytes(), &vec![7u8; page][..]);
    }
}
