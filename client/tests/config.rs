//! The layered settings of the real binaries (`rfm`, `rfm-coordinator`,
//! `rfm-worker`): defaults < rfm.toml < RFM_* < flags, errors naming the key
//! and its source, and docs/CONFIG.md listing exactly the settings the
//! binaries have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

use serde_json::Value;

/// A binary of the workspace: `rfm` is this package's; the servers are built
/// next to it by `cargo nextest run --workspace`, else built here once.
pub(crate) fn bin(name: &str) -> PathBuf {
    let rfm = PathBuf::from(env!("CARGO_BIN_EXE_rfm"));
    if name == "rfm" {
        return rfm;
    }
    static BUILD: Once = Once::new();
    let dir = rfm.parent().expect("binary dir").to_path_buf();
    if !["rfm-coordinator", "rfm-worker", "rfm-dashboard", "rfm-web"]
        .iter()
        .all(|b| dir.join(b).exists())
    {
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "rfm-worker",
                    "-p",
                    "rfm-coordinator",
                    "-p",
                    "rfm-dashboard",
                    "-p",
                    "rfm-web",
                ]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().expect("run cargo build").success());
        });
    }
    dir.join(name)
}

/// Runs a binary in `dir` with only `env` among the RFM_* variables.
fn run(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin(name));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("binary runs")
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

fn setting<'a>(v: &'a Value, key: &str) -> (&'a Value, &'a str) {
    let s = &v[key];
    (&s["value"], s["source"].as_str().unwrap_or_default())
}

const FILE: &str = r#"
database_url = "postgresql://rfm:secret@db:5432/rfm"
token = "from-file"

[run]
threads = 3
chunk_size = "1MiB"
delimiter = ";"
decimal_comma = true

[submit]
coordinator = "http://file:50051"

[coordinator]
listen = "127.0.0.1:7001"
worker_timeout = "7s"
max_attempts = 9

[worker]
coordinator = "http://coord-from-file:50051"
threads = 2
"#;

