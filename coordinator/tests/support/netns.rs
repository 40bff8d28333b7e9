//! Network namespaces for the fault tests: `ip netns` namespaces made by the
//! test, joined by veth pairs whose both ends live in those namespaces
//! (10.200.N.1 and 10.200.N.2; nothing is added to the host's own network),
//! iptables rules inside them for packet loss and partitions, commands run
//! inside them, and threads moved into them (for the test's TCP proxies).
//!
//! Needs root, `ip` (iproute2) and `iptables`; [`usable`] says why a
//! machine cannot run these tests, and fails instead of skipping when
//! `RFM_REQUIRE_NETNS=1` (as `.ci/run` sets it).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// Every namespace of these tests is named `rfmt<pid>-<n><tag>`.
const PREFIX: &str = "rfmt";

/// A network namespace deleted on drop (kill the processes inside first).
pub struct Netns {
    pub name: String,
}

/// One end of a veth pair: its interface (in its namespace) and address.
#[derive(Clone, Debug)]
pub struct End {
    pub iface: String,
    pub ip: Ipv4Addr,
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                == Some("0")
        })
        .unwrap_or(false)
}

/// Why namespaces cannot be used here, or `None` when they can: root, `ip`,
/// `iptables`, and a probe namespace with a rule in it.
fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces and iptables need root".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("iptables", "iptables")] {
        if run(&[tool, "-V"]).is_err() {
            return Some(format!("no `{tool}` (apt-get install {package})"));
        }
    }
    let probe = match Netns::create("probe") {
        Ok(ns) => ns,
        Err(e) => return Some(format!("cannot create a network namespace: {e}")),
    };
    probe
        .iptables_checked(&["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        .err()
        .map(|e| format!("iptables does not work inside a namespace: {e}"))
}

/// True when the fault tests can run; otherwise prints why `test` is skipped
/// (or panics with it when `RFM_REQUIRE_NETNS=1`).
pub fn usable(test: &str) -> bool {
    let Some(why) = unavailable() else {
        return true;
    };
    if std::env::var("RFM_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("{test}: network namespaces are required (RFM_REQUIRE_NETNS=1) but {why}");
    }
    eprintln!("skipped {test}: {why}");
    false
}

/// Whether process `pid` runs (a zombie does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|state| !state.trim_start().starts_with('Z'))
    })
}

/// Deletes namespaces left by test processes that no longer run (killed
/// before their drops ran).
fn remove_stale() {
    let Ok(list) = run(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !pid.is_empty() && !running(pid) {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

extern "C" {
    // glibc's setns(2); std has no wrapper and the crate needs no libc for one call.
    fn setns(fd: std::os::raw::c_int, nstype: std::os::raw::c_int) -> std::os::raw::c_int;
}
const CLONE_NEWNET: std::os::raw::c_int = 0x4000_0000;

impl Netns {
    /// A new namespace with its loopback up.
    pub fn create(tag: &str) -> Result<Netns, String> {
        static CLEAN: Once = Once::new();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        CLEAN.call_once(remove_stale);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}{tag}", std::process::id());
        run(&["ip", "netns", "add", &name])?;
        let ns = Netns { name };
        run(&["ip", "-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair between `self` (10.200.`subnet`.1) and `other`
    /// (10.200.`subnet`.2), both ends up.
    pub fn link(&self, other: &Netns, subnet: u8) -> (End, End) {
        let a = End {
            iface: format!("veth{subnet}a"),
            ip: Ipv4Addr::new(10, 200, subnet, 1),
        };
        let b = End {
            iface: format!("veth{subnet}b"),
            ip: Ipv4Addr::new(10, 200, subnet, 2),
        };
        must(&[
            "ip",
            "link",
            "add",
            &a.iface,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            &b.iface,
            "netns",
            &other.name,
        ]);
        for (ns, end) in [(self, &a), (other, &b)] {
            must(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{}/24", end.ip),
                "dev",
                &end.iface,
            ]);
            must(&["ip", "-n", &ns.name, "link", "set", &end.iface, "up"]);
        }
        (a, b)
    }

    /// `program` to be run inside this namespace (`ip netns exec`, which
    /// execs it: the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    fn iptables_checked(&self, rule: &[&str]) -> Result<String, String> {
        let mut args = vec!["ip", "netns", "exec", &self.name, "iptables", "-w"];
        args.extend_from_slice(rule);
        run(&args)
    }

    /// The namespace's file, for [`enter_on_this_thread`].
    pub fn file(&self) -> std::fs::File {
        let path = format!("/var/run/netns/{}", self.name);
        std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Adds an iptables rule in this namespace (e.g. `-A INPUT -j DROP`).
    pub fn iptables(&self, rule: &[&str]) {
        self.iptables_checked(rule)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Drops each packet arriving on `iface` with `probability`.
    pub fn lose(&self, iface: &str, probability: f64) {
        self.iptables(&[
            "-A",
            "INPUT",
            "-i",
            iface,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability.to_string(),
            "-j",
            "DROP",
        ]);
    }

    /// Drops every packet arriving on `iface`, silently (a partition).
    pub fn drop_all(&self, iface: &str) {
        self.iptables(&["-A", "INPUT", "-i", iface, "-j", "DROP"]);
    }

    /// Removes every rule added here.
    pub fn flush(&self) {
        self.iptables(&["-F", "INPUT"]);
    }

    /// Packets dropped so far by the DROP rules of the INPUT chain.
    pub fn dropped_packets(&self) -> u64 {
        let listing = self
            .iptables_checked(&["-L", "INPUT", "-n", "-v", "-x"])
            .unwrap_or_else(|e| panic!("{e}"));
        listing
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some("DROP"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

/// The network namespace the calling thread is in (to come back to it).
pub fn of_this_thread() -> std::fs::File {
    std::fs::File::open("/proc/thread-self/ns/net").expect("/proc/thread-self/ns/net")
}

/// Moves the calling thread into the network namespace `ns` (a file of
/// /var/run/netns or /proc/…/ns/net): the sockets it opens from then on live
/// there (the rest of the process stays where it was).
pub fn enter_on_this_thread(ns: &std::fs::File) {
    // SAFETY: setns only reads the descriptor, which stays open for the call.
    let rc = unsafe { setns(ns.as_raw_fd(), CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
