//! The data root: the one directory a coordinator's or worker's inputs may
//! come from (`--data-root`).
//!
//! An input spec (a file, a directory or a glob, as [`crate::input`] reads
//! it) is taken relative to the root; an absolute one must lie under it.
//! Every path, glob match and directory entry is resolved — symbolic links
//! followed, `..` removed — and refused before a byte of it is read when it
//! falls outside the root. A glob never lists a directory outside the root.
//! A path outside the root and a missing path get the same error,
//! [`Error::NotInDataRoot`], naming only the path as given: no existence
//! oracle, and never a byte of the refused file.
//!
//! [`DataRoot::open`] is the checked open of readers: it opens the file, then
//! checks the real path of the open descriptor (`/proc/self/fd/N`), so a link
//! swapped in between the check and the open is caught too.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::engine::InputReader;
use crate::error::{Error, Result};
use crate::input;

/// A directory that holds every input (canonical: no link, no `..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRoot {
    root: PathBuf,
}

impl DataRoot {
    /// The root at `dir`, which must be an existing directory.
    pub fn new(dir: &Path) -> Result<DataRoot> {
        let bad = |why: String| {
            Error::invalid_option(
                "--data-root",
                format!("{}: {why}; give an existing directory", dir.display()),
            )
        };
        let root = std::fs::canonicalize(dir).map_err(|e| bad(e.to_string()))?;
        if !root.is_dir() {
            return Err(bad("not a directory".into()));
        }
        Ok(DataRoot { root })
    }

