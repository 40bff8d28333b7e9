//! The state cache through the real binaries: the UCI file split by month
//! into 13 files (made here), run incrementally with `rfm run` and with
//! `rfm submit` on a coordinator and two workers; every result is checked
//! against the reference outputs (core/tests/data/reference) and against a
//! run without the cache. Also `rfm cache ls|prune|clear`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ok, rfm, REFERENCE, UCI};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes the UCI file's lines into one file per month (`YYYY-MM.csv`,
/// each with the header) under `dir`; returns their paths in month order.
fn split_by_month(dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(UCI).expect("the real UCI file under ../shared");
    let mut lines = bytes.split(|&b| b == b'\n');
    let header = lines.next().unwrap();
    let mut months: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        // InvoiceDate is the first `,YYYY-MM-DD ` of the line.
        let at = line
            .windows(12)
            .position(|w| {
                w[0] == b','
                    && w[1..5].iter().all(u8::is_ascii_digit)
                    && w[5] == b'-'
                    && w[8] == b'-'
                    && w[11] == b' '
            })
            .expect("a line with a date");
        let month = String::from_utf8_lossy(&line[at + 1..at + 8]).into_owned();
        let out = months.entry(month).or_insert_with(|| {
            let mut v = header.to_vec();
            v.push(b'\n');
            v
        });
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    std::fs::create_dir_all(dir).unwrap();
    months
        .into_iter()
        .map(|(month, text)| {
            let p = dir.join(format!("{month}.csv"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

/// The UCI file split by month under `dir/months` (13 files), and a folder
/// `dir/in` holding the first 12 of them.
fn first_twelve_months(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let months = split_by_month(&dir.join("months"));
    assert_eq!(months.len(), 13);
    let input = dir.join("in");
    std::fs::create_dir(&input).unwrap();
    for m in &months[..12] {
        std::fs::copy(m, input.join(m.file_name().unwrap())).unwrap();
    }
    (months, input)
}

fn sha256_file(p: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(p).unwrap()))
}

fn reference(name: &str) -> (String, Vec<u8>, Value) {
    let sha = std::fs::read_to_string(format!("{REFERENCE}/{name}.customers.sha256")).unwrap();
    let segments = std::fs::read(format!("{REFERENCE}/{name}.segments.csv")).unwrap();
    let stats =
        serde_json::from_slice(&std::fs::read(format!("{REFERENCE}/{name}.stats.json")).unwrap())
            .unwrap();
    (
        sha.split_whitespace().next().unwrap().to_string(),
        segments,
        stats,
    )
}

/// Asserts that the run in `out` has the reference results of `name`.
fn assert_reference(out: &Path, name: &str) {
    let (sha, segments, stats) = reference(name);
    assert_eq!(
        sha256_file(&out.join("customers.csv")),
        sha,
        "{}/customers.csv differs from the reference {name}",
        out.display()
    );
    assert!(
        std::fs::read(out.join("segments.csv")).unwrap() == segments,
        "{}/segments.csv differs from the reference {name}",
        out.display()
    );
    let report = report(out);
    for k in ["purchase_lines", "customers", "as_of"] {
        assert_eq!(report[k], stats[k], "{k} of {}", out.display());
    }
    assert_eq!(report["lines_read"], 541_909);
    assert_eq!(report["malformed"], 0);
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

/// (hits, computed) of a run's report.
fn cache_use(out: &Path) -> (u64, u64) {
    let r = report(out);
    (
        r["cache"]["hits"]
            .as_u64()
            .expect("run.json has cache.hits"),
        r["cache"]["computed"].as_u64().unwrap(),
    )
}

/// The report without what differs from run to run (time, id, cache use).
fn figures(out: &Path) -> Value {
    let mut r = report(out);
    let o = r.as_object_mut().unwrap();
    for k in ["run_id", "started_at", "finished_at", "seconds", "cache"] {
        o.remove(k);
    }
    r
}

/// The entries of a cache folder: (each file's, the sets'), sorted.
fn entries_of(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .collect();
    all.sort();
    all.into_iter()
        .partition(|p| !p.to_string_lossy().ends_with(".set.state"))
}

/// Asserts that two runs' outputs are byte-identical and their reports
/// agree but for time and cache use.
fn assert_same_run(a: &Path, b: &Path) {
    for f in ["customers.csv", "segments.csv"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} of {} and {} differ",
            a.display(),
            b.display()
        );
    }
    assert_eq!(figures(a), figures(b));
}

/// Swaps the two digits after the point of the price of a purchase line
/// past the first 16 KiB of `file` (a same-size edit in place); returns the
/// customer id and the change of its revenue in cents.
fn swap_price_digits(file: &Path) -> (String, i64) {
    let mut bytes = std::fs::read(file).unwrap();
    let mut at = 100_000;
    loop {
        let start = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let end = start + bytes[start..].iter().position(|&b| b == b'\n').unwrap();
        let line = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        let f: Vec<&str> = line.split(',').collect();
        at = end;
        // InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
        if f.len() != 8 || f[0].starts_with('C') || f[6].is_empty() || line.contains('"') {
            continue;
        }
        let (qty, price) = (f[3].parse::<i64>().unwrap_or(0), f[5]);
        let Some((units, cents)) = price.split_once('.') else {
            continue;
        };
        let c = cents.as_bytes();
        if qty <= 0 || c.len() != 2 || c[0] == c[1] {
            continue;
        }
        let old: i64 = format!("{units}{cents}").parse().unwrap();
        let swapped = format!("{}{}", c[1] as char, c[0] as char);
        let new: i64 = format!("{units}{swapped}").parse().unwrap();
        let price_at = start + line.find(&format!(",{price},")).unwrap() + 1 + units.len() + 1;
        bytes[price_at..price_at + 2].copy_from_slice(swapped.as_bytes());
        std::fs::write(file, &bytes).unwrap();
        let customer = f[6].trim_end_matches(".0").to_string();
        return (customer, qty * (new - old));
    }
}

/// A customer's monetary in cents, from customers.csv.
fn monetary_cents(out: &Path, customer: &str) -> i64 {
    let text = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{customer},")))
        .unwrap_or_else(|| panic!("customer {customer} in customers.csv"));
    row.split(',')
        .nth(3)
        .unwrap()
        .replace('.', "")
        .parse()
        .unwrap()
}

#[test]
fn incremental_rfm_run_over_monthly_files_equals_a_full_run_and_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (months, input) = first_twelve_months(tmp.path());
    let root = tmp.path().join("root");
    let root_s = root.to_str().unwrap();
    let input_s = input.to_str().unwrap();
    let mut n = 0;
    let mut run = |extra: &[&str]| -> (PathBuf, Output) {
        n += 1;
        let out = tmp.path().join(format!("out{n}"));
        let cache = root.join(".cache");
        let mut args = vec!["run", input_s, "--results-root", root_s, "--quiet"];
        args.extend_from_slice(&["--cache-dir", cache.to_str().unwrap()]);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = ok(rfm(&args));
        (out, o)
    };

    // Twelve months: all computed.
    let (first, _) = run(&[]);
    assert_eq!(cache_use(&first), (0, 12));

    // The thirteenth added: only it is read.
    let last = input.join(months[12].file_name().unwrap());
    std::fs::copy(&months[12], &last).unwrap();
    let (incremental, o) = run(&[]);
    assert_eq!(cache_use(&incremental), (12, 1));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_reference(&incremental, "online_retail");
    let (full, _) = run(&["--no-cache"]);
    assert!(report(&full).get("cache").is_none(), "no cache, no counts");
    assert_same_run(&incremental, &full);
    assert_eq!(report(&incremental)["files"].as_array().unwrap().len(), 13);

    // The summary says it.
    // A run kept under the results root caches there without --cache-dir.
    let o = ok(rfm(&["run", input_s, "--results-root", root_s]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("cache: 13 files from the cache, 0 computed"),
        "{stdout}"
    );

    // The as-of date is applied after the merge: the entries serve.
    let (as_of, _) = run(&["--as-of", "2012-01-01"]);
    assert_eq!(cache_use(&as_of), (13, 0));
    let (as_of_full, _) = run(&["--as-of", "2012-01-01", "--no-cache"]);
    assert_same_run(&as_of, &as_of_full);

    // Another --until changes every file's state: all recomputed.
    let (until, _) = run(&["--until", "2011-06-30"]);
    assert_eq!(cache_use(&until), (0, 13));
    let (sha, segments, stats) = reference("online_retail_until_2011-06-30");
    assert_eq!(sha256_file(&until.join("customers.csv")), sha);
    assert!(std::fs::read(until.join("segments.csv")).unwrap() == segments);
    assert_eq!(report(&until)["customers"], stats["customers"]);
    let (until_again, _) = run(&["--until", "2011-06-30"]);
    assert_eq!(cache_use(&until_again), (13, 0));
    assert_same_run(&until, &until_again);

    // Damaged entries: a flipped byte, a truncation, a foreign file; and
    // the set entry of the 13 files, which a run reads first.
    let cache_dir = root.join(".cache");
    let (mut entries, mut sets) = entries_of(&cache_dir);
    assert_eq!(entries.len(), 26, "13 files × two --until values");
    // One set per --until value: of the first 12 files (one file outside
    // it is too few to write a new one), and of the 13 with --until.
    assert_eq!(sets.len(), 2, "{sets:?}");
    // The entries of the run without --until.
    // (Its JSON header: after the magic, the version and its length.)
    let without_until = |p: &PathBuf| {
        let bytes = std::fs::read(p).unwrap();
        let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        !String::from_utf8_lossy(&bytes[16..16 + len]).contains("2011-06-30")
    };
    entries.retain(without_until);
    sets.retain(without_until);
    assert_eq!((entries.len(), sets.len()), (13, 1));
    let set = std::fs::read(&sets[0]).unwrap();
    std::fs::write(&sets[0], &set[..set.len() - 100]).unwrap();
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let len = bytes.len();
    bytes[len / 2] ^= 0x5a;
    std::fs::write(&entries[0], &bytes).unwrap();
    let bytes = std::fs::read(&entries[1]).unwrap();
    std::fs::write(&entries[1], &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(&entries[2], b"not an entry at all").unwrap();
    let (repaired, o) = run(&[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr.matches("warning: cache entry").count(),
        4,
        "{stderr}"
    );
    assert!(
        stderr.contains("reading its 12 files from their own entries"),
        "{stderr}"
    );
    assert_eq!(cache_use(&repaired), (10, 3), "{stderr}");
    assert!(stderr.contains(".state"), "the entry is named: {stderr}");
    assert_reference(&repaired, "online_retail");
    assert_same_run(&repaired, &full);
    let (after, o) = run(&[]);
    assert_eq!(cache_use(&after), (13, 0), "the entries were rewritten");
    assert!(o.stderr.is_empty());
    // ... and the set, now of the 13 files, replaced that of the 12.
    let (_, sets) = entries_of(&cache_dir);
    assert_eq!(sets.len(), 2, "{sets:?}");

    // A same-size edit in place: that file alone is read again, and the
    // result changes by exactly the edit.
    let edited = input.join(months[5].file_name().unwrap());
    let size = std::fs::metadata(&edited).unwrap().len();
    let (customer, delta) = swap_price_digits(&edited);
    assert_eq!(std::fs::metadata(&edited).unwrap().len(), size);
    let (changed, _) = run(&[]);
    assert_eq!(cache_use(&changed), (12, 1));
    assert_eq!(
        monetary_cents(&changed, &customer),
        monetary_cents(&full, &customer) + delta
    );
    let (changed_full, _) = run(&["--no-cache"]);
    assert_same_run(&changed, &changed_full);

    // The set entry alone serves a run over the same files: every file's
    // own entry removed, nothing is read.
    let (entries, sets) = entries_of(&cache_dir);
    for e in &entries {
        std::fs::remove_file(e).unwrap();
    }
    assert!(!sets.is_empty());
    let (from_set, o) = run(&[]);
    assert_eq!(cache_use(&from_set), (13, 0));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_same_run(&from_set, &changed_full);
    // One file changed: the set is not trusted (a member's key changed) and,
    // without the files' own entries, every file is read again; the result
    // changes by exactly the edit.
    let edited = input.join(months[8].file_name().unwrap());
    let (customer, delta) = swap_price_digits(&edited);
    let (after_edit, _) = run(&[]);
    assert_eq!(cache_use(&after_edit), (0, 13));
    assert_eq!(
        monetary_cents(&after_edit, &customer),
        monetary_cents(&changed_full, &customer) + delta
    );
    let (after_edit_full, _) = run(&["--no-cache"]);
    assert_same_run(&after_edit, &after_edit_full);
    // A new file beside them: the set of the 13 serves, one file is read.
    let extra = input.join("zz-extra.csv");
    std::fs::copy(&months[0], &extra).unwrap();
    let (grown, _) = run(&[]);
    assert_eq!(cache_use(&grown), (13, 1));
    let (grown_full, _) = run(&["--no-cache"]);
    assert_same_run(&grown, &grown_full);
}

/// Replaces an entry's payload with bytes that are no state, under a
/// header whose length and checksum match them: the entry passes every
/// check but does not decode (what a faulty or forged writer makes).
fn forge_undecodable(entry: &Path) {
    let bytes = std::fs::read(entry).unwrap();
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[16..16 + len]).unwrap();
    let garbage = b"not an Arrow stream".to_vec();
    header["payload_len"] = garbage.len().into();
    header["payload_xxh3"] = format!("{:032x}", twox_hash::XxHash3_128::oneshot(&garbage)).into();
    let header = serde_json::to_vec(&header).unwrap();
    let mut forged = bytes[..12].to_vec();
    forged.extend_from_slice(&(header.len() as u32).to_le_bytes());
    forged.extend_from_slice(&header);
    forged.extend_from_slice(&garbage);
    std::fs::write(entry, forged).unwrap();
}

#[test]
fn a_set_entry_that_passes_its_checksum_but_does_not_decode_falls_back_to_the_files_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let (months, input) = first_twelve_months(tmp.path());
    let cache = tmp.path().join("cache");
    let mut n = 0;
    let mut run = |extra: &[&str]| -> (PathBuf, Output) {
        n += 1;
        let out = tmp.path().join(format!("out{n}"));
        let mut args = vec!["run", input.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(&["--cache-dir", cache.to_str().unwrap()]);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = ok(rfm(&args));
        (out, o)
    };
    let (first, _) = run(&[]);
    assert_eq!(cache_use(&first), (0, 12));
    let (entries, sets) = entries_of(&cache);
    assert_eq!((entries.len(), sets.len()), (12, 1));

    // The 13th month added; the set of the 12 checks but does not decode,
    // and one of its files has no entry of its own: that file is computed
    // again, the 11 others come from their entries.
    std::fs::copy(&months[12], input.join(months[12].file_name().unwrap())).unwrap();
    forge_undecodable(&sets[0]);
    std::fs::remove_file(&entries[0]).unwrap();
    let (fallback, o) = run(&[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: cache entry")
            && stderr.contains("cannot be decoded")
            && stderr.contains(".set.state")
            && stderr.contains("reading its 12 files from their own entries"),
        "{stderr}"
    );
    let warnings = report(&fallback)["cache"]["warnings"].clone();
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
    assert_eq!(cache_use(&fallback), (11, 2), "{stderr}");
    assert_reference(&fallback, "online_retail");
    let (full, _) = run(&["--no-cache"]);
    assert_same_run(&fallback, &full);

    // A set of the 13 files replaced the one that did not decode, and the
    // file computed again has its entry back.
    let (entries, sets) = entries_of(&cache);
    assert_eq!((entries.len(), sets.len()), (13, 1));
    let (after, o) = run(&[]);
    assert_eq!(cache_use(&after), (13, 0));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_same_run(&after, &full);
}

/// A child process killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A coordinator caching in `cache` and two workers on loopback, ready.
fn cluster(dir: &Path, cache: &Path) -> (Vec<Server>, String) {
    let url = format!("http://127.0.0.1:{}", free_port());
    let listen = url.trim_start_matches("http://").to_string();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let mut servers = vec![Server(
        Command::new(crate::config::bin("rfm-coordinator"))
            .args(["--listen", &listen, "--cache-dir", cache.to_str().unwrap()])
            .env_remove("RFM_CONFIG")
            .stdout(Stdio::null())
            .stderr(log("coordinator.log"))
            .spawn()
            .unwrap(),
    )];
    for i in 0..2 {
        servers.push(Server(
            Command::new(crate::config::bin("rfm-worker"))
                .args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--heartbeat-interval", "200ms"])
                .env_remove("RFM_CONFIG")
                .stdout(Stdio::null())
                .stderr(log(&format!("worker{i}.log")))
                .spawn()
                .unwrap(),
        ));
    }
    let start = Instant::now();
    loop {
        let o = rfm(&["workers", "--coordinator", &url, "--json"]);
        if o.status.success() && String::from_utf8_lossy(&o.stdout).matches("alive").count() >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the test cluster did not start: {}",
            std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (servers, url)
}

#[test]
fn incremental_rfm_submit_on_two_workers_equals_a_full_run_and_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (months, input) = first_twelve_months(tmp.path());
    let cache = tmp.path().join("coordinator-cache");
    let (_servers, url) = cluster(tmp.path(), &cache);
    let mut n = 0;
    let mut submit = |extra: &[&str]| -> (PathBuf, Output) {
        n += 1;
        let out = tmp.path().join(format!("out{n}"));
        let mut args = vec!["submit", input.to_str().unwrap(), "--coordinator", &url];
        // Several tasks a file: a file's state is merged from chunks of both workers.
        args.extend_from_slice(&["--chunk-size", "1MiB", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = ok(rfm(&args));
        (out, o)
    };
    let (first, _) = submit(&["--quiet"]);
    assert_eq!(cache_use(&first), (0, 12));
    std::fs::copy(&months[12], input.join(months[12].file_name().unwrap())).unwrap();
    let (incremental, o) = submit(&[]);
    assert_eq!(cache_use(&incremental), (12, 1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("cache: 12 files from the cache, 1 computed"),
        "{stdout}"
    );
    assert_reference(&incremental, "online_retail");
    let (full, _) = submit(&["--quiet", "--no-cache"]);
    assert!(report(&full).get("cache").is_none());
    assert_same_run(&incremental, &full);
    // The same result as `rfm run` without any cache.
    let local = tmp.path().join("local");
    ok(rfm(&[
        "run",
        input.to_str().unwrap(),
        "--no-cache",
        "--quiet",
        "--out",
        local.to_str().unwrap(),
    ]));
    for f in ["customers.csv", "segments.csv"] {
        assert!(
            std::fs::read(local.join(f)).unwrap() == std::fs::read(incremental.join(f)).unwrap()
        );
    }

    // A damaged entry on the coordinator, and the set entry of the 13 files:
    // warnings on the client, the file recomputed.
    // (A coordinator writes a set entry after answering its job: the next
    // job may have looked before it was there.)
    let (entries, sets) = entries_of(&cache);
    assert_eq!(entries.len(), 13);
    assert!(!sets.is_empty());
    for entry in sets.iter().chain([&entries[0]]) {
        let bytes = std::fs::read(entry).unwrap();
        std::fs::write(entry, &bytes[..bytes.len() - 7]).unwrap();
    }
    let (repaired, o) = submit(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr.matches("warning: cache entry").count(),
        2,
        "{stderr}"
    );
    assert_eq!(cache_use(&repaired), (12, 1));
    assert_reference(&repaired, "online_retail");
    let (after, _) = submit(&["--quiet"]);
    assert_eq!(cache_use(&after), (13, 0));
}

#[test]
fn rfm_cache_lists_prunes_and_clears() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");
    let names = ["a.csv", "b.csv", "odd\u{1b}[31mname.csv"];
    for name in names {
        std::fs::copy(sample, input.join(name)).unwrap();
    }
    let root = tmp.path().join("root");
    let root_s = root.to_str().unwrap();
    ok(rfm(&[
        "run",
        input.to_str().unwrap(),
        "--results-root",
        root_s,
        "--quiet",
    ]));
    let ls = |extra: &[&str]| {
        let mut args = vec!["cache", "ls", "--results-root", root_s];
        args.extend_from_slice(extra);
        String::from_utf8(ok(rfm(&args)).stdout).unwrap()
    };
    let listed = ls(&[]);
    assert!(listed.contains("4 entries"), "{listed}");
    assert!(listed.contains("set of 3 files: "), "{listed}");
    assert!(
        listed.contains("/a.csv") && listed.contains("/b.csv"),
        "{listed}"
    );
    assert!(
        !listed.contains('\u{1b}'),
        "escaped for the terminal: {listed:?}"
    );
    // --cache-dir names the same folder.
    let by_dir = ls(&["--cache-dir", root.join(".cache").to_str().unwrap()]);
    assert!(by_dir.contains("4 entries"), "{by_dir}");

    // A file gone, another changed: both entries and the set pruned, the
    // third file's kept.
    std::fs::remove_file(input.join("a.csv")).unwrap();
    let mut b = std::fs::read(input.join("b.csv")).unwrap();
    b.extend_from_slice(b"\n");
    std::fs::write(input.join("b.csv"), b).unwrap();
    let o = ok(rfm(&["cache", "prune", "--results-root", root_s]));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("removed 3 entries of files gone or changed and 0"),
        "{said}"
    );
    assert!(ls(&[]).contains("1 entries"));
    // The size bound: nothing fits in one byte.
    let o = ok(rfm(&[
        "cache",
        "prune",
        "--results-root",
        root_s,
        "--cache-max-size",
        "1",
    ]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("and 1 beyond 1 bytes"));
    assert!(ls(&[]).contains("0 entries"));

    ok(rfm(&[
        "run",
        input.to_str().unwrap(),
        "--results-root",
        root_s,
        "--quiet",
    ]));
    assert!(ls(&[]).contains("3 entries"), "two files' and their set's");
    let o = ok(rfm(&["cache", "clear", "--results-root", root_s]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("removed 3 entries"));
    assert!(ls(&[]).contains("0 entries"));
}
