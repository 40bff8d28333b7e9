//! Watched and scheduled runs (`rfm watch DIR`, `rfm-coordinator --watch
//! DIR`): the folder is polled (every regular file directly in it as
//! `(name, size, modification time)`, except hidden ones — a dot first, the
//! usual name of a copy in progress; portable, no file-system events), and a run starts once a change has been followed by
//! a quiet period (the debounce), so a file still being copied is not read
//! half-written. Runs happen one at a time in the caller's thread: a change
//! seen during a run leads to one more run after it.
//!
//! With a schedule (`--every`, `--cron`), runs start only when due, and only
//! if the folder changed since the last successful run; otherwise the due
//! run is *skipped* ("no new or changed files"). Without one, every settled
//! change starts a run; a folder that already holds files when watching
//! starts is a change (its first run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::cron::Cron;

/// The reason recorded for a skipped run.
pub const NOTHING_CHANGED: &str = "no new or changed files";

/// What the folder holds: each file's size and modification time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: BTreeMap<PathBuf, (u64, Option<SystemTime>)>,
}

impl Snapshot {
    /// Reads `dir`'s regular files (not its subfolders, not hidden files).
    pub fn scan(dir: &Path) -> std::io::Result<Snapshot> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // A file removed between listing and reading is simply gone.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                files.insert(entry.path(), (meta.len(), meta.modified().ok()));
            }
        }
        Ok(Snapshot { files })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How `self` differs from `before`, in words (`2 added, 1 changed`).
    pub fn describe_change(&self, before: &Snapshot) -> String {
        let added = self.files.keys().filter(|k| !before.files.contains_key(*k));
        let changed = self
            .files
            .iter()
            .filter(|(k, v)| before.files.get(*k).is_some_and(|b| b != *v));
        let removed = before.files.keys().filter(|k| !self.files.contains_key(*k));
        let mut parts = Vec::new();
        for (n, what) in [
            (added.count(), "added"),
            (changed.count(), "changed"),
            (removed.count(), "removed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join(", ")
        }
    }
}

/// When runs start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// After every settled change.
    OnChange,
    /// Every period, from when watching starts.
    Every(Duration),
    /// At the fire times of a cron expression (UTC).
    Cron(Cron),
}

impl Schedule {
    /// The schedule of the flags `--every` / `--cron` (at most one given).
    pub fn of(every: Option<Duration>, cron: Option<Cron>) -> Result<Schedule, String> {
        match (every, cron) {
            (Some(_), Some(_)) => Err("--every and --cron exclude each other: give one".into()),
            (Some(d), None) if d.is_zero() => Err("--every must be longer than 0s".into()),
            (Some(d), None) => Ok(Schedule::Every(d)),
            (None, Some(c)) => Ok(Schedule::Cron(c)),
            (None, None) => Ok(Schedule::OnChange),
        }
    }

    /// The next due time after `now` (`None` for [`Schedule::OnChange`]).
    fn next_due(&self, now: Instant) -> Option<Instant> {
        match self {
            Schedule::OnChange => None,
            Schedule::Every(d) => Some(now + *d),
            Schedule::Cron(c) => {
                let unix = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                let next = c.next_after(unix.as_secs() as i64)?;
                let wait = Duration::from_secs(next as u64).saturating_sub(unix);
                Some(now + wait)
            }
        }
    }
}

/// How the folder is watched.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub dir: PathBuf,
    /// Time between two scans.
    pub poll: Duration,
    /// How long the folder must stay unchanged before a run reads it.
    pub debounce: Duration,
    pub schedule: Schedule,
}

/// What the watcher tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The folder changed (its first change after a quiet period).
    Changed(String),
    /// A run is due; the caller runs it and says whether it succeeded.
    Run(String),
    /// A scheduled run was due but nothing changed since the last successful run.
    Skip(String),
}

