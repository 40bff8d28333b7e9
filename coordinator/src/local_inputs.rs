//! Input files a client in the coordinator's process (the embedded cluster
//! of `rfm run`) already listed and opened, handed over so that the
//! coordinator does not list and open them a second time: left under the
//! job's id with the input and the parse options they were opened with,
//! taken at submission only when all three match (else the coordinator
//! opens the input itself, as for any client). Clients in other processes
//! never hand any; a coordinator with a data root never takes any.

use std::collections::HashMap;
use std::sync::Mutex;

use rfm_core::input::ParseOptions;
use rfm_core::InputFile;

/// What a client opened for one job.
#[derive(Debug)]
struct Opened {
    input: String,
    parse: ParseOptions,
    files: Vec<InputFile>,
}

/// Input files opened by a client in this process, per job id.
#[derive(Debug, Default)]
pub struct LocalInputs {
    opened: Mutex<HashMap<String, Opened>>,
}

impl LocalInputs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Opened>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves the files of `input` opened with `parse` for job `job_id`.
    pub fn put(&self, job_id: &str, input: &str, parse: &ParseOptions, files: Vec<InputFile>) {
        let opened = Opened {
            input: input.to_string(),
            parse: parse.clone(),
            files,
        };
        self.lock().insert(job_id.to_string(), opened);
    }

    /// Takes the files left for job `job_id`, when they are of `input`
    /// opened with `parse` (what was left is dropped either way).
    pub fn take(&self, job_id: &str, input: &str, parse: &ParseOptions) -> Option<Vec<InputFile>> {
        let opened = self.lock().remove(job_id)?;
        (opened.input == input && opened.parse == *parse).then_some(opened.files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_taken_once_and_only_for_the_same_input_and_options() {
        let local = LocalInputs::default();
        let parse = ParseOptions::default();
        local.put("j1", "in/", &parse, Vec::new());
        assert!(local.take("j2", "in/", &parse).is_none());
        assert!(local.take("j1", "in/", &parse).is_some());
        assert!(local.take("j1", "in/", &parse).is_none(), "taken once");
        local.put("j1", "in/", &parse, Vec::new());
        assert!(local.take("j1", "other/", &parse).is_none());
        assert!(local.take("j1", "in/", &parse).is_none(), "dropped");
        let other = ParseOptions {
            decimal_comma: !parse.decimal_comma,
            ..ParseOptions::default()
        };
        local.put("j1", "in/", &parse, Vec::new());
        assert!(local.take("j1", "in/", &other).is_none());
    }
}
