//! The coordinator's table of jobs: every running job, and finished ones kept
//! a while for `GetJob` and `GetJobResult` — at most `max_finished` of them,
//! their results holding at most `max_finished_bytes` (the oldest go first,
//! see [`JobTable::prune`]) and none longer than `keep_for`. The table is pruned
//! when a job is submitted, when one ends and when a client looks a job up,
//! so memory does not grow with the number of jobs run. The ids of dropped
//! jobs are remembered (a bounded list) so that asking for one says what
//! became of it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rfm_proto::auth::Identity;
use tonic::Status;

use crate::job::Job;

/// Default number of finished jobs kept.
pub const DEFAULT_MAX_FINISHED_JOBS: usize = 64;
/// Default memory the results of finished jobs may hold.
pub const DEFAULT_MAX_FINISHED_BYTES: u64 = 512 << 20;
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
    /// The memory the results of finished jobs may hold, about
    /// ([`rfm_core::RfmResult::heap_bytes`]).
    pub max_finished_bytes: u64,
    pub keep_for: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_finished: DEFAULT_MAX_FINISHED_JOBS,
            max_finished_bytes: DEFAULT_MAX_FINISHED_BYTES,
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

/// What the jobs kept say of the coordinator's work ([`JobTable::activity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// A job runs.
    Running,
    /// None runs; the last one kept ended then (`None`: no job is kept).
    Idle { last_ended: Option<Instant> },
}

/// Why a finished job left the table.
#[derive(Clone, Copy, Debug)]
enum Dropped {
    Expired(Duration),
    Displaced(usize),
    /// Newer results took the memory kept for finished jobs (in bytes).
    OverMemory(u64),
}