/// The watcher's memory between scans (pure: times are given, so tests
/// drive it without sleeping).
#[derive(Debug)]
pub struct Watcher {
    debounce: Duration,
    schedule: Schedule,
    /// The last scan, and when it last differed from the scan before.
    seen: Snapshot,
    settled_since: Instant,
    /// The change was announced (reset when the folder settles).
    announced: bool,
    /// The folder as the last run (any outcome) and the last successful one read it.
    last_run: Snapshot,
    last_success: Snapshot,
    /// A scheduled run is due (waiting for the folder to settle).
    due: bool,
    next_due: Option<Instant>,
    /// The snapshot the run in progress reads.
    running: Option<Snapshot>,
}

impl Watcher {
    pub fn new(options: &WatchOptions, now: Instant) -> Watcher {
        Watcher {
            debounce: options.debounce,
            next_due: options.schedule.next_due(now),
            schedule: options.schedule.clone(),
            seen: Snapshot::default(),
            settled_since: now,
            announced: false,
            last_run: Snapshot::default(),
            last_success: Snapshot::default(),
            due: false,
            running: None,
        }
    }

    /// When the next scheduled run is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Takes a scan made at `now`; returns what happens.
    pub fn observe(&mut self, scan: Snapshot, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if scan != self.seen {
            if !self.announced && scan != self.last_run {
                events.push(Event::Changed(scan.describe_change(&self.last_run)));
                self.announced = true;
            }
            self.seen = scan;
            self.settled_since = now;
        }
        if let Some(at) = self.next_due {
            if now >= at {
                self.due = true;
                self.next_due = self.schedule.next_due(now);
            }
        }
        let settled = now.duration_since(self.settled_since) >= self.debounce;
        if !settled {
            return events;
        }
        match self.schedule {
            Schedule::OnChange if self.seen != self.last_run => {
                events.push(Event::Run(self.seen.describe_change(&self.last_run)));
                self.start();
            }
            Schedule::OnChange => {}
            _ if self.due => {
                self.due = false;
                if self.seen != self.last_success {
                    events.push(Event::Run(self.seen.describe_change(&self.last_success)));
                    self.start();
                } else {
                    events.push(Event::Skip(NOTHING_CHANGED.into()));
                    self.announced = false;
                }
            }
            _ => {}
        }
        events
    }

    fn start(&mut self) {
        self.running = Some(self.seen.clone());
        self.announced = false;
    }

    /// The run started by the last [`Event::Run`] ended.
    pub fn finished(&mut self, succeeded: bool) {
        if let Some(read) = self.running.take() {
            if succeeded {
                self.last_success = read.clone();
            }
            self.last_run = read;
        }
    }
}

