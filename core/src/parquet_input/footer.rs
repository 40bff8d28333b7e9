//! A Parquet file's footer (its metadata), read once per file per process:
//! every task of a file needs it, and decoding it costs more than a small
//! row group. Entries are keyed by path, size and modification time, so a
//! file rewritten in place is read again; the last few files are kept.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::reader::{ChunkReader, Length};

use crate::engine::InputReader;
use crate::error::{Error, Result};

/// How many files' footers a process keeps.
const KEPT: usize = 8;

/// A Parquet file read with positioned reads (each reader its own offset).
#[derive(Clone)]
pub struct Source {
    file: Arc<File>,
    len: u64,
}

impl Source {
    pub fn of(reader: &InputReader) -> Result<Source> {
        Ok(Source {
            file: Arc::new(reader.try_clone_file()?),
            len: reader.size(),
        })
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from an offset of a [`Source`].
pub struct At {
    file: Arc<File>,
    at: u64,
    len: u64,
}

impl std::io::Read for At {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len.saturating_sub(self.at)).min(out.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut out[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl ChunkReader for Source {
    type T = At;

    fn get_read(&self, start: u64) -> parquet::errors::Result<At> {
        Ok(At {
            file: self.file.clone(),
            at: start,
            len: self.len,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if start.saturating_add(length as u64) > self.len {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "bytes {start}..{} are past the end of the file ({} bytes)",
                start + length as u64,
                self.len
            )));
        }
        let mut buf = vec![0; length];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        crate::engine::count_read(length as u64);
        Ok(Bytes::from(buf))
    }
}

/// What identifies one version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

fn cache() -> &'static Mutex<Vec<(Key, ArrowReaderMetadata)>> {
    static CACHE: OnceLock<Mutex<Vec<(Key, ArrowReaderMetadata)>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// The file's footer, from the cache or read now (a file without a
/// modification time is always read).
pub fn metadata(reader: &InputReader, source: &Source) -> Result<ArrowReaderMetadata> {
    let key = reader.modified().map(|modified| Key {
        path: reader.path().to_path_buf(),
        size: reader.size(),
        modified,
    });
    let lock = || cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = &key {
        if let Some((_, meta)) = lock().iter().find(|(k, _)| k == key) {
            return Ok(meta.clone());
        }
    }
    let meta =
        ArrowReaderMetadata::load(source, Default::default()).map_err(|e| Error::BadInput {
            path: reader.path().to_path_buf(),
            format: "parquet",
            message: e.to_string(),
        })?;
    if let Some(key) = key {
        let mut kept = lock();
        kept.retain(|(k, _)| k.path != key.path);
        if kept.len() >= KEPT {
            kept.remove(0);
        }
        kept.push((key, meta.clone()));
    }
    Ok(meta)
}
