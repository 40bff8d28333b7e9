//! The coordinator's use of the state cache ([`rfm_core::cache`]): at
//! submission, each input file's state is looked up and only the files not
//! found are planned as tasks (in `rfm run`, the lookup starts as soon as
//! the inputs are open, while the embedded cluster starts: [`EarlyLookup`]);
//! while the job runs, a computed file's chunks
//! are merged into a state of that file, which is written to the cache once
//! its last chunk is in and then merged into the job's state. So `rfm run`
//! (an embedded coordinator), `rfm submit` and `rfm-coordinator` share one
//! cache path. Once a job over several files has all its states, their
//! merge is stored as a set entry too (off the scoring path). A set entry
//! is chosen at submission by its header; it is read, checked and decoded
//! on its own thread while the job's tasks run ([`CachedSet`]); the job
//! merges it once its last task is in, before that task's state.
//! A computed file's entry is encoded from its state (no copy of it), while
//! that state is folded into the job's when the job's takes it in, and
//! written off the merge path; the job waits for the writes after scoring.
//! A damaged entry (unreadable, truncated, foreign, a checksum that does
//! not match), or one that cannot be written, is a warning in the run
//! report (`cache.warnings`) and its files are recomputed. A set entry that is damaged, or whose checksum matches but
//! whose payload does not decode (only a faulty or forged writer makes
//! one), is found while the job's tasks run: it is a warning too, its files'
//! own entries are read ([`SetFallback`]), the files without a usable one are
//! planned as tasks then, and a set of every file replaces it.

use std::sync::Arc;

use rayon::prelude::*;
use rfm_core::cache::{Cache, CacheKey, Lookup, SetHit, SetLookup};
use rfm_core::engine::{number_sample_lines_in, InputReader};
use rfm_core::input::ParseOptions;
use rfm_core::report::CacheUse;
use rfm_core::{Chunk, DataRoot, InputFile, PartialState};

/// What the cache gave a job at submission.
pub struct CachePlan {
    pub cache: Arc<Cache>,
    /// The merged states of the files found in the cache outside the set
    /// entry.
    pub from_cache: PartialState,
    /// The set entry found, being decoded.
    pub from_set: Option<CachedSet>,
    /// Per input file: whether its state came from the cache.
    pub hit: Vec<bool>,
    /// Per input file: the key to store its state under once computed.
    pub keys: Vec<Option<CacheKey>>,
    /// Every file's key, when the job's merged state is to be stored as a
    /// set entry (all files cached, and enough of them outside the set
    /// entry read: [`set_rewrite_after`]).
    pub set_keys: Option<Vec<CacheKey>>,
    pub usage: CacheUse,
}

/// A set entry's state, decoded on its own thread from submission on.
pub struct CachedSet {
    decoded: tokio::sync::oneshot::Receiver<Result<PartialState, String>>,
    fallback: SetFallback,
}

/// What a job needs when its set entry is damaged or does not decode: the
/// set's files and their keys, to read their own entries.
pub struct SetFallback {
    cache: Arc<Cache>,
    /// (run index, key) of each file of the set.
    members: Vec<(u32, CacheKey)>,
    /// Every file's key, when all are known: a set of them replaces the one
    /// that does not decode.
    all_keys: Option<Vec<CacheKey>>,
}

/// A set entry that is damaged or did not decode: why, and how to do without it.
pub struct SetFailed {
    pub warning: String,
    pub fallback: SetFallback,
}

/// The set's files read from their own entries ([`SetFallback::read`]).
pub struct FromMembers {
    /// The merged states of the files whose entries were found.
    pub state: PartialState,
    /// (run index, key) of the files to compute again: no entry, or a
    /// damaged one.
    pub to_compute: Vec<(u32, CacheKey)>,
    pub warnings: Vec<String>,
}

