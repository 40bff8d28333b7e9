//! Transparent huge pages for the large buffers a run fills at once: an
//! entry read whole from the state cache, an entry being encoded, a
//! sub-range of input, the scored rows. Each 4 KiB page first touched costs
//! a fault (the kernel zeroes, charges and maps it); a 2 MiB page costs one
//! fault for 512 of them. The allocator itself asks for none (`no_thp`,
//! see the workspace's `Cargo.toml`): a huge page half used by small
//! objects would hold memory for nothing, while these buffers are written
//! through. The advice covers the 2 MiB pages a buffer overlaps, its first
//! and last included: the allocator seldom starts a buffer on a 2 MiB
//! boundary, and a 4 MiB buffer advised only on the pages wholly inside it
//! got one huge page and 512 small ones. A neighbour sharing an end page
//! may then sit on the same huge page: at most 2 MiB more memory at each
//! end, and none where that page was touched first (the kernel backs a
//! 2 MiB range with a huge page only while none of it is mapped).
//!
//! mimalloc built with `no_thp` turns huge pages off for the whole process
//! (`PR_SET_THP_DISABLE`). Where the kernel gives them only to regions that
//! ask (`/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`), the
//! first advice turns them back on: the allocator's own regions still ask
//! for none, so only these buffers get them. Where the kernel gives them
//! to every region (`always`), they stay off, as the allocator wants.
//! `RFM_HUGE_PAGES=0` keeps them off everywhere.
//!
//! The advice is a hint: where the kernel has no huge page at hand, the
//! buffer works the same with small ones.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::OnceLock;

/// The huge page size of x86_64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Whether advised buffers may get huge pages in this process (see the
/// module's documentation); decided once.
fn allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        if std::env::var_os("RFM_HUGE_PAGES").is_some_and(|v| v == "0") {
            return false;
        }
        let mode =
            fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        turn_back_on(&mode)
    })
}

/// Clears the process's `PR_SET_THP_DISABLE` when the kernel's mode (the
/// content of `transparent_hugepage/enabled`) gives huge pages only to
/// regions that ask; whether advised regions may get them.
#[cfg(target_os = "linux")]
fn turn_back_on(mode: &str) -> bool {
    if !mode.contains("[madvise]") {
        return false;
    }
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 0)` only clears this process's
    // flag; it takes no pointer.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) == 0 }
}

/// No transparent huge pages to ask for beyond Linux.
#[cfg(not(target_os = "linux"))]
fn turn_back_on(_mode: &str) -> bool {
    false
}

/// Asks for huge pages behind the 2 MiB-aligned pages that `buf`'s
/// capacity overlaps, its first and last included (none for a buffer
/// smaller than two of them: too little to win).
pub fn advise<T>(buf: &mut Vec<T>) {
    let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < 2 * HUGE_PAGE || !allowed() {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let from = start / HUGE_PAGE * HUGE_PAGE;
    let to = (start + bytes).next_multiple_of(HUGE_PAGE);
    #[cfg(target_os = "linux")]
    if to > from {
        // SAFETY: `madvise(MADV_HUGEPAGE)` reads and writes no memory: it
        // changes how pages not yet touched will be backed, never any
        // contents, so the range may reach past `buf`'s allocation into
        // the allocator's neighbouring memory, or past its mapping (the
        // kernel then advises the mapped part and returns an error, which
        // is ignored: the advice is a hint).
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

/// A vector with room for `capacity` values, advised (see [`advise`]).
pub fn with_capacity<T>(capacity: usize) -> Vec<T> {
    let mut buf = Vec::with_capacity(capacity);
    advise(&mut buf);
    buf
}

/// Makes room for `additional` more values in `buf`, advising the new
/// allocation when it moved (see [`advise`]).
pub fn reserve<T>(buf: &mut Vec<T>, additional: usize) {
    let before = buf.capacity();
    buf.reserve(additional);
    if buf.capacity() != before {
        advise(buf);
    }
}

/// The whole content of the file at `path`, read into an advised buffer.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    read_open(&mut fs::File::open(path)?)
}

/// [`read_file`] of a file already open.
pub fn read_open(file: &mut fs::File) -> io::Result<Vec<u8>> {
    let size = file.metadata()?.len();
    // One byte more than the size: a file that grew meanwhile is read to
    // its end without the buffer moving for a last empty read.
    let mut buf = with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reads_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let bytes: Vec<u8> = (0..5 * HUGE_PAGE + 17).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_file(&path).unwrap(), bytes);
        fs::write(&path, b"").unwrap();
        assert!(read_file(&path).unwrap().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_come_back_on_only_where_the_kernel_gives_them_on_request() {
        // SAFETY (both): `prctl` with integer arguments only.
        let disabled = || unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        // As mimalloc built with `no_thp` leaves the process.
        let disable = || unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        assert_eq!(disable(), 0);
        assert!(!turn_back_on("[always] madvise never"));
        assert_eq!(disabled(), 1, "every region would get them: left off");
        assert!(!turn_back_on("always madvise [never]"));
        assert_eq!(disabled(), 1);
        assert!(turn_back_on("always [madvise] never\n"));
        assert_eq!(disabled(), 0);
    }

    /// The `VmFlags` of the mapping in `/proc/self/smaps` that holds `addr`.
    #[cfg(target_os = "linux")]
    fn vm_flags_at(addr: usize) -> Option<String> {
        let smaps = fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'));
            if let Some((Ok(lo), Ok(hi))) =
                range.map(|(lo, hi)| (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)))
            {
                inside = lo <= addr && addr < hi;
            } else if let Some(flags) = line.strip_prefix("VmFlags:").filter(|_| inside) {
                return Some(flags.to_string());
            }
        }
        None
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_buffer_is_advised_from_its_first_byte_to_its_last() {
        if !allowed() {
            // The kernel gives huge pages to every region or to none: no advice.
            return;
        }
        // Buffers of several sizes, so of several starts and ends: a buffer
        // seldom starts on a 2 MiB boundary.
        let buffers: Vec<Vec<u8>> = (0..4)
            .map(|i| with_capacity(2 * HUGE_PAGE + i * 4096 + 17))
            .collect();
        for buf in &buffers {
            let first = buf.as_ptr() as usize;
            for addr in [first, first + buf.capacity() - 1] {
                let flags = vm_flags_at(addr).expect("the buffer is mapped");
                assert!(
                    flags.split_whitespace().any(|f| f == "hg"),
                    "byte at {addr:#x} of a buffer at {first:#x} not advised: {flags}"
                );
            }
        }
    }

    #[test]
    fn reserve_keeps_the_values() {
        let mut v: Vec<u64> = (0..1000).collect();
        reserve(&mut v, 3 * HUGE_PAGE / 8);
        assert!(v.capacity() >= 1000 + 3 * HUGE_PAGE / 8);
        assert_eq!(v, (0..1000).collect::<Vec<u64>>());
        let w: Vec<u128> = with_capacity(HUGE_PAGE);
        assert!(w.capacity() >= HUGE_PAGE && w.is_empty());
    }
}