#[test]
fn rfm_config_shows_each_layer_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rfm.toml"), FILE).unwrap();
    let v = json(&run(
        "rfm",
        dir.path(),
        &["config", "--json"],
        &[
            ("RFM_CHUNK_SIZE", "2MiB"),
            ("RFM_COORDINATOR", "http://env:1"),
        ],
    ));
    assert!(v["file"].as_str().unwrap().ends_with("rfm.toml"), "{v}");
    let t = &v["tables"]["run"];
    assert_eq!(setting(t, "threads"), (&Value::from("3"), "file"));
    assert_eq!(setting(t, "chunk_size"), (&Value::from("2MiB"), "env"));
    assert_eq!(t["chunk_size"]["origin"], "RFM_CHUNK_SIZE");
    assert_eq!(setting(t, "decimal_comma"), (&Value::from("true"), "file"));
    assert_eq!(
        setting(t, "max_malformed_share"),
        (&Value::from("0.01"), "default")
    );
    assert_eq!(setting(t, "as_of"), (&Value::Null, "unset"));
    // A shared key at the top level, its password masked.
    assert_eq!(
        setting(t, "database_url"),
        (&Value::from("postgresql://rfm:***@db:5432/rfm"), "file")
    );
    assert!(t["database_url"]["origin"]
        .as_str()
        .unwrap()
        .starts_with("the top level of"));
    // The environment beats the [submit] table; the token is never shown.
    let s = &v["tables"]["submit"];
    assert_eq!(
        setting(s, "coordinator"),
        (&Value::from("http://env:1"), "env")
    );
    assert_eq!(setting(s, "token"), (&Value::from("***"), "file"));

    // The human form names the file and the sources.
    let o = run("rfm", dir.path(), &["config", "run"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(text.contains("configuration file: "), "{text}");
    assert!(text.contains("[run] of "), "{text}");
    assert!(!text.contains("[submit]"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

/// Every secret form, each with a value of its own to look for.
const SECRET_FILE: &str = r#"
[run]
database_url = "postgresql://rfm:userinfo-pw-1@db:5432/rfm?sslmode=verify-full"

[runs]
database_url = "postgresql://rfm@db/rfm?sslmode=require&PassWord=query-pw-2&sslpassword=query-pw-3"

[customers]
database_url = "host=db user=rfm password='kv pw 4' sslpassword=kv-pw-5 dbname=rfm"

[segments]
database_url = "host=db user=rfm PASSWORD = kv-pw-6"
"#;

const SECRET_VALUES: [&str; 10] = [
    "userinfo-pw-1",
    "query-pw-2",
    "query-pw-3",
    "kv pw 4",
    "kv-pw-5",
    "kv-pw-6",
    "client-token-secret-7",
    "worker-token-secret-8",
    "admin-token-secret-9",
    "web-token-secret-10",
];

#[test]
fn rfm_config_masks_every_secret_form_and_shows_secret_file_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rfm.toml"), SECRET_FILE).unwrap();
    let tokens = [
        ("RFM_TOKEN", "client-token-secret-7"),
        ("RFM_WORKER_TOKEN", "worker-token-secret-8"),
        ("RFM_ADMIN_TOKEN", "admin-token-secret-9"),
        // rfm-web's own: the token its browsers present, not the client's.
        ("RFM_WEB_TOKEN", "web-token-secret-10"),
    ];
    let o = run("rfm", dir.path(), &["config", "--json"], &tokens);
    let v = json(&o);
    let text_out = run("rfm", dir.path(), &["config"], &tokens);
    assert!(text_out.status.success());
    for out in [&o, &text_out] {
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in SECRET_VALUES {
            assert!(!shown.contains(secret), "{secret:?} shown:\n{shown}");
        }
        assert!(shown.contains("***"), "{shown}");
    }
    let value = |table: &str, key: &str| v["tables"][table][key]["value"].clone();
    assert_eq!(
        value("run", "database_url"),
        "postgresql://rfm:***@db:5432/rfm?sslmode=verify-full"
    );
    assert_eq!(
        value("runs", "database_url"),
        "postgresql://rfm@db/rfm?sslmode=require&PassWord=***&sslpassword=***"
    );
    assert_eq!(
        value("customers", "database_url"),
        "host=db user=rfm password=*** sslpassword=*** dbname=rfm"
    );
    assert_eq!(
        value("segments", "database_url"),
        "host=db user=rfm PASSWORD = ***"
    );
    // Every token setting any command has (token, worker_token, admin_token,
    // ...) is masked whole.
    let mut tokens_seen = 0;
    for (table, settings) in v["tables"].as_object().unwrap() {
        for (key, s) in settings.as_object().unwrap() {
            if key == "token" || key.ends_with("_token") {
                assert_eq!(s["value"], "***", "{table}.{key}: {s}");
                tokens_seen += 1;
            }
        }
    }
    assert!(tokens_seen >= 5, "{v}");

    // Paths of secret files are not secrets: shown as given.
    let files = [
        ("RFM_TOKEN_FILE", "/run/secrets/client.token"),
        ("RFM_WORKER_TOKEN_FILE", "/run/secrets/worker.token"),
        ("RFM_ADMIN_TOKEN_FILE", "/run/secrets/admin.token"),
        ("RFM_WEB_TOKEN_FILE", "/run/secrets/web.token"),
    ];
    let v = json(&run("rfm", dir.path(), &["config", "--json"], &files));
    let mut files_seen = 0;
    for (table, settings) in v["tables"].as_object().unwrap() {
        for (key, s) in settings.as_object().unwrap() {
            if let Some((_, path)) = files.iter().find(|(var, _)| s["env"] == *var) {
                assert_eq!(s["value"], *path, "{table}.{key}: {s}");
                files_seen += 1;
            }
        }
    }
    assert!(files_seen >= 5, "{v}");
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rfm.toml"), FILE).unwrap();
    let v = json(&run(
        "rfm",
        dir.path(),
        &["run", "in.csv", "--delimiter", "tab", "--print-config"],
        &[("RFM_DELIMITER", "|"), ("RFM_THREADS", "5")],
    ));
    assert_eq!(v["table"], "run");
    let s = &v["settings"];
    assert_eq!(setting(s, "delimiter"), (&Value::from("tab"), "flag"));
    assert_eq!(setting(s, "threads"), (&Value::from("5"), "env"));
    assert_eq!(setting(s, "chunk_size"), (&Value::from("1MiB"), "file"));

    // DATABASE_URL is accepted; RFM_DATABASE_URL wins over it.
    let v = json(&run(
        "rfm",
        dir.path(),
        &["run", "in.csv", "--print-config"],
        &[("DATABASE_URL", "postgresql://a@h1/x")],
    ));
    assert_eq!(v["settings"]["database_url"]["origin"], "DATABASE_URL");
    let v = json(&run(
        "rfm",
        dir.path(),
        &["run", "in.csv", "--print-config"],
        &[
            ("DATABASE_URL", "postgresql://a@h1/x"),
            ("RFM_DATABASE_URL", "postgresql://b@h2/y"),
        ],
    ));
    assert_eq!(
        setting(&v["settings"], "database_url").0,
        "postgresql://b@h2/y"
    );

    // --config names another file; RFM_CONFIG too.
    std::fs::write(dir.path().join("other.toml"), "[run]\nthreads = 11\n").unwrap();
    for (args, env) in [
        (
            vec!["--config", "other.toml", "run", "x", "--print-config"],
            vec![],
        ),
        (
            vec!["run", "x", "--print-config"],
            vec![("RFM_CONFIG", "other.toml")],
        ),
    ] {
        let v = json(&run("rfm", dir.path(), &args, &env));
        assert_eq!(
            setting(&v["settings"], "threads"),
            (&Value::from("11"), "file")
        );
        assert!(v["file"].as_str().unwrap().ends_with("other.toml"));
    }
}

#[test]
fn servers_take_the_same_layers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rfm.toml"), FILE).unwrap();
    let v = json(&run(
        "rfm-coordinator",
        dir.path(),
        &["--max-attempts", "2", "--print-config"],
        &[("RFM_WORKER_TIMEOUT", "3s")],
    ));
    assert_eq!(v["table"], "coordinator");
    let s = &v["settings"];
    assert_eq!(setting(s, "max_attempts"), (&Value::from("2"), "flag"));
    assert_eq!(setting(s, "worker_timeout"), (&Value::from("3s"), "env"));
    assert_eq!(
        setting(s, "listen"),
        (&Value::from("127.0.0.1:7001"), "file")
    );
    assert_eq!(
        setting(s, "no_worker_grace"),
        (&Value::from("30s"), "default")
    );

    let v = json(&run(
        "rfm-worker",
        dir.path(),
        &["--print-config"],
        &[("RFM_HEARTBEAT_INTERVAL", "500ms")],
    ));
    assert_eq!(v["table"], "worker");
    let s = &v["settings"];
    assert_eq!(
        setting(s, "coordinator"),
        (&Value::from("http://coord-from-file:50051"), "file")
    );
    assert_eq!(setting(s, "threads"), (&Value::from("2"), "file"));
    assert_eq!(
        setting(s, "heartbeat_interval"),
        (&Value::from("500ms"), "env")
    );
}

/// Runs and expects a usage failure (exit 2, no panic) whose message holds `fragments`.
fn expect_usage_error(
    name: &str,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    fragments: &[&str],
) {
    let o = run(name, dir, args, env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{name} {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for f in fragments {
        assert!(err.contains(f), "stderr lacks {f:?}: {err}");
    }
}

#[test]
fn bad_settings_name_the_key_and_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    expect_usage_error(
        "rfm",
        d,
        &["run", "x.csv"],
        &[("RFM_THREADS", "many")],
        &["`threads`", "RFM_THREADS", "\"many\""],
    );
    std::fs::write(d.join("typo.toml"), "[run]\nthredas = 3\n").unwrap();
    expect_usage_error(
        "rfm",
        d,
        &["--config", "typo.toml", "run", "x.csv"],
        &[],
        &[
            "unknown setting `thredas`",
            "[run] of ",
            "typo.toml",
            "threads",
        ],
    );
    std::fs::write(d.join("top.toml"), "threads = 3\n").unwrap();
    expect_usage_error(
        "rfm-worker",
        d,
        &["--config", "top.toml"],
        &[],
        &["unknown setting `threads`", "top level", "top.toml"],
    );
    std::fs::write(d.join("table.toml"), "[wroker]\nthreads = 3\n").unwrap();
    expect_usage_error(
        "rfm-worker",
        d,
        &["--config", "table.toml"],
        &[],
        &["`[wroker]`"],
    );
    std::fs::write(
        d.join("value.toml"),
        "[coordinator]\nworker_timeout = \"soon\"\n",
    )
    .unwrap();
    expect_usage_error(
        "rfm-coordinator",
        d,
        &["--config", "value.toml"],
        &[],
        &[
            "`worker_timeout`",
            "[coordinator] of ",
            "value.toml",
            "not a duration",
        ],
    );
    expect_usage_error(
        "rfm-coordinator",
        d,
        &["--finished-job-ttl", "5s"],
        &[],
        &["--finished-job-ttl", "too short", "at least 10s"],
    );
    expect_usage_error(
        "rfm-coordinator",
        d,
        &[],
        &[("RFM_MAX_FINISHED_JOBS", "0")],
        &["max_finished_jobs", "RFM_MAX_FINISHED_JOBS"],
    );
    std::fs::write(d.join("array.toml"), "[run]\nthreads = [1, 2]\n").unwrap();
    expect_usage_error(
        "rfm",
        d,
        &["--config", "array.toml", "run", "x"],
        &[],
        &["`threads`", "single value"],
    );
    std::fs::write(d.join("broken.toml"), "[run\nthreads = 3\n").unwrap();
    expect_usage_error(
        "rfm",
        d,
        &["--config", "broken.toml", "config"],
        &[],
        &["broken.toml"],
    );
    expect_usage_error(
        "rfm",
        d,
        &["--config", "missing.toml", "config"],
        &[],
        &["missing.toml", "no such file"],
    );
    expect_usage_error(
        "rfm",
        d,
        &["run", "x"],
        &[("RFM_QUIET", "sometimes")],
        &["RFM_QUIET", "true or false"],
    );
    expect_usage_error("rfm", d, &["config", "nosuch"], &[], &["nosuch"]);
    // Help and usage show required arguments as required.
    let help = run("rfm", d, &["run", "--help"], &[]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("rfm run [OPTIONS] <INPUT>"));
    // The coordinator has a default (the local one); a job id has none.
    expect_usage_error("rfm", d, &["job"], &[], &["<ID>"]);
}

/// The rows of the settings table of docs/CONFIG.md: (table, key, env, default).
fn documented() -> BTreeSet<(String, String, String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIG.md"))
        .expect("docs/CONFIG.md");
    doc.lines()
        .filter(|l| l.starts_with("| `["))
        .map(|l| {
            let cells: Vec<String> = l
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            (
                cells[1].trim_matches(|c| c == '[' || c == ']').to_string(),
                cells[2].clone(),
                cells[4].clone(),
                cells[5].trim_matches('`').to_string(),
            )
        })
        .collect()
}

const BEGIN: &str = "<!-- settings:begin -->";
const END: &str = "<!-- settings:end -->";

/// The settings table as the binaries describe themselves: one markdown row
/// per setting, and the (table, key, env, default) of each.
fn actual_rows() -> (String, BTreeSet<(String, String, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut tables: Vec<(String, Value)> = Vec::new();
    let v = json(&run("rfm", dir.path(), &["config", "--json"], &[]));
    for (table, settings) in v["tables"].as_object().unwrap() {
        tables.push((table.clone(), settings.clone()));
    }
    // `rfm config` reports the servers' settings exactly as they resolve them.
    for name in ["rfm-coordinator", "rfm-worker", "rfm-dashboard", "rfm-web"] {
        let own = json(&run(name, dir.path(), &["--print-config"], &[]));
        let table = own["table"].as_str().unwrap();
        let listed = tables.iter().find(|(t, _)| t == table);
        assert_eq!(
            listed.map(|(_, s)| s),
            Some(&own["settings"]),
            "`rfm config` shows [{table}] as `{name} --print-config` does"
        );
    }
    let mut rows = String::from(
        "| table | key | flag | environment | default | meaning |\n|---|---|---|---|---|---|\n",
    );
    let mut set = BTreeSet::new();
    for (table, settings) in &tables {
        for (key, s) in settings.as_object().unwrap() {
            let default = match s["source"].as_str() {
                Some("default") => s["value"].as_str().unwrap().to_string(),
                _ => "—".to_string(),
            };
            let env = s["env"].as_str().unwrap().to_string();
            let shown = if default == "—" {
                default.clone()
            } else {
                format!("`{default}`")
            };
            rows.push_str(&format!(
                "| `[{table}]` | `{key}` | `{}` | `{env}` | {shown} | {} |\n",
                s["flag"].as_str().unwrap(),
                s["help"]
                    .as_str()
                    .unwrap()
                    .replace('|', "\\|")
                    .replace('\n', " "),
            ));
            set.insert((table.clone(), key.clone(), env, default));
        }
    }
    (rows, set)
}

#[test]
fn docs_list_exactly_the_settings_of_the_binaries() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIG.md");
    let (rows, actual) = actual_rows();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let doc = std::fs::read_to_string(path).expect("docs/CONFIG.md");
        let (head, rest) = doc.split_once(BEGIN).expect("begin marker");
        let (_, tail) = rest.split_once(END).expect("end marker");
        std::fs::write(path, format!("{head}{BEGIN}\n{rows}{END}{tail}")).unwrap();
    }
    for (table, ..) in &actual {
        assert!(
            rfm_settings::TABLES.contains(&table.as_str()),
            "add [{table}] to rfm_settings::TABLES so rfm.toml may hold it"
        );
    }
    let documented = documented();
    let missing: Vec<_> = actual.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/CONFIG.md is out of date (regenerate its table: UPDATE_DOCS=1 cargo nextest run -p rfm-cli docs_list)\nnot documented: {missing:#?}\ndocumented but not in the code: {stale:#?}"
    );
}
