//! Every fenced command in README.md and docs/*.md runs as written, against
//! a temporary cluster (an `rfm-coordinator` and one `rfm-worker` on
//! loopback) and a throwaway PostgreSQL, and succeeds.
//!
//! The convention, for whoever writes docs:
//!
//! - Blocks fenced ` ```sh `, ` ```bash ` or ` ```console ` are commands: every
//!   line of a sh/bash block (a line ending in `\` goes on), the lines that
//!   start with `$ ` of a console block. Anything purely illustrative (output,
//!   a synopsis with `FILE|DIR` placeholders) goes in a ` ```text ` block.
//! - A block that cannot run in a test is marked by the line just before its
//!   fence: `<!-- no-run: REASON -->` (Docker, an interactive program, a
//!   long-running server, a file rfm does not ship, a build of the whole
//!   workspace). The reason is required.
//! - Files are read in order, README.md first and then docs/*.md by name;
//!   each block runs as one `bash -e` script in one scratch folder shared by
//!   all (it holds `data/`, a link to the repository's `data/`, so
//!   `rfm run data/sample.csv` then `rfm segments` works as in the README).
//! - Placeholders filled before a block runs: the coordinator URLs
//!   `http://127.0.0.1:50051`, `http://localhost:50051` and
//!   `http://coord:50051` become the test coordinator's; the database URLs
//!   `postgresql://rfm@localhost/rfm` and `postgres://user@host/db` the
//!   throwaway database's; the example run id `20111210T101500Z-3fa9` the
//!   id of the job `rfm submit` ran into `rfm-out/cluster`; `cargo run
//!   --release -p rfm-cli --` the `rfm` the test built. `RFM_COORDINATOR` is
//!   set to the test coordinator for every command, and the built binaries
//!   come first on `PATH`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A fenced block to run.
#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    commands: Vec<String>,
}

/// The runnable blocks of a Markdown text, with the line each starts on.
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let Some(lang) = fence.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = lang.trim().to_string();
        let skipped = i > 0 && lines[i - 1].trim_start().starts_with("<!-- no-run:");
        if skipped {
            let reason = lines[i - 1]
                .trim()
                .trim_start_matches("<!-- no-run:")
                .trim_end_matches("-->")
                .trim();
            assert!(
                !reason.is_empty(),
                "{file}:{i}: a no-run marker needs a reason"
            );
        }
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].trim_start().starts_with("```") {
            end += 1;
        }
        if !skipped && matches!(lang.as_str(), "sh" | "bash" | "console") {
            let mut commands = Vec::new();
            let mut pending = String::new();
            for l in &lines[start..end] {
                let l = if lang == "console" {
                    match l.trim_start().strip_prefix("$ ") {
                        Some(c) => c,
                        None if !pending.is_empty() => l,
                        None => continue,
                    }
                } else {
                    l
                };
                if pending.is_empty() && (l.trim().is_empty() || l.trim_start().starts_with('#')) {
                    continue;
                }
                match l.strip_suffix('\\') {
                    Some(head) => {
                        pending.push_str(head);
                        pending.push(' ');
                    }
                    None => {
                        pending.push_str(l);
                        commands.push(std::mem::take(&mut pending));
                    }
                }
            }
            out.push(Block {
                file: file.to_string(),
                line: start,
                commands,
            });
        }
        i = end + 1;
    }
    out
}

/// README.md, then docs/*.md by name.
fn documents() -> Vec<(String, String)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(Path::new(REPO).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    names.sort();
    let mut out = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap(),
    )];
    for p in names {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        out.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    out
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

/// A coordinator and one worker on loopback, ready (the worker registered).
fn cluster(dir: &Path) -> (Vec<Server>, String) {
    let url = format!("http://127.0.0.1:{}", free_port());
    let listen = url.trim_start_matches("http://").to_string();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let coordinator = Server(
        Command::new(crate::config::bin("rfm-coordinator"))
            .args(["--listen", &listen])
            .env_remove("RFM_CONFIG")
            .stdout(Stdio::null())
            .stderr(log("coordinator.log"))
            .spawn()
            .unwrap(),
    );
    let worker = Server(
        Command::new(crate::config::bin("rfm-worker"))
            .args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
            .args(["--threads", "1", "--heartbeat-interval", "200ms"])
            .stdout(Stdio::null())
            .stderr(log("worker.log"))
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        let o = Command::new(crate::config::bin("rfm"))
            .args(["workers", "--coordinator", &url, "--json"])
            .output()
            .unwrap();
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("alive") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the test cluster did not start: {}",
            std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (vec![worker, coordinator], url)
}

/// The block's commands with the placeholders filled.
fn filled(command: &str, url: &str, database: &str, scratch: &Path) -> String {
    let mut c = command.replace("cargo run --release -p rfm-cli --", "rfm");
    for example in [
        "http://127.0.0.1:50051",
        "http://localhost:50051",
        "http://coord:50051",
    ] {
        c = c.replace(example, url);
    }
    for example in ["postgresql://rfm@localhost/rfm", "postgres://user@host/db"] {
        c = c.replace(example, database);
    }
    if c.contains("20111210T101500Z-3fa9") {
        let report = scratch.join("rfm-out/cluster/run.json");
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("{}: {e} (no rfm submit ran before)", report.display()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        c = c.replace("20111210T101500Z-3fa9", v["run_id"].as_str().unwrap());
    }
    c
}

#[test]
fn every_documented_command_runs_as_written() {
    let docs = documents();
    let all: Vec<Block> = docs.iter().flat_map(|(f, t)| blocks(f, t)).collect();
    // The README's opening commands are among them.
    assert!(
        all.iter()
            .any(|b| b.file == "README.md"
                && b.commands.iter().any(|c| c.starts_with("rfm customer "))),
        "{all:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("work");
    std::fs::create_dir(&scratch).unwrap();
    std::os::unix::fs::symlink(Path::new(REPO).join("data"), scratch.join("data")).unwrap();
    let db = rfm_store::testing::database();
    let (_servers, url) = cluster(dir.path());
    let bins = crate::config::bin("rfm").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for block in &all {
        if block.commands.is_empty() {
            continue;
        }
        let script: Vec<String> = block
            .commands
            .iter()
            .map(|c| filled(c, &url, &db.url, &scratch))
            .collect();
        let mut cmd = Command::new("bash");
        cmd.arg("-e")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(script.join("\n"))
            .current_dir(&scratch)
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("RFM_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        cmd.env("PATH", &path).env("RFM_COORDINATOR", &url);
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{}:{}: exit {:?}\n{}\nstdout:\n{}\nstderr:\n{}",
            block.file,
            block.line,
            o.status.code(),
            script.join("\n"),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("panicked"),
            "{}:{}: {err}",
            block.file,
            block.line
        );
        ran += block.commands.len();
    }
    assert!(ran >= 20, "only {ran} commands ran");
}

#[test]
fn the_block_reader_follows_the_convention() {
    let text = "x\n```sh\nrfm a \\\n  --b\n# comment\n\nrfm c\n```\n<!-- no-run: needs Docker -->\n```sh\ndocker x\n```\n```text\nrfm d\n```\n```console\n$ rfm e\noutput\n```\n";
    let b = blocks("t.md", text);
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b[0].commands, ["rfm a    --b", "rfm c"]);
    assert_eq!(b[0].line, 2);
    assert_eq!(b[1].commands, ["rfm e"]);
}