impl SetFallback {
    /// Reads each file's own entry (blocking, on every core).
    pub fn read(&self) -> FromMembers {
        let looked: Vec<(u32, CacheKey, Lookup)> = self
            .members
            .par_iter()
            .map(|(i, key)| (*i, key.clone(), self.cache.load(key, *i)))
            .collect();
        let mut states = Vec::new();
        let mut to_compute = Vec::new();
        let mut warnings = Vec::new();
        for (i, key, found) in looked {
            match found {
                Lookup::Hit(state) => states.push(*state),
                Lookup::Miss => to_compute.push((i, key)),
                Lookup::Damaged(w) => {
                    warnings.push(w);
                    to_compute.push((i, key));
                }
            }
        }
        let state = states
            .into_par_iter()
            .reduce(PartialState::new, |mut a, b| {
                a.merge(b);
                a
            });
        FromMembers {
            state,
            to_compute,
            warnings,
        }
    }

    /// Every file's key, when all are known (for the set that replaces the
    /// one that did not decode).
    pub fn all_keys(&self) -> Option<Vec<CacheKey>> {
        self.all_keys.clone()
    }
}

impl CachedSet {
    /// Starts reading, checking and decoding a set entry; `keys` are the run's.
    fn start(hit: SetHit, cache: Arc<Cache>, keys: &[Option<CacheKey>]) -> CachedSet {
        let fallback = SetFallback {
            cache,
            members: hit
                .at
                .iter()
                .filter_map(|&i| Some((i, keys.get(i as usize)?.clone()?)))
                .collect(),
            all_keys: keys.iter().cloned().collect(),
        };
        let (tx, decoded) = tokio::sync::oneshot::channel();
        let path = hit.path().display().to_string();
        // On the pool the new files' tasks compute on: the cores take turns
        // between them, not more threads than cores taking turns on each.
        // A panic is caught here (one on the pool would end the process):
        // the set is then not used.
        rayon::spawn(move || {
            let decoding = std::time::Instant::now();
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hit.decode()))
                .unwrap_or_else(|_| Err(format!("cache entry {path} could not be decoded")));
            tracing::debug!(
                "rfm-coordinator: cache: set entry read, checked and decoded in {:.1} ms",
                decoding.elapsed().as_secs_f64() * 1e3
            );
            let _ = tx.send(decoded);
        });
        CachedSet { decoded, fallback }
    }

    /// The set's state (its file indexes the run's), or why it is not
    /// usable (damaged, or a payload that passed its checksum yet does not
    /// decode) with what the job needs to read its files otherwise.
    pub async fn state(self) -> Result<PartialState, SetFailed> {
        let decoded = self
            .decoded
            .await
            .unwrap_or_else(|_| Err("decoding a cache entry failed".into()));
        decoded.map_err(|why| SetFailed {
            warning: format!(
                "{why}; reading its {} files from their own entries",
                self.fallback.members.len()
            ),
            fallback: self.fallback,
        })
    }
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

/// Files outside the set entry a lookup reads on its own thread, the set
/// entry decoded meanwhile; more are read on every core, before it.
const FEW_OUTSIDE_THE_SET: usize = 2;

/// How many of a job's `files` must be outside the set entry it read for
/// the job to write a new set of all its files: at least 2, and an eighth of
/// them. Writing a set costs the whole state; reading a few files' entries
/// beside a set costs little, so a folder growing by a file a day rewrites
/// its set every few days, not every day.
pub fn set_rewrite_after(files: usize) -> usize {
    (files / 8).max(2)
}

/// A lookup started by a client in the coordinator's process (the embedded
/// cluster of `rfm run`) as soon as it opened the inputs, on a thread of its
/// own, while the cluster starts: the keys are made, the entries looked up
/// and the set entry's decoding begun before the job is submitted. The job
/// takes it at submission, with its files ([`crate::local_inputs`]), when
/// it is of the coordinator's own cache; otherwise it looks up as usual.
pub struct EarlyLookup {
    cache: Arc<Cache>,
    /// The plan, sent by the lookup's thread as it ends: the job awaits it
    /// on its own task, not on a blocking thread that would join the
    /// lookup's (one thread fewer to wake while the cores decode the set).
    plan: tokio::sync::oneshot::Receiver<CachePlan>,
}