struct Table {
    jobs: HashMap<String, Arc<Job>>,
    /// The last dropped ids (with their owners), oldest first.
    dropped: VecDeque<(String, Option<String>, Dropped)>,
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
        self.insert_checked(job, |_| Ok(()))
    }

    /// Adds a new job if `admit`, given the number of jobs running, allows
    /// it; asked under the table's lock (so a drain that lists the running
    /// jobs right after sees this one, and no two submissions both take the
    /// last free place).
    pub fn insert_checked(
        &self,
        job: Arc<Job>,
        admit: impl FnOnce(usize) -> Result<(), Status>,
    ) -> Result<(), Status> {
        let mut table = self.lock();
        let running = table
            .jobs
            .values()
            .filter(|j| j.ended_ago().is_none())
            .count();
        admit(running)?;
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
        self.get_for(id, &Identity::Open)
    }

    /// The job `id` if `caller` may see it; a job of another client answers
    /// exactly like an unknown one.
    pub fn get_for(&self, id: &str, caller: &Identity) -> Result<Arc<Job>, Status> {
        let mut table = self.lock();
        self.prune_locked(&mut table);
        if let Some(job) = table.jobs.get(id) {
            if caller.may_access(job.owner.as_deref()) {
                return Ok(job.clone());
            }
            return Err(self.unknown(id));
        }
        let dropped = table
            .dropped
            .iter()
            .rev()
            .find(|(d, owner, _)| d == id && caller.may_access(owner.as_deref()));
        let Some((_, _, why)) = dropped else {
            return Err(self.unknown(id));
        };
        let after = match why {
            Dropped::Expired(ttl) => {
                format!("after {} (--finished-job-ttl)", humantime_short(*ttl))
            }
            Dropped::Displaced(max) => {
                format!("after {max} newer jobs finished (--max-finished-jobs)")
            }
            Dropped::OverMemory(max) => format!(
                "when newer results filled the memory kept for finished jobs \
                 (--max-finished-results-size {})",
                rfm_proto::size::format(*max)
            ),
        };
        Err(Status::not_found(format!(
            "job {id} finished and was dropped from memory {after}; its files are where \
             `rfm submit --out` wrote them, and its run is in the run database if the \
             coordinator has one (`rfm runs`)"
        )))
    }

    /// NOT_FOUND of a job this coordinator does not know (or does not show).
    fn unknown(&self, id: &str) -> Status {
        Status::not_found(format!(
            "no job {id:?} on this coordinator (it keeps at most {} finished jobs, for {}, \
             their results within {})",
            self.retention.max_finished,
            humantime_short(self.retention.keep_for),
            rfm_proto::size::format(self.retention.max_finished_bytes)
        ))
    }

    /// The jobs that have not ended.
    pub fn running(&self) -> Vec<Arc<Job>> {
        self.lock()
            .jobs
            .values()
            .filter(|j| j.ended_ago().is_none())
            .cloned()
            .collect()
    }

    /// Whether a job runs, else when the last job kept ended.
    pub fn activity(&self) -> Activity {
        let table = self.lock();
        let mut last_ended = None;
        for job in table.jobs.values() {
            match job.ended_at() {
                None => return Activity::Running,
                Some(at) => last_ended = last_ended.max(Some(at)),
            }
        }
        Activity::Idle { last_ended }
    }

    /// Every job kept (after pruning).
    pub fn list(&self) -> Vec<Arc<Job>> {
        self.list_for(&Identity::Open)
    }

    /// The jobs kept that `caller` may see.
    pub fn list_for(&self, caller: &Identity) -> Vec<Arc<Job>> {
        let mut table = self.lock();
        self.prune_locked(&mut table);
        table
            .jobs
            .values()
            .filter(|j| caller.may_access(j.owner.as_deref()))
            .cloned()
            .collect()
    }

    /// The finished jobs kept, and the memory their results hold, about.
    pub fn finished_kept(&self) -> (usize, u64) {
        let table = self.lock();
        let finished = table.jobs.values().filter(|j| j.ended_ago().is_some());
        finished.fold((0, 0), |(n, bytes), j| (n + 1, bytes + j.result_bytes()))
    }

    /// Drops the finished jobs past the retention (call when a job ends):
    /// those ended longer than `keep_for` ago; of the others, newest first,
    /// those past the `max_finished` first, and those whose result would
    /// take the results kept past `max_finished_bytes`. The newest finished
    /// job stays whatever its size, and so does a result its submitter has
    /// not fetched yet, for [`MIN_FINISHED_JOB_TTL`] after its end.
    pub fn prune(&self) {
        let mut table = self.lock();
        self.prune_locked(&mut table);
    }

    fn prune_locked(&self, table: &mut Table) {
        let Retention {
            max_finished,
            max_finished_bytes,
            keep_for,
        } = self.retention;
        let mut finished: Vec<Ended> = table
            .jobs
            .values()
            .filter_map(|j| {
                j.ended_ago().map(|ago| Ended {
                    ago,
                    id: j.id.clone(),
                    owner: j.owner.clone(),
                    bytes: j.result_bytes(),
                    awaited: j.result_awaited(),
                })
            })
            .collect();
        let bytes: u64 = finished.iter().map(|e| e.bytes).sum();
        if finished.len() <= max_finished
            && bytes <= max_finished_bytes
            && finished.iter().all(|e| e.ago < keep_for)
        {
            return;
        }
        // Most recently ended first: the tail goes.
        finished.sort_by(|a, b| (a.ago, &a.id).cmp(&(b.ago, &b.id)));
        let mut kept_bytes = 0u64;
        for (i, ended) in finished.into_iter().enumerate() {
            let Ended {
                ago,
                id,
                owner,
                bytes,
                awaited,
            } = ended;
            let fits = kept_bytes.saturating_add(bytes) <= max_finished_bytes;
            let why = if ago >= keep_for {
                Dropped::Expired(keep_for)
            } else if i >= max_finished {
                Dropped::Displaced(max_finished)
            } else if !fits && i > 0 && !(awaited && ago < MIN_FINISHED_JOB_TTL) {
                Dropped::OverMemory(max_finished_bytes)
            } else {
                kept_bytes = kept_bytes.saturating_add(bytes);
                continue;
            };
            table.jobs.remove(&id);
            if table.dropped.len() == DROPPED_IDS_KEPT {
                table.dropped.pop_front();
            }
            table.dropped.push_back((id, owner, why));
        }
    }
}

/// A finished job as [`JobTable::prune`] weighs it.
struct Ended {
    ago: Duration,
    id: String,
    owner: Option<String>,
    /// The memory its result holds, about.
    bytes: u64,
    /// Its submitter has not fetched its result yet.
    awaited: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOutcome;
    use rfm_proto::v1::ErrorClass;

