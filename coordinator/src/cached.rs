//! The coordinator's use of the state cache ([`rfm_core::cache`]): at
//! submission, each input file's state is looked up and only the files not
//! found are planned as tasks; while the job runs, a computed file's chunks
//! are merged into a state of that file, which is written to the cache once
//! its last chunk is in and then merged into the job's state. So `rfm run`
//! (an embedded coordinator), `rfm submit` and `rfm-coordinator` share one
//! cache path. A damaged entry, or one that cannot be written, is a warning
//! in the run report (`cache.warnings`), never a failure.

use std::sync::Arc;

use rayon::prelude::*;
use rfm_core::cache::{Cache, CacheKey, Lookup};
use rfm_core::engine::{number_sample_lines_in, InputReader};
use rfm_core::input::ParseOptions;
use rfm_core::report::CacheUse;
use rfm_core::{Chunk, DataRoot, InputFile, PartialState};

/// What the cache gave a job at submission.
pub struct CachePlan {
    pub cache: Arc<Cache>,
    /// The merged states of the files found in the cache.
    pub from_cache: PartialState,
    /// Per input file: whether its state came from the cache.
    pub hit: Vec<bool>,
    /// Per input file: the key to store its state under once computed.
    pub keys: Vec<Option<CacheKey>>,
    pub usage: CacheUse,
}

impl CachePlan {
    /// Leaves out the chunks of files found in the cache.
    pub fn chunks_to_compute(&self, chunks: Vec<Chunk>) -> Vec<Chunk> {
        chunks
            .into_iter()
            .filter(|c| {
                !self
                    .hit
                    .get(c.file_index as usize)
                    .copied()
                    .unwrap_or(false)
            })
            .collect()
    }
}

fn open(file: &InputFile, root: Option<&DataRoot>) -> rfm_core::Result<InputReader> {
    InputReader::open_planned(file, root)
}

fn key_of(
    file: &InputFile,
    root: Option<&DataRoot>,
    parse: &ParseOptions,
) -> rfm_core::Result<CacheKey> {
    let reader = open(file, root)?;
    CacheKey::of(file, &reader, root, parse)
}

/// Looks every input file up in `cache` (blocking: reads each file's ends
/// and each entry found).
pub fn lookup(
    cache: Arc<Cache>,
    files: &[InputFile],
    root: Option<&DataRoot>,
    parse: &ParseOptions,
) -> CachePlan {
    let mut plan = CachePlan {
        cache,
        from_cache: PartialState::new(),
        hit: vec![false; files.len()],
        keys: vec![None; files.len()],
        usage: CacheUse::default(),
    };
    // Keys and entries are read on every core; the hits are merged the
    // same way (merging is associative and commutative: the same bytes).
    let looked: Vec<_> = files
        .par_iter()
        .enumerate()
        .map(|(i, file)| {
            if rfm_core::format::Location::of(&file.path.to_string_lossy())
                != rfm_core::format::Location::Local
            {
                // Object storage and HTTP: read every time (documented).
                return Ok((None, Lookup::Miss));
            }
            let key = key_of(file, root, parse)
                .map_err(|e| format!("{}: not cached: {e}", file.path.display()))?;
            let found = plan.cache.load(&key, i as u32);
            Ok((Some(key), found))
        })
        .collect();
    let mut hits = Vec::new();
    for (i, looked) in looked.into_iter().enumerate() {
        match looked {
            Err(warning) => {
                plan.usage.computed += 1;
                plan.usage.warnings.push(warning);
            }
            Ok((_, Lookup::Hit(state))) => {
                plan.usage.hits += 1;
                plan.hit[i] = true;
                hits.push(*state);
            }
            Ok((key, Lookup::Miss)) => {
                plan.usage.computed += 1;
                plan.keys[i] = key;
            }
            Ok((key, Lookup::Damaged(warning))) => {
                plan.usage.computed += 1;
                plan.usage.warnings.push(warning);
                plan.keys[i] = key;
            }
        }
    }
    plan.from_cache = hits.into_par_iter().reduce(PartialState::new, |mut a, b| {
        a.merge(b);
        a
    });
    plan
}

/// A file's state, complete, to merge into the job's (and cache first).
pub struct Ready {
    state: PartialState,
    store: Option<Store>,
}

