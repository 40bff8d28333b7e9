//! Input files a client in the coordinator's process (the embedded cluster
//! of `rfm run`) already listed and opened, handed over so that the
//! coordinator does not list and open them a second time: left under the
//! job's id with the input and the parse options they were opened with,
//! taken at submission only when all three match (else the coordinator
//! opens the input itself, as for any client). Beside them, the client may
//! leave the cache lookup it started on those files ([`EarlyLookup`]).
//! Clients in other processes never hand any; a coordinator with a data
//! root never takes any.

use std::collections::HashMap;
use std::sync::Mutex;

use rfm_core::input::ParseOptions;
use rfm_core::InputFile;

use crate::cached::EarlyLookup;

/// What a client opened for one job, and the cache lookup it started on it.
struct Opened {
    input: String,
    parse: ParseOptions,
    files: Vec<InputFile>,
    lookup: Option<EarlyLookup>,
}

/// What a job takes: the files, and the lookup started on them, if any.
pub struct Handed {
    pub files: Vec<InputFile>,
    pub lookup: Option<EarlyLookup>,
}

/// Input files opened by a client in this process, per job id.
#[derive(Default)]
pub struct LocalInputs {
    opened: Mutex<HashMap<String, Opened>>,
}

impl std::fmt::Debug for LocalInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let jobs: Vec<String> = self.lock().keys().cloned().collect();
        f.debug_struct("LocalInputs").field("jobs", &jobs).finish()
    }
}

impl LocalInputs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Opened>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves the files of `input` opened with `parse` for job `job_id`,
    /// with the cache lookup started on them.
    pub fn put(
        &self,
        job_id: &str,
        input: &str,
        parse: &ParseOptions,
        files: Vec<InputFile>,
        lookup: Option<EarlyLookup>,
    ) {
        let opened = Opened {
            input: input.to_string(),
            parse: parse.clone(),
            files,
            lookup,
        };
        self.lock().insert(job_id.to_string(), opened);
    }

    /// Takes what was left for job `job_id`, when its files are of `input`
    /// opened with `parse` (what was left is dropped either way).
    pub fn take(&self, job_id: &str, input: &str, parse: &ParseOptions) -> Option<Handed> {
        let opened = self.lock().remove(job_id)?;
        (opened.input == input && opened.parse == *parse).then_some(Handed {
            files: opened.files,
            lookup: opened.lookup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_taken_once_and_only_for_the_same_input_and_options() {
        let local = LocalInputs::default();
        let parse = ParseOptions::default();
        local.put("j1", "in/", &parse, Vec::new(), None);
        assert!(local.take("j2", "in/", &parse).is_none());
        assert!(local.take("j1", "in/", &parse).is_some());
        assert!(local.take("j1", "in/", &parse).is_none(), "taken once");
        local.put("j1", "in/", &parse, Vec::new(), None);
        assert!(local.take("j1", "other/", &parse).is_none());
        assert!(local.take("j1", "in/", &parse).is_none(), "dropped");
        let other = ParseOptions {
            decimal_comma: !parse.decimal_comma,
            ..ParseOptions::default()
        };
        local.put("j1", "in/", &parse, Vec::new(), None);
        assert!(local.take("j1", "in/", &other).is_none());
    }

    #[test]
    fn the_lookup_started_on_the_files_is_handed_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(rfm_core::cache::Cache::new(dir.path(), 1 << 20));
        let parse = ParseOptions::default();
        let local = LocalInputs::default();
        let lookup = EarlyLookup::start(cache.clone(), Vec::new(), parse.clone());
        assert!(lookup.is_some(), "a thread starts");
        local.put("j1", "in/", &parse, Vec::new(), lookup);
        let handed = local.take("j1", "in/", &parse).expect("handed");
        let lookup = handed.lookup.expect("with its lookup");
        assert!(lookup.is_of(&cache));
        assert!(lookup.wait().is_some_and(|plan| plan.hit.is_empty()));
    }
}
