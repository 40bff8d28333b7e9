//! Finished partial states handed over in memory between a worker and a
//! coordinator that share a process (the embedded cluster of `rfm run`):
//! the worker leaves a task attempt's state here instead of encoding it for
//! Arrow Flight, and the coordinator takes it after `RunTask` answers, with
//! the same checks as a state fetched over Flight. Real workers, in other
//! processes, are never given one; their states travel over Flight.

use std::collections::HashMap;
use std::sync::Mutex;

use rfm_core::PartialState;

/// A task attempt: job id, task id, attempt number.
type AttemptKey = (String, u32, u32);

/// States of finished task attempts, waiting for the coordinator.
#[derive(Debug, Default)]
pub struct LocalStates {
    states: Mutex<HashMap<AttemptKey, PartialState>>,
}

impl LocalStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AttemptKey, PartialState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves the finished state of an attempt.
    pub fn put(&self, job_id: &str, task_id: u32, attempt: u32, state: PartialState) {
        self.lock()
            .insert((job_id.to_string(), task_id, attempt), state);
    }

    /// Takes the finished state of an attempt, if it was left here.
    pub fn take(&self, job_id: &str, task_id: u32, attempt: u32) -> Option<PartialState> {
        self.lock().remove(&(job_id.to_string(), task_id, attempt))
    }

    /// States left and not taken.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every state (the worker registered again: the coordinator runs
    /// its tasks anew).
    pub fn clear(&self) -> usize {
        let mut states = self.lock();
        let n = states.len();
        states.clear();
        n
    }
}