    /// The root's real path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `path` as the root sees it: a relative path below the root, an
    /// absolute one as it is.
    pub fn join(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    /// The real path of `path` when it exists and lies under the root.
    pub(crate) fn admit(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(self.join(path))
            .ok()
            .filter(|real| self.holds(real))
    }

    /// Whether a real path lies under the root.
    fn holds(&self, real: &Path) -> bool {
        real.starts_with(&self.root)
    }

    /// The files named by an input spec under the root: a file, a directory
    /// (its files of every supported format, hidden ones left out, sorted) or
    /// a glob (sorted). A path outside the root, a
    /// missing one, a directory entry or glob match leading out of it, and a
    /// glob matching nothing under it are all [`Error::NotInDataRoot`].
    pub fn resolve(&self, spec: &str, cancel: &Cancel) -> Result<Vec<PathBuf>> {
        let joined = self.join(Path::new(spec));
        match self.admit(&joined) {
            Some(real) if real.is_dir() => self.list_dir(&joined, &real),
            Some(real) if real.is_file() => Ok(vec![joined]),
            Some(_) => Err(Error::Unreadable {
                path: joined,
                source: std::io::Error::other("not a regular file"),
            }),
            None if input::has_wildcard(spec) => {
                let files = input::glob_files(&joined, Some(self), cancel)?;
                if files.is_empty() {
                    return Err(refused(Path::new(spec)));
                }
                Ok(files)
            }
            None => Err(refused(Path::new(spec))),
        }
    }

    /// A directory's input files (every supported format, no hidden one:
    /// [`crate::format::InputFormat::taken_from_directory`]), sorted; an
    /// entry leading out of the root
    /// (or nowhere) refuses the whole input.
    fn list_dir(&self, dir: &Path, real: &Path) -> Result<Vec<PathBuf>> {
        let listed = std::fs::read_dir(real).map_err(|source| Error::Unreadable {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in listed.filter_map(|e| e.ok()) {
            let path = dir.join(entry.file_name());
            if !crate::format::InputFormat::taken_from_directory(&entry.file_name()) {
                continue;
            }
            if self.candidate(&path)? {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::NoInput {
                spec: dir.display().to_string(),
            });
        }
        Ok(files)
    }

    /// Whether an existing name (a directory entry, a glob match) is an input
    /// file: it must resolve to a file under the root, else the input is
    /// refused; a directory under the root is skipped.
    pub(crate) fn candidate(&self, path: &Path) -> Result<bool> {
        match self.admit(path) {
            Some(real) => Ok(real.is_file()),
            None => Err(refused(path)),
        }
    }

    /// Whether the walk of a glob may enter `dir`: a directory under the root.
    pub(crate) fn may_enter(&self, dir: &Path) -> bool {
        self.admit(dir).is_some_and(|real| real.is_dir())
    }

    /// Opens an input file for reading, checked: refused unless the file
    /// actually opened lies under the root. Nothing outside the root is
    /// opened, except by a link swapped in between the check and the open,
    /// and that one is refused before a byte is read.
    pub fn open(&self, path: &Path) -> Result<InputReader> {
        // A remote object ([`crate::remote`]): the coordinator's policy
        // admitted it at planning; it is not a path under the root.
        if crate::remote::is_remote(path) {
            return InputReader::open(path);
        }
        let joined = self.join(path);
        let real = self.admit(&joined).ok_or_else(|| refused(path))?;
        // Non-blocking: a FIFO swapped in never blocks the open.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&real);
        let file = match file {
            Ok(file) => file,
            // An error is told only about a file still under the root.
            Err(source) if self.admit(&joined).is_some() => {
                return Err(Error::Unreadable {
                    path: joined,
                    source,
                })
            }
            Err(_) => return Err(refused(path)),
        };
        if !self.holds_opened(&file, &real) {
            return Err(refused(path));
        }
        InputReader::from_file(file, &joined)
    }

    /// Whether an open file (opened as `opened_as`) really lies under the
    /// root, by the real path of its descriptor.
    fn holds_opened(&self, file: &File, opened_as: &Path) -> bool {
        opened_path(file, opened_as).is_some_and(|real| self.holds(&real))
    }
}

/// The real path of an open file: the link `/proc/self/fd/N` names it;
/// without /proc, the real path of the name it was opened by.
fn opened_path(file: &File, opened_as: &Path) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(real) => Some(real),
        Err(_) if !Path::new("/proc/self/fd").is_dir() => std::fs::canonicalize(opened_as).ok(),
        Err(_) => None,
    }
}

/// The one error of a path outside the root or missing.
fn refused(path: &Path) -> Error {
    Error::NotInDataRoot {
        path: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const CSV: &str = "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,2011-01-01,1.0,7\n";
    const SECRET: &str = "SECRET-MARKER-7f3a\n";

    /// `root/` with `in.csv` and `sub/`, and `outside/secret.csv` next to it.
    fn layout() -> (tempfile::TempDir, DataRoot, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("in.csv"), CSV).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.csv"), SECRET).unwrap();
        let data_root = DataRoot::new(&root).unwrap();
        (dir, data_root, outside)
    }

    fn resolve(root: &DataRoot, spec: &str) -> Result<Vec<PathBuf>> {
        root.resolve(spec, &Cancel::default())
    }

    /// The message of a refused spec, with the spec itself blanked out.
    fn refusal(root: &DataRoot, spec: &str) -> String {
        let err = resolve(root, spec).unwrap_err();
        assert!(
            matches!(err, Error::NotInDataRoot { .. }),
            "{spec}: {err:?}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        let text = err.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        // Named by the spec as given, then the same words whatever the case.
        let named = |path: &str| text.strip_prefix(path).map(str::to_string);
        let joined = root.join(Path::new(spec)).display().to_string();
        named(spec)
            .or_else(|| named(&joined))
            .unwrap_or_else(|| panic!("{spec}: not named first: {text}"))
    }

    #[test]
    fn a_relative_path_is_taken_below_the_root() {
        let (_dir, root, _) = layout();
        assert_eq!(
            resolve(&root, "in.csv").unwrap(),
            vec![root.path().join("in.csv")]
        );
        let absolute = root.path().join("in.csv").display().to_string();
        assert_eq!(resolve(&root, &absolute).unwrap().len(), 1);
        assert_eq!(resolve(&root, "sub/../in.csv").unwrap().len(), 1);
    }

    #[test]
    fn dot_dot_out_of_the_root_is_refused_like_a_missing_file() {
        let (_dir, root, outside) = layout();
        let missing = refusal(&root, "nope.csv");
        assert_eq!(refusal(&root, "../outside/secret.csv"), missing);
        let absolute = outside.join("secret.csv").display().to_string();
        assert_eq!(refusal(&root, &absolute), missing);
        let through = format!("{}/../outside/secret.csv", root.path().display());
        assert_eq!(refusal(&root, &through), missing);
        assert_eq!(refusal(&root, "/etc/passwd"), missing);
        assert_eq!(refusal(&root, "../outside/nope.csv"), missing);
        // A directory outside is refused like a file.
        assert_eq!(refusal(&root, "../outside"), missing);
    }

    #[test]
    fn a_link_out_of_the_root_is_refused_whether_its_target_exists_or_not() {
        let (_dir, root, outside) = layout();
        let link = root.path().join("link.csv");
        symlink(outside.join("secret.csv"), &link).unwrap();
        let to_existing = refusal(&root, "link.csv");
        std::fs::remove_file(&link).unwrap();
        symlink(outside.join("nope.csv"), &link).unwrap();
        assert_eq!(refusal(&root, "link.csv"), to_existing);
        assert_eq!(refusal(&root, "nope.csv"), to_existing);
        // A link to a directory outside.
        symlink(&outside, root.path().join("out")).unwrap();
        assert_eq!(refusal(&root, "out"), to_existing);
        assert_eq!(refusal(&root, "out/secret.csv"), to_existing);
    }

    #[test]
    fn a_link_within_the_root_is_followed() {
        let (_dir, root, _) = layout();
        symlink("../in.csv", root.path().join("sub/alias.csv")).unwrap();
        symlink(root.path().join("sub"), root.path().join("sub-link")).unwrap();
        assert_eq!(resolve(&root, "sub/alias.csv").unwrap().len(), 1);
        assert_eq!(resolve(&root, "sub").unwrap().len(), 1);
        assert_eq!(resolve(&root, "sub-link/alias.csv").unwrap().len(), 1);
        let reader = root.open(Path::new("sub/alias.csv")).unwrap();
        assert_eq!(reader.size(), CSV.len() as u64);
    }

    #[test]
    fn a_directory_holding_a_link_out_is_refused() {
        let (_dir, root, outside) = layout();
        symlink(outside.join("secret.csv"), root.path().join("sub/evil.csv")).unwrap();
        std::fs::write(root.path().join("sub/good.csv"), CSV).unwrap();
        let text = refusal(&root, "sub");
        assert!(text.contains("evil.csv"), "{text}");
        // The same with the link's target gone: same words.
        std::fs::remove_file(outside.join("secret.csv")).unwrap();
        assert_eq!(refusal(&root, "sub"), text);
    }

    #[test]
    fn a_glob_never_reaches_out_of_the_root() {
        let (_dir, root, outside) = layout();
        let missing = refusal(&root, "nomatch*.csv");
        assert_eq!(refusal(&root, "../*/secret.csv"), missing);
        assert_eq!(refusal(&root, "../outside/*.csv"), missing);
        let absolute = format!("{}/*.csv", outside.display());
        assert_eq!(refusal(&root, &absolute), missing);
        // Through a link to a directory outside: never listed.
        symlink(&outside, root.path().join("out")).unwrap();
        assert_eq!(refusal(&root, "out/*.csv"), missing);
        assert_eq!(refusal(&root, "*/secret.csv"), missing);
        // A match that is a link out refuses the input, named by the match.
        symlink(outside.join("secret.csv"), root.path().join("sub/evil.csv")).unwrap();
        let err = resolve(&root, "sub/*.csv").unwrap_err();
        assert!(matches!(err, Error::NotInDataRoot { .. }), "{err:?}");
        assert!(err.to_string().contains("evil.csv"), "{err}");
        // A glob within the root still works.
        assert_eq!(resolve(&root, "*.csv").unwrap().len(), 1);
    }

    #[test]
    fn the_checked_open_refuses_a_file_out_of_the_root() {
        let (_dir, root, outside) = layout();
        let secret = outside.join("secret.csv");
        let err = root.open(&secret).err().unwrap();
        assert!(matches!(err, Error::NotInDataRoot { .. }), "{err:?}");
        let missing = root.open(&outside.join("nope.csv")).err().unwrap();
        assert_eq!(
            err.to_string().replace("secret", "X"),
            missing.to_string().replace("nope", "X")
        );
        symlink(&secret, root.path().join("link.csv")).unwrap();
        let err = root.open(Path::new("link.csv")).err().unwrap();
        assert!(matches!(err, Error::NotInDataRoot { .. }), "{err:?}");
        assert!(root.open(Path::new("in.csv")).is_ok());
    }

    #[test]
    fn the_open_file_is_checked_not_its_name() {
        // What a link swapped in between the check and the open would give:
        // a descriptor of a file outside, opened by a name inside.
        let (_dir, root, outside) = layout();
        let inside = root.path().join("in.csv");
        let swapped = File::open(outside.join("secret.csv")).unwrap();
        assert!(!root.holds_opened(&swapped, &inside));
        assert!(root.holds_opened(&File::open(&inside).unwrap(), &inside));
    }

    #[test]
    fn a_bad_header_inside_the_root_is_quoted_as_always() {
        let (_dir, root, _) = layout();
        std::fs::write(root.path().join("bad.csv"), "Name,Total\nx,1\n").unwrap();
        let open = |spec: &str| {
            crate::engine::open_inputs_in(
                spec,
                Some(&root),
                &Default::default(),
                &Cancel::default(),
            )
        };
        let err = open("bad.csv").unwrap_err();
        assert!(matches!(err, Error::MissingColumn { .. }), "{err:?}");
        assert!(
            err.to_string().contains("header found: Name,Total"),
            "{err}"
        );
        assert_eq!(open("in.csv").unwrap().len(), 1);
        let err = open("../outside/secret.csv").unwrap_err();
        assert!(matches!(err, Error::NotInDataRoot { .. }), "{err:?}");
    }

    #[test]
    fn a_root_must_be_an_existing_directory() {
        let (dir, root, _) = layout();
        let err = DataRoot::new(&dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("--data-root"), "{err}");
        let err = DataRoot::new(&root.path().join("in.csv")).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
