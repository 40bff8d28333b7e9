//! The coordinator's table of jobs: every running job, and finished ones kept
//! a while for `GetJob` and `GetJobResult` — at most `max_finished` of them
//! (the oldest go first) and none longer than `keep_for`. The table is pruned
//! when a job is submitted, when one ends and when a client looks a job up,
//! so memory does not grow with the number of jobs run. The ids of dropped
//! jobs are remembered (a bounded list) so that asking for one says what
//! became of it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tonic::Status;

use crate::job::Job;

/// Default number of finished jobs kept.
pub const DEFAULT_MAX_FINISHED_JOBS: usize = 64;
/// Default time a finished job is kept.
pub const DEFAULT_FINISHED_JOB_TTL: Duration = Duration::from_secs(3600);
/// The shortest `--finished-job-ttl`: a client fetches a job's result
/// right after it ends.
pub const MIN_FINISHED_JOB_TTL: Duration = Duration::from_secs(10);
/// How many dropped job ids are remembered for the message of a later look-up.
const DROPPED_IDS_KEPT: usize = 1024;

/// How many finished jobs are kept, and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// At least 1: a client fetches a job's result after its end.
    pub max_finished: usize,
    pub keep_for: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_finished: DEFAULT_MAX_FINISHED_JOBS,
            keep_for: DEFAULT_FINISHED_JOB_TTL,
        }
    }
}

/// Parses `--finished-job-ttl` (a duration of at least [`MIN_FINISHED_JOB_TTL`]).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = rfm_proto::duration::clap_parse(text)?;
    if ttl < MIN_FINISHED_JOB_TTL {
        return Err(format!(
            "{text:?} is too short: a client fetches a job's result after it ends; use at least {}s",
            MIN_FINISHED_JOB_TTL.as_secs()
        ));
    }
    Ok(ttl)
}

/// Why a finished job left the table.
#[derive(Clone, Copy, Debug)]
enum Dropped {
    Expired(Duration),
    Displaced(usize),
}

struct Table {
    jobs: HashMap<String, Arc<Job>>,
    /// The last dropped ids, oldest first.
    dropped: VecDeque<(String, Dropped)>,
}

/// The jobs a coordinator knows.
pub struct JobTable {
    retention: Retention,
    table: Mutex<Table>,
}

impl JobTable {
    pub fn new(retention: Retention) -> JobTable {
        JobTable {
            retention: Retention {
                max_finished: retention.max_finished.max(1),
                ..retention
            },
            table: Mutex::new(Table {
                jobs: HashMap::new(),
                dropped: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new job (after pruning); its id must be new.
    pub fn insert(&self, job: Arc<Job>) -> Result<(), Status> {
        let mut table = self.lock();
        self.prune_locked(&mut table);
        if table.jobs.contains_key(&job.id) {
            return Err(Status::already_exists(format!(
                "job {:?} exists already",
                job.id
            )));
        }
        table.jobs.insert(job.id.clone(), job);
        Ok(())
    }

    /// Forgets a job that never started (e.g. its run could not be recorded).
    pub fn remove(&self, id: &str) {
        self.lock().jobs.remove(id);
    }

    /// The job `id`, or NOT_FOUND saying whether it was dropped and why.
    pub fn get(&self, id: &str) -> Result<Arc<Job>, Status> {
        let mut table = self.lock();
        self.prune_locked(&mut table);
        if let Some(job) = table.jobs.get(id) {
            return Ok(job.clone());
        }
        let dropped = table.dropped.iter().rev().find(|(d, _)| d == id);
        Err(Status::not_found(match dropped {
            Some((_, why)) => {
                let after = match why {
                    Dropped::Expired(ttl) => {
                        format!("after {} (--finished-job-ttl)", humantime_short(*ttl))
                    }
                    Dropped::Displaced(max) => {
                        format!("after {max} newer jobs finished (--max-finished-jobs)")
                    }
                };
                format!(
                    "job {id} finished and was dropped from memory {after}; its files are where \
                     `rfm submit --out` wrote them, and its run is in the run database if the \
                     coordinator has one (`rfm runs`)"
                )
            }
            None => format!(
                "no job {id:?} on this coordinator (it keeps at most {} finished jobs, for {})",
                self.retention.max_finished,
                humantime_short(self.retention.keep_for)
            ),
        }))
    }

    /// Every job kept (after pruning).
    pub fn list(&self) -> Vec<Arc<Job>> {
        let mut table = self.lock();
        self.prune_locked(&mut table);
        table.jobs.values().cloned().collect()
    }

    /// Drops the finished jobs past the retention (call when a job ends).
    pub fn prune(&self) {
        let mut table = self.lock();
        self.prune_locked(&mut table);
    }

    fn prune_locked(&self, table: &mut Table) {
        let Retention {
            max_finished,
            keep_for,
        } = self.retention;
        let mut finished: Vec<(Duration, String)> = table
            .jobs
            .values()
            .filter_map(|j| j.ended_ago().map(|ago| (ago, j.id.clone())))
            .collect();
        if finished.len() <= max_finished && finished.iter().all(|(ago, _)| *ago < keep_for) {
            return;
        }
        // Most recently ended first: the tail goes.
        finished.sort();
        for (i, (ago, id)) in finished.into_iter().enumerate() {
            let why = if ago >= keep_for {
                Dropped::Expired(keep_for)
            } else if i >= max_finished {
                Dropped::Displaced(max_finished)
            } else {
                continue;
            };
            table.jobs.remove(&id);
            if table.dropped.len() == DROPPED_IDS_KEPT {
                table.dropped.pop_front();
            }
            table.dropped.push_back((id, why));
        }
    }
}

/// `90s`, `10m`, `1h`: a retention time as the flag takes it.
fn humantime_short(d: Duration) -> String {
    let (ms, s) = (d.as_millis(), d.as_secs());
    match s {
        _ if ms % 1000 != 0 => format!("{ms}ms"),
        _ if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}