impl EarlyLookup {
    /// Starts looking `files` (opened with `parse`, under no data root) up
    /// in `cache`; `None` when no thread starts (the job then looks up
    /// itself).
    pub fn start(cache: Arc<Cache>, files: Vec<InputFile>, parse: ParseOptions) -> Option<Self> {
        let looking = cache.clone();
        let (tx, plan) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("rfm-cache-lookup".into())
            .spawn(move || {
                // A job that gave up waiting leaves nobody to take it.
                let _ = tx.send(lookup(looking, &files, None, &parse));
            })
            .ok()?;
        Some(EarlyLookup { cache, plan })
    }

    /// Whether it looks up in `cache` (the same cache, not an equal one).
    pub fn is_of(&self, cache: &Arc<Cache>) -> bool {
        Arc::ptr_eq(&self.cache, cache)
    }

    /// The plan; `None` when the lookup failed (a panic), for the job to
    /// look up itself.
    pub async fn plan(self) -> Option<CachePlan> {
        self.plan.await.ok()
    }

    /// [`plan`](Self::plan), blocking (not on an async runtime's thread).
    pub fn wait(self) -> Option<CachePlan> {
        self.plan.blocking_recv().ok()
    }
}

/// Looks every input file up in `cache` (blocking: reads each file's ends,
/// the best set entry, and the entry of each file the set does not cover).
pub fn lookup(
    cache: Arc<Cache>,
    files: &[InputFile],
    root: Option<&DataRoot>,
    parse: &ParseOptions,
) -> CachePlan {
    let mut plan = CachePlan {
        cache,
        from_cache: PartialState::new(),
        from_set: None,
        hit: vec![false; files.len()],
        keys: vec![None; files.len()],
        set_keys: None,
        usage: CacheUse::default(),
    };
    let started = std::time::Instant::now();
    // Keys and entries are read on every core; the hits are merged the
    // same way (merging is associative and commutative: the same bytes).
    let keyed: Vec<Result<Option<CacheKey>, String>> = files
        .par_iter()
        .map(|file| {
            if rfm_core::format::Location::of(&file.path.to_string_lossy())
                != rfm_core::format::Location::Local
            {
                // Object storage and HTTP: read every time (documented).
                return Ok(None);
            }
            key_of(file, root, parse)
                .map(Some)
                .map_err(|e| format!("{}: not cached: {e}", file.path.display()))
        })
        .collect();
    let keys: Vec<Option<CacheKey>> = keyed
        .iter()
        .map(|k| k.as_ref().ok().cloned().flatten())
        .collect();
    tracing::debug!(
        "rfm-coordinator: cache: {} keys made in {:.1} ms",
        keys.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut hits = Vec::new();
    let mut in_set = vec![false; files.len()];
    let mut set_hit = None;
    if files.len() >= 2 {
        let reading = std::time::Instant::now();
        let set = plan.cache.load_set(&keys);
        tracing::debug!(
            "rfm-coordinator: cache: set entry looked up in {:.1} ms",
            reading.elapsed().as_secs_f64() * 1e3
        );
        if let SetLookup::Hit(hit) = set {
            for &i in &hit.at {
                in_set[i as usize] = true;
            }
            set_hit = Some(hit);
        }
        let outside = in_set.iter().filter(|covered| !**covered).count();
        if keys.iter().all(Option::is_some) && outside >= set_rewrite_after(files.len()) {
            plan.set_keys = Some(keys.iter().flatten().cloned().collect());
        }
    }
    let outside = in_set.iter().filter(|covered| !**covered).count();
    // With few files outside the set (a day's file added to a folder the
    // set covers), they are looked up on this thread and the set entry is
    // decoded on the pool from now on, while they are and while the job
    // starts. With more, they are looked up and merged on the pool first
    // and the set entry is decoded after them: queued before them, its
    // decoding would hold them back, and the job's first task with them.
    let few_outside = outside <= FEW_OUTSIDE_THE_SET;
    let mut from_set = None;
    if few_outside {
        from_set = set_hit
            .take()
            .map(|hit| CachedSet::start(hit, plan.cache.clone(), &keys));
    }
    let look = |(i, key): (usize, Result<Option<CacheKey>, String>)| match key {
        Ok(Some(key)) if !in_set[i] => {
            let found = plan.cache.load(&key, i as u32);
            Ok((Some(key), found))
        }
        Ok(key) => Ok((key, Lookup::Miss)),
        Err(warning) => Err(warning),
    };
    let looked: Vec<_> = if few_outside {
        keyed.into_iter().enumerate().map(look).collect()
    } else {
        keyed.into_par_iter().enumerate().map(look).collect()
    };
    for (i, looked) in looked.into_iter().enumerate() {
        if in_set[i] {
            plan.usage.hits += 1;
            plan.hit[i] = true;
            continue;
        }
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
    plan.from_cache = match hits.len() {
        0 | 1 => hits.pop().unwrap_or_default(),
        _ if few_outside => hits.into_iter().fold(PartialState::new(), |mut a, b| {
            a.merge(b);
            a
        }),
        _ => hits.into_par_iter().reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            a
        }),
    };
    // With many files outside the set, the set entry is decoded on the pool
    // from here, beside the job.
    if let Some(hit) = set_hit {
        from_set = Some(CachedSet::start(hit, plan.cache.clone(), &keys));
    }
    plan.from_set = from_set;
    tracing::debug!(
        "rfm-coordinator: cache: {} files looked up in {:.1} ms",
        files.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    plan
}

/// Encodes and writes the set entry of a job's merged state over all its
/// files (blocking); a warning when it could not be.
pub fn write_set(cache: &Cache, keys: &[CacheKey], state: &PartialState) -> Option<String> {
    cache
        .encode_set(keys, state)
        .and_then(|bytes| cache.put_set(keys, &bytes))
        .err()
        .map(|e| {
            format!(
                "the state of the job's {} files together is not cached: cannot write to {}: {e}",
                keys.len(),
                cache.dir().display()
            )
        })
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

    /// Merges the state into `acc` and makes its cache entry when it is a
    /// file's (blocking): its malformed samples are numbered first, and no
    /// entry is made when the file changed since it was planned. When `acc`
    /// takes the state in ([`PartialState::takes_in`]: a set entry's state,
    /// a job's), the entry is encoded on one core while the state is folded
    /// into `acc` on another. Returns the entry to write, or a warning when
    /// there is none.
    pub fn merge_into(self, acc: &mut PartialState) -> Result<Option<PendingWrite>, String> {
        let Ready { mut state, store } = self;
        let Some(s) = store else {
            acc.merge(state);
            return Ok(None);
        };
        let file = &s.files[s.index as usize];
        let root = s.root.as_deref();
        // Unnumbered samples are numbered when the job is scored.
        if number_sample_lines_in(&mut state, &s.files, root).is_err() {
            acc.merge(state);
            return Ok(None);
        }
        match key_of(file, root, &s.parse) {
            Ok(now) if now == s.key => {}
            _ => {
                let warning = format!(
                    "{}: not cached: the file changed while it was read",
                    file.path.display()
                );
                acc.merge(state);
                return Err(warning);
            }
        }
        // Encoded from the state itself (no copy of it): the bytes alone
        // wait for the write, which runs off the merge path.
        let encode = || s.cache.encode(&s.key, &state, s.index);
        let encoded = if acc.takes_in(&state) {
            // Freed here, not on a thread of its own: a job's freed pages
            // are handed back before scoring, once they are all free.
            rayon::join(encode, || acc.merge_from(&state)).0
        } else {
            let encoded = encode();
            acc.merge(state);
            encoded
        };
        let file = file.path.display().to_string();
        let bytes = match encoded {
            Ok(bytes) => bytes,
            Err(e) => return Err(not_written(&file, &s.cache, &e)),
        };
        Ok(Some(PendingWrite {
            cache: s.cache,
            key: s.key,
            bytes,
            file,
        }))
    }
}

/// The warning of an entry that could not be made or written.
fn not_written(file: &str, cache: &Cache, e: &std::io::Error) -> String {
    format!(
        "{file}: not cached: cannot write to {}: {e}",
        cache.dir().display()
    )
}

/// A file's cache entry, encoded, to write off the merge path (syncing it
/// takes longer than merging).
pub struct PendingWrite {
    cache: Arc<Cache>,
    key: CacheKey,
    bytes: rfm_core::cache::EntryBytes,
    file: String,
}

impl PendingWrite {
    /// Writes the entry (blocking); a warning when it could not be.
    pub fn write(self) -> Option<String> {
        let written = self.cache.put(&self.key, &self.bytes);
        written
            .err()
            .map(|e| not_written(&self.file, &self.cache, &e))
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
    /// Every file's key, for the set entry of the job's merged state; taken
    /// away when a file changed while it was read (the set would not be of
    /// the keys).
    pub set_keys: Option<Vec<CacheKey>>,
    /// A computed file's entry could not be made: no set entry for this job.
    changed: bool,
    /// Files of the set entry computed again (it did not decode, and their
    /// own entries were missing or damaged).
    pub recomputed: u64,
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
            set_keys: plan.set_keys.take(),
            changed: false,
            recomputed: 0,
        }
    }

    /// A computed file's entry could not be made (`warning` says why: the
    /// file changed while it was read, or its state did not encode): no set
    /// entry is written for this job.
    pub fn entry_not_made(&mut self, warning: String) {
        self.warnings.push(warning);
        self.set_keys = None;
        self.changed = true;
    }

    /// The job's set entry did not decode: its files come from their own
    /// entries, and a set of every file replaces it (unless a file changed).
    pub fn set_failed(&mut self, all_keys: Option<Vec<CacheKey>>) {
        if !self.changed {
            self.set_keys = all_keys;
        }
    }

    /// Plans file `index` (of key `key`), a member of a set entry that did
    /// not decode, to be computed again in `chunks` chunks and cached.
    pub fn recompute(&mut self, index: u32, key: CacheKey, chunks: usize) {
        let i = index as usize;
        self.keys[i] = Some(key);
        self.remaining[i] += chunks;
        self.recomputed += 1;
    }

    /// A running chunk of file `index` was cut in two: one more to come.
    pub fn split(&mut self, index: u32) {
        if let Some(n) = self.remaining.get_mut(index as usize) {
            *n += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn input_files(dir: &std::path::Path) -> Vec<InputFile> {
        let header =
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";
        for (name, customer) in [("a.csv", "17850"), ("b.csv", "13047")] {
            let line = format!("536365,X,thing,6,12/1/2010 8:26,2.55,{customer},United Kingdom\n");
            std::fs::write(dir.join(name), format!("{header}{line}")).unwrap();
        }
        let spec = dir.display().to_string();
        rfm_core::engine::open_inputs(&spec, &ParseOptions::default()).unwrap()
    }

    #[test]
    fn an_early_lookup_plans_what_the_jobs_own_lookup_plans() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = dir.path().join("in");
        std::fs::create_dir(&inputs).unwrap();
        let files = input_files(&inputs);
        let cache = Arc::new(Cache::new(dir.path().join("cache"), 1 << 30));
        let parse = ParseOptions::default();
        // One file's entry stored: the other is to compute.
        let own = lookup(cache.clone(), &files, None, &parse);
        assert_eq!(own.hit, vec![false, false]);
        let key = own.keys[0].clone().expect("a local file has a key");
        cache.store(&key, &PartialState::new(), 0).unwrap();

        let early = EarlyLookup::start(cache.clone(), files.clone(), parse.clone()).unwrap();
        assert!(early.is_of(&cache));
        let other_cache = Arc::new(Cache::new(dir.path().join("cache"), 1 << 30));
        assert!(
            !early.is_of(&other_cache),
            "only the coordinator's own cache"
        );
        let early = early.wait().expect("the lookup ends");
        let own = lookup(cache, &files, None, &parse);
        assert_eq!(early.hit, vec![true, false]);
        assert_eq!(early.hit, own.hit);
        assert_eq!(early.keys, own.keys);
        assert_eq!(early.usage.hits, own.usage.hits);
        assert_eq!(
            early.set_keys.is_some(),
            own.set_keys.is_some(),
            "the same choice of a set entry to write"
        );
    }
}