    fn table(max_finished: usize, keep_for: Duration) -> JobTable {
        JobTable::new(Retention {
            max_finished,
            max_finished_bytes: DEFAULT_MAX_FINISHED_BYTES,
            keep_for,
        })
    }

    fn add(table: &JobTable, id: &str) -> Arc<Job> {
        let job = Arc::new(Job::new(id.into(), 1, 1));
        table.insert(job.clone()).unwrap();
        job
    }

    fn end(job: &Job) {
        job.finish(JobOutcome::Failed {
            class: ErrorClass::Cancelled,
            error: "cancelled by the user".into(),
            report: None,
        });
    }

    fn missing(table: &JobTable, id: &str) -> Status {
        missing_for(table, id, &Identity::Open)
    }

    fn missing_for(table: &JobTable, id: &str, caller: &Identity) -> Status {
        match table.get_for(id, caller) {
            Ok(_) => panic!("job {id} is still kept"),
            Err(status) => status,
        }
    }

    fn ids(table: &JobTable) -> Vec<String> {
        let mut ids: Vec<String> = table.list().iter().map(|j| j.id.clone()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept_and_running_ones_always() {
        let jobs = table(2, Duration::from_secs(3600));
        let running = add(&jobs, "a-running");
        for id in ["b", "c", "d"] {
            end(&add(&jobs, id));
            std::thread::sleep(Duration::from_millis(2));
            jobs.prune();
        }
        assert_eq!(ids(&jobs), ["a-running", "c", "d"]);
        let err = missing(&jobs, "b");
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert!(
            err.message().starts_with(
                "job b finished and was dropped from memory after 2 newer jobs finished \
                 (--max-finished-jobs)"
            ),
            "{}",
            err.message()
        );
        end(&running);
        jobs.prune();
        assert_eq!(ids(&jobs), ["a-running", "d"]);
        let err = missing(&jobs, "never");
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(
            err.message(),
            "no job \"never\" on this coordinator (it keeps at most 2 finished jobs, for 1h, \
             their results within 512MiB)"
        );
        assert_eq!(
            jobs.insert(Arc::new(Job::new("d".into(), 1, 1)))
                .unwrap_err()
                .code(),
            tonic::Code::AlreadyExists
        );
    }

    #[test]
    fn another_clients_job_kept_or_dropped_looks_unknown() {
        let jobs = table(1, Duration::from_secs(3600));
        let (alice, bob) = (
            Identity::Client("alice".into()),
            Identity::Client("bob".into()),
        );
        for id in ["x", "y"] {
            let job = Arc::new(Job::new(id.into(), 1, 1).owned_by(alice.owner()));
            jobs.insert(job.clone()).unwrap();
            end(&job);
            std::thread::sleep(Duration::from_millis(2));
            jobs.prune();
        }
        let unknown = missing_for(&jobs, "z", &bob);
        for id in ["x", "y"] {
            let err = missing_for(&jobs, id, &bob);
            assert_eq!(err.code(), tonic::Code::NotFound);
            assert_eq!(
                err.message().replace(id, "z"),
                unknown.message(),
                "kept or dropped, bob cannot tell job {id} exists"
            );
        }
        assert!(jobs.get_for("y", &alice).is_ok());
        assert!(jobs.get_for("y", &Identity::Admin).is_ok());
        let dropped = missing_for(&jobs, "x", &alice);
        assert!(dropped.message().contains("dropped from memory"));
        assert!(jobs.list_for(&bob).is_empty());
        assert_eq!(jobs.list_for(&alice).len(), 1);
    }

    #[test]
    fn a_finished_job_expires_and_a_look_up_says_so() {
        let jobs = table(64, Duration::from_millis(100));
        end(&add(&jobs, "old"));
        let running = add(&jobs, "running");
        assert!(jobs.get("old").is_ok());
        std::thread::sleep(Duration::from_millis(150));
        let err = missing(&jobs, "old");
        assert!(
            err.message().starts_with(
                "job old finished and was dropped from memory after 100ms (--finished-job-ttl)"
            ),
            "{}",
            err.message()
        );
        assert!(Arc::ptr_eq(&jobs.get("running").unwrap(), &running));
    }

    /// Ends `job` as succeeded with a result of room for `rows` customers;
    /// returns the memory it counts for.
    fn succeed(job: &Job, rows: usize, fetched: bool) -> u64 {
        let opts = rfm_core::RunOptions::default();
        let result = rfm_core::RfmResult {
            as_of: 10,
            latest_purchase: 9,
            customers: Vec::with_capacity(rows),
            segments: Vec::new(),
            revenue: rfm_core::money::Money::ZERO,
            ledger: Default::default(),
            cut_points: Default::default(),
        };
        let bytes = result.heap_bytes();
        job.finish(JobOutcome::Succeeded {
            report: rfm_core::report::RunReport::before_input("j", "in.csv", &opts),
            result: Arc::new(result),
            publication: Default::default(),
        });
        if fetched {
            job.tables_fetched();
        }
        assert_eq!(job.result_bytes(), bytes);
        assert_eq!(job.status().result_bytes, bytes);
        bytes
    }

    fn table_of_bytes(max_finished_bytes: u64) -> JobTable {
        JobTable::new(Retention {
            max_finished: 64,
            max_finished_bytes,
            keep_for: Duration::from_secs(3600),
        })
    }

    #[test]
    fn the_oldest_results_go_when_the_newer_fill_the_memory_kept() {
        let one = succeed(&Job::new("probe".into(), 1, 1), 1000, true);
        let jobs = table_of_bytes(3 * one);
        let running = add(&jobs, "a-running");
        for id in ["b", "c", "d", "e", "f"] {
            succeed(&add(&jobs, id), 1000, true);
            std::thread::sleep(Duration::from_millis(2));
            jobs.prune();
        }
        assert_eq!(ids(&jobs), ["a-running", "d", "e", "f"]);
        assert_eq!(jobs.finished_kept(), (3, 3 * one));
        let err = missing(&jobs, "b");
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert!(
            err.message().starts_with(
                "job b finished and was dropped from memory when newer results filled the \
                 memory kept for finished jobs (--max-finished-results-size "
            ),
            "{}",
            err.message()
        );
        // A failed job holds no result: it takes none of the memory.
        end(&running);
        jobs.prune();
        assert_eq!(ids(&jobs), ["a-running", "d", "e", "f"]);
    }

    #[test]
    fn the_newest_result_stays_whatever_its_size() {
        let one = succeed(&Job::new("probe".into(), 1, 1), 1000, true);
        let jobs = table_of_bytes(one / 2);
        for id in ["a", "b"] {
            succeed(&add(&jobs, id), 1000, true);
            std::thread::sleep(Duration::from_millis(2));
            jobs.prune();
        }
        assert_eq!(ids(&jobs), ["b"]);
    }

    #[test]
    fn a_result_not_fetched_yet_stays_past_the_memory_until_it_is_fetched() {
        let one = succeed(&Job::new("probe".into(), 1, 1), 1000, true);
        let jobs = table_of_bytes(one);
        let older = add(&jobs, "a");
        succeed(&older, 1000, false);
        std::thread::sleep(Duration::from_millis(2));
        succeed(&add(&jobs, "b"), 1000, false);
        jobs.prune();
        assert_eq!(ids(&jobs), ["a", "b"], "both submitters are still fetching");
        older.tables_fetched();
        jobs.prune();
        assert_eq!(ids(&jobs), ["b"]);
    }

    #[test]
    fn the_dropped_ids_remembered_are_bounded() {
        let jobs = table(1, Duration::from_secs(3600));
        for i in 0..DROPPED_IDS_KEPT + 10 {
            end(&add(&jobs, &format!("j{i}")));
        }
        jobs.prune();
        let table = jobs.lock();
        assert_eq!(table.jobs.len(), 1);
        assert_eq!(table.dropped.len(), DROPPED_IDS_KEPT);
        assert_eq!(
            table.dropped.back().map(|(id, ..)| id.as_str()),
            Some("j1032")
        );
    }

    #[test]
    fn retention_times_read_as_the_flag_takes_them() {
        assert_eq!(humantime_short(Duration::from_secs(3600)), "1h");
        assert_eq!(humantime_short(Duration::from_secs(600)), "10m");
        assert_eq!(humantime_short(Duration::from_secs(90)), "90s");
        assert_eq!(humantime_short(Duration::from_millis(1500)), "1500ms");
        assert!(parse_ttl("1h").is_ok());
        assert!(parse_ttl("5s").unwrap_err().contains("at least 10s"));
    }
}