struct Store {
    cache: Arc<Cache>,
    files: Arc<Vec<InputFile>>,
    root: Option<Arc<DataRoot>>,
    parse: ParseOptions,
    index: u32,
    key: CacheKey,
}

impl Ready {
    /// A chunk's state that is merged as it is.
    pub fn plain(state: PartialState) -> Ready {
        Ready { state, store: None }
    }

    /// Makes the cache entry of the state when it is a file's (blocking):
    /// its malformed samples are numbered first, and nothing is written when
    /// the file changed since it was planned. Returns the state and the
    /// entry to write, or a warning when there is none.
    pub fn finish(self) -> (PartialState, Result<Option<PendingWrite>, String>) {
        let Ready { mut state, store } = self;
        let Some(s) = store else {
            return (state, Ok(None));
        };
        let file = &s.files[s.index as usize];
        let root = s.root.as_deref();
        // Unnumbered samples are numbered when the job is scored.
        if number_sample_lines_in(&mut state, &s.files, root).is_err() {
            return (state, Ok(None));
        }
        match key_of(file, root, &s.parse) {
            Ok(now) if now == s.key => {}
            _ => {
                let warning = format!(
                    "{}: not cached: the file changed while it was read",
                    file.path.display()
                );
                return (state, Err(warning));
            }
        }
        let write = match s.cache.encode(&s.key, &state, s.index) {
            Ok(bytes) => Ok(Some(PendingWrite {
                cache: s.cache.clone(),
                key: s.key,
                bytes,
                file: file.path.display().to_string(),
            })),
            Err(e) => Err(format!("{}: not cached: {e}", file.path.display())),
        };
        (state, write)
    }
}

/// A cache entry to write: off the merge path, since syncing it to disk
/// takes longer than merging.
pub struct PendingWrite {
    cache: Arc<Cache>,
    key: CacheKey,
    bytes: Vec<u8>,
    file: String,
}

impl PendingWrite {
    /// Writes the entry (blocking); a warning when it could not be.
    pub fn write(self) -> Option<String> {
        self.cache.put(&self.key, &self.bytes).err().map(|e| {
            format!(
                "{}: not cached: cannot write to {}: {e}",
                self.file,
                self.cache.dir().display()
            )
        })
    }
}

/// The states of the files a job computes, merged per file until each is
/// complete.
pub struct FileStates {
    cache: Arc<Cache>,
    files: Arc<Vec<InputFile>>,
    root: Option<Arc<DataRoot>>,
    parse: ParseOptions,
    keys: Vec<Option<CacheKey>>,
    /// Chunks still to come, per file.
    remaining: Vec<usize>,
    states: Vec<PartialState>,
    /// Entries that could not be written, and why.
    pub warnings: Vec<String>,
}

impl FileStates {
    pub fn new(
        plan: &mut CachePlan,
        files: &[InputFile],
        chunks: &[Chunk],
        root: Option<Arc<DataRoot>>,
        parse: ParseOptions,
    ) -> FileStates {
        let mut remaining = vec![0; files.len()];
        for c in chunks {
            remaining[c.file_index as usize] += 1;
        }
        FileStates {
            cache: plan.cache.clone(),
            files: Arc::new(files.to_vec()),
            root,
            parse,
            keys: std::mem::take(&mut plan.keys),
            remaining,
            states: (0..files.len()).map(|_| PartialState::new()).collect(),
            warnings: Vec::new(),
        }
    }

    /// Takes a chunk of file `index`: its state to merge now (a file without
    /// a key), the file's whole state once its last chunk is in, or nothing.
    pub fn add(&mut self, index: u32, state: PartialState) -> Option<Ready> {
        let i = index as usize;
        let Some(key) = self.keys.get(i).cloned().flatten() else {
            return Some(Ready::plain(state));
        };
        self.states[i].merge(state);
        self.remaining[i] -= 1;
        if self.remaining[i] > 0 {
            return None;
        }
        let mut whole = std::mem::take(&mut self.states[i]);
        whole.seal();
        Some(Ready {
            state: whole,
            store: Some(Store {
                cache: self.cache.clone(),
                files: self.files.clone(),
                root: self.root.clone(),
                parse: self.parse.clone(),
                index,
                key,
            }),
        })
    }
}
