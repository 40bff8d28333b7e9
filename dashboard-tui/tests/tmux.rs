//! End to end: the real `rfm-dashboard` binary in a tmux pane, driven with
//! keys (switch views, search a customer, open its detail, quit) and checked
//! on the captured screen. Skipped, with a message, when tmux is not installed.
//! The same against runs published to a throwaway PostgreSQL, which goes away
//! and comes back. Also the command line's refusals, which need no terminal.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_rfm-dashboard");

/// A private tmux server for one test, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("rfm-dashboard-test-{name}-{}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.run(&["send-keys", "-t", "0", k]);
            assert!(
                out.status.success(),
                "send-keys {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "0"]).stdout).into_owned()
    }

    /// Waits until the screen contains every needle; returns it.
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {needles:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn dashboard_command(dir: &Path) -> String {
    // The pane stays open after the dashboard quits, showing its exit code on
    // the restored (main) screen.
    format!(
        "clear; NO_COLOR=1 '{BIN}' --results-root '{}'; echo \"exit=$?\"; sleep 60",
        dir.display()
    )
}

#[test]
fn browse_search_detail_quit_in_tmux() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux not found (apt-get install tmux to run this end-to-end test)");
        return;
    }
    let fx = fixture();
    let tmux = Tmux::start("browse", 80, 24, &dashboard_command(&fx.root));

    let screen = tmux.wait_for(&["Champions", "48.7%", "as-of 2011-12-10"]);
    assert!(
        common::line_with(&screen, "Champions ").contains(" 632 "),
        "{screen}"
    );
    assert!(!screen.contains("Segment rules"), "{screen}");

    // Resize: redrawn for the new size (room for bars and rules), and back.
    tmux.run(&["resize-window", "-x", "160", "-y", "48"]);
    tmux.wait_for(&["Customers and revenue per segment", "Segment rules"]);
    tmux.run(&["resize-window", "-x", "80", "-y", "24"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tmux.screen().contains("Segment rules") {
        assert!(
            Instant::now() < deadline,
            "not redrawn at 80x24:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    tmux.keys(&["2"]);
    tmux.wait_for(&["R × F grid: customers per cell", "R 5"]);
    tmux.keys(&["3"]);
    tmux.wait_for(&["Recency", "all customers (4,338)"]);
    tmux.keys(&["5"]);
    tmux.wait_for(&["Runs (2)", "Movement 2011-08 → 2011-12", "left Champions"]);

    tmux.keys(&["/", "1", "2", "3", "4", "7"]);
    let screen = tmux.wait_for(&["/12347", "1 of 4,338"]);
    assert!(
        common::line_with(&screen, "12347 ").contains("Iceland"),
        "{screen}"
    );
    tmux.keys(&["Enter", "Enter"]);
    let screen = tmux.wait_for(&["Customer 12347 · Champions", "R = 5 and F ≥ 4"]);
    assert!(screen.contains("R 5 · F 5 · M 5"), "{screen}");

    tmux.keys(&["Escape"]);
    tmux.wait_for(&["monetary↓"]);
    std::thread::sleep(Duration::from_millis(200));
    tmux.keys(&["q"]);
    // Quit with code 0, back on the main screen: nothing of the dashboard left.
    let screen = tmux.wait_for(&["exit=0"]);
    assert!(
        !screen.contains("Overview") && !screen.contains("Champions"),
        "{screen}"
    );
}

#[test]
fn database_source_survives_a_lost_connection_in_tmux() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux not found (apt-get install tmux to run this end-to-end test)");
        return;
    }
    let (db, _) = common::published(&[common::HALF, common::FULL]);
    // From DATABASE_URL, as a deployment would set it.
    let command = format!(
        "clear; NO_COLOR=1 DATABASE_URL='{}' '{BIN}'; echo \"exit=$?\"; sleep 60",
        db.url
    );
    let tmux = Tmux::start("database", 160, 48, &command);
    let screen = tmux.wait_for(&["Champions", "48.7%", "as-of 2011-12-10"]);
    assert!(
        common::line_with(&screen, "Champions ").contains(" 632 "),
        "{screen}"
    );
    tmux.keys(&["5"]);
    tmux.wait_for(&["Runs (2)", common::FULL, common::HALF, "left Champions"]);

    // The database goes away; opening a run meets it, says so and retries.
    db.cut_off();
    tmux.keys(&["Down", "Enter"]);
    let screen = tmux.wait_for(&["connection lost: retry ", "127.0.0.1"]);
    assert!(screen.contains("Runs (2)"), "the views stay:\n{screen}");

    // Back: the retry opens the older run, the message goes.
    db.reopen();
    let opened = format!("{}: 3,220 customers", common::HALF);
    let screen = tmux.wait_for(&[opened.as_str()]);
    assert!(!screen.contains("connection lost"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for(&["exit=0"]);
}

#[test]
fn unusable_sources_are_refused_clearly() {
    let bin = || {
        let mut c = Command::new(BIN);
        c.env_remove("DATABASE_URL").env_remove("RFM_DATABASE_URL");
        c
    };
    let out = bin()
        .args(["--coordinator", "http://not a host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--coordinator http://not a host: not a valid URL"),
        "{err}"
    );
    // A database nobody listens on: exit 6 at once, naming host and port,
    // never the password; the same from DATABASE_URL.
    let port = rfm_store::testing::unused_port();
    let url = format!("postgresql://rfm:secret@127.0.0.1:{port}/rfm");
    for out in [
        bin().args(["--database-url", &url]).output().unwrap(),
        bin().env("DATABASE_URL", &url).output().unwrap(),
    ] {
        assert_eq!(out.status.code(), Some(6));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("host 127.0.0.1") && err.contains(&format!("port {port}")),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }
    let out = bin()
        .args(["--database-url", "postgresql://h:notaport/d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // No flags: ./rfm-out, as `rfm run` writes it (absent here).
    let out = bin()
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rfm-out") && err.contains("--results-root"),
        "{err}"
    );
    let out = bin()
        .args(["--results", "/nonexistent/rfm-runs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rfm-runs"));
}