/// Watches until `stop` is set: scans every `poll`, hands each event to
/// `on_event`, which runs a due run (in this thread: never two at once) and
/// returns whether it succeeded (its answer is ignored for other events).
pub fn watch(
    options: &WatchOptions,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&Event) -> bool,
) -> std::io::Result<()> {
    let mut watcher = Watcher::new(options, Instant::now());
    while !stop.load(Ordering::SeqCst) {
        let scan = Snapshot::scan(&options.dir)?;
        for event in watcher.observe(scan, Instant::now()) {
            let ok = on_event(&event);
            if matches!(event, Event::Run(_)) {
                watcher.finished(ok);
            }
        }
        let until = Instant::now() + options.poll;
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(options.poll.min(Duration::from_millis(50)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(files: &[(&str, u64)]) -> Snapshot {
        Snapshot {
            files: files
                .iter()
                .map(|(n, s)| (PathBuf::from(n), (*s, None)))
                .collect(),
        }
    }

    fn options(schedule: Schedule) -> WatchOptions {
        WatchOptions {
            dir: PathBuf::new(),
            poll: Duration::from_millis(200),
            debounce: Duration::from_secs(1),
            schedule,
        }
    }

    fn runs(events: &[Event]) -> usize {
        events.iter().filter(|e| matches!(e, Event::Run(_))).count()
    }

    #[test]
    fn a_file_written_in_pieces_runs_once_after_it_settles() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = Watcher::new(&options(Schedule::OnChange), t0);
        assert!(w.observe(snap(&[]), ms(0)).is_empty());
        assert!(w.observe(snap(&[]), ms(5000)).is_empty());
        // Growing every 600 ms (less than the debounce): no run yet.
        let mut all = Vec::new();
        for (i, at) in [5200, 5800, 6400, 7000].into_iter().enumerate() {
            all.extend(w.observe(snap(&[("a.csv", 100 * (i as u64 + 1))]), ms(at)));
        }
        assert_eq!(all, [Event::Changed("1 added".into())]);
        assert!(w.observe(snap(&[("a.csv", 400)]), ms(7800)).is_empty());
        let e = w.observe(snap(&[("a.csv", 400)]), ms(8000));
        assert_eq!(e, [Event::Run("1 added".into())]);
        w.finished(true);
        assert!(w.observe(snap(&[("a.csv", 400)]), ms(12000)).is_empty());
    }

    #[test]
    fn a_change_during_a_run_leads_to_one_more_run() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watcher::new(&options(Schedule::OnChange), t0);
        w.observe(snap(&[("a.csv", 1)]), s(0));
        assert_eq!(runs(&w.observe(snap(&[("a.csv", 1)]), s(1))), 1);
        // While it runs, b.csv arrives; the run ends (failed, even).
        w.finished(false);
        let mut e = w.observe(snap(&[("a.csv", 1), ("b.csv", 1)]), s(5));
        e.extend(w.observe(snap(&[("a.csv", 1), ("b.csv", 1)]), s(6)));
        assert_eq!(
            e,
            [
                Event::Changed("1 added".into()),
                Event::Run("1 added".into())
            ]
        );
        w.finished(true);
        assert!(w
            .observe(snap(&[("a.csv", 1), ("b.csv", 1)]), s(9))
            .is_empty());
    }

    #[test]
    fn a_scheduled_run_is_skipped_when_nothing_changed() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watcher::new(&options(Schedule::Every(Duration::from_secs(10))), t0);
        // A change does not run before it is due.
        assert_eq!(
            w.observe(snap(&[("a.csv", 1)]), s(1)),
            [Event::Changed("1 added".into())]
        );
        assert!(w.observe(snap(&[("a.csv", 1)]), s(5)).is_empty());
        assert_eq!(runs(&w.observe(snap(&[("a.csv", 1)]), s(10))), 1);
        w.finished(true);
        assert_eq!(
            w.observe(snap(&[("a.csv", 1)]), s(20)),
            [Event::Skip(NOTHING_CHANGED.into())]
        );
        // A failed run is tried again when next due.
        w.observe(snap(&[("a.csv", 2)]), s(25));
        assert_eq!(runs(&w.observe(snap(&[("a.csv", 2)]), s(30))), 1);
        w.finished(false);
        assert_eq!(runs(&w.observe(snap(&[("a.csv", 2)]), s(40))), 1);
    }

    #[test]
    fn hidden_files_and_subfolders_are_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".a.csv.part"), "x").unwrap();
        std::fs::create_dir(dir.path().join("old")).unwrap();
        assert!(Snapshot::scan(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("a.csv"), "x").unwrap();
        let one = Snapshot::scan(dir.path()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.describe_change(&Snapshot::default()), "1 added");
    }

    #[test]
    fn schedule_flags_exclude_each_other() {
        let cron = Cron::parse("0 2 * * *").unwrap();
        assert!(Schedule::of(Some(Duration::from_secs(1)), Some(cron.clone())).is_err());
        assert!(Schedule::of(Some(Duration::ZERO), None).is_err());
        assert_eq!(Schedule::of(None, None), Ok(Schedule::OnChange));
        assert_eq!(
            Schedule::of(None, Some(cron.clone())),
            Ok(Schedule::Cron(cron))
        );
    }
}
