//! The Docker deployment (`Dockerfile`, `docker-compose.yml`) checked two
//! ways without a Docker engine: the files are parsed and checked for what the
//! topology relies on (tokens and TLS on every listening service, secrets
//! made first, PostgreSQL over TLS only), and the topology the compose file
//! describes — the secrets made by the secrets service's own `rfm certs`, a
//! PostgreSQL with TLS, a coordinator and four workers configured by the
//! compose file's own commands and environment variables — is started as
//! real processes on loopback, then the real UCI file is submitted and its
//! published run checked in PostgreSQL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{bin, latest_run, latest_segments_csv, Proc, REAL, REFERENCE_SEGMENTS};
use rfm_store::testing;
use serde_yaml::Value;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let s = &compose["services"][name];
    assert!(s.is_mapping(), "docker-compose.yml has no service {name:?}");
    s
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `${NAME:-default}` → `default` and `${NAME}` → `` (compose's interpolation
/// when the variable is not set, as on a fresh checkout without `.env`).
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${...}") + start;
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A service's environment (map form), interpolated.
fn environment(service: &Value) -> Vec<(String, String)> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => String::new(),
                    };
                    (
                        k.as_str().expect("variable name").to_string(),
                        interpolate(&value),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {env:?}"))
}

/// The program a service runs: its entrypoint, else its command's first word.
fn program(service: &Value) -> String {
    let mut words = strings(&service["entrypoint"]);
    words.extend(strings(&service["command"]));
    words.first().cloned().expect("entrypoint or command")
}

/// Environment variables a binary (or an `rfm` subcommand) knows: `RFM_` +
/// each long flag of its `--help` (the configuration convention), and every
/// `[env: NAME]` clap lists.
fn known_env(binary: &str, subcommand: Option<&str>) -> BTreeSet<String> {
    let mut cmd = Command::new(bin(binary));
    cmd.args(subcommand).arg("--help");
    let out = cmd.output().expect("run --help");
    assert!(
        out.status.success(),
        "{binary} {subcommand:?} --help failed"
    );
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut known = BTreeSet::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        if let Some(flag) = word.strip_prefix("--") {
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && name != "help" && name != "version" {
                known.insert(format!("RFM_{}", name.replace('-', "_").to_uppercase()));
            }
        }
    }
    for part in help.split("[env: ").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        known.insert(name);
    }
    known
}

/// What the `rfm` tool service may use: the variables of every subcommand.
fn known_env_of_rfm() -> BTreeSet<String> {
    let out = Command::new(bin("rfm")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.iter().any(|c| c == "submit"), "{help}");
    commands
        .iter()
        .flat_map(|c| known_env("rfm", Some(c)))
        .collect()
}

/// The binaries the workspace builds (`[[bin]]` names of the members).
fn workspace_binaries() -> Vec<String> {
    let root = read("Cargo.toml");
    let members = root
        .split("members = [")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("workspace members");
    let mut bins = Vec::new();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        if member.is_empty() {
            continue;
        }
        let manifest = read(&format!("{member}/Cargo.toml"));
        for section in manifest.split("[[bin]]").skip(1) {
            let name = section
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("bin name")
                .trim_matches('"');
            bins.push(name.to_string());
        }
    }
    bins
}

/// What `rfm certs` writes (docs/SECURITY.md): the secrets services read.
const CERTS_FILES: [&str; 8] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
    "client.token",
    "worker.token",
    "admin.token",
];

/// A service's environment variable, if set.
fn env_opt<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A path under the secrets mount that `rfm certs` writes.
fn assert_secret_file(service: &str, var: &str, path: &str) {
    let file = path
        .strip_prefix("/secrets/")
        .unwrap_or_else(|| panic!("{service}: {var}={path} is not under /secrets"));
    assert!(
        CERTS_FILES.contains(&file),
        "{service}: {var}={path} is not a file rfm certs writes"
    );
}

/// Tokens and TLS by default: the secrets are made first by `rfm certs`;
/// every service that listens beyond loopback or publishes a port has TLS
/// and the tokens of its role from files; no token is an environment value
/// and no variable defaults to empty; every client speaks https and checks
/// the CA; PostgreSQL serves TLS and accepts network connections over TLS
/// only, and every database URL asks for verify-full.
fn secured_by_default(compose: &Value) {
    let text = read("docker-compose.yml");
    assert!(
        !text.contains(":-}"),
        "no variable of docker-compose.yml defaults to empty"
    );

    // The secrets service: rfm certs into the shared folder, only when it
    // holds no CA yet, run once, before everything else.
    let secrets = service(compose, "secrets");
    let script = strings(&secrets["command"]).join("\n");
    let certs = script
        .lines()
        .find(|l| l.contains("rfm certs"))
        .expect("the secrets service runs rfm certs");
    assert!(
        certs.contains("--out /secrets")
            && certs.contains("--hosts coordinator,worker,postgres,localhost"),
        "{certs}"
    );
    assert!(!certs.contains("--force"), "{certs}");
    assert!(
        script.contains("if [ ! -e /secrets/ca.pem ]"),
        "generated only when the folder holds no CA: {script}"
    );
    assert!(secrets["ports"].is_null());
    assert_eq!(secrets["restart"].as_str(), Some("no"));
    let secrets_mount = strings(&secrets["volumes"])
        .into_iter()
        .find(|v| v.ends_with(":/secrets"))
        .expect("the secrets folder, writable, in the secrets service");
    let secrets_source = secrets_mount.trim_end_matches(":/secrets").to_string();

    for (name, s) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if name == "secrets" {
            continue;
        }
        assert_eq!(
            s["depends_on"]["secrets"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} starts after the secrets are made"
        );
        let env = environment(s);
        for (var, value) in &env {
            assert!(
                !(var.ends_with("TOKEN")
                    || (var.ends_with("_PASSWORD") && var.starts_with("RFM_"))),
                "{name}: {var} is a secret given as a value; use {var}_FILE"
            );
            if var.ends_with("_FILE") || var.starts_with("RFM_TLS_") {
                assert_secret_file(name, var, value);
            }
            if var.ends_with("DATABASE_URL") {
                assert!(
                    value.contains("@postgres:5432/")
                        && value.contains("sslmode=verify-full")
                        && value.contains("sslrootcert=/secrets/ca.pem"),
                    "{name}: {var}={value}"
                );
            }
            if var == "RFM_COORDINATOR" {
                assert!(value.starts_with("https://coordinator:"), "{name}: {value}");
                assert_eq!(
                    env_opt(&env, "RFM_TLS_CA"),
                    Some("/secrets/ca.pem"),
                    "{name}"
                );
            }
        }
        let mounts_secrets = strings(&s["volumes"])
            .iter()
            .any(|v| v == &format!("{secrets_source}:/secrets:ro"));
        if env.iter().any(|(_, v)| v.contains("/secrets/")) {
            assert!(mounts_secrets, "{name} mounts the secrets read-only");
        }
        // Who listens beyond loopback or publishes a port has TLS and tokens.
        let listens = env
            .iter()
            .any(|(k, v)| k.ends_with("LISTEN") && !v.starts_with("127.0.0.1:"));
        let exposed = listens || !s["ports"].is_null();
        if name == "postgres" || !exposed {
            continue;
        }
        // The web dashboard reads no data root and registers no worker: it
        // needs TLS and its own token.
        let needed: &[&str] = if program(s) == "rfm-web" {
            &["RFM_TLS_CERT", "RFM_TLS_KEY", "RFM_WEB_TOKEN_FILE"]
        } else {
            &[
                "RFM_TLS_CERT",
                "RFM_TLS_KEY",
                "RFM_WORKER_TOKEN_FILE",
                "RFM_DATA_ROOT",
            ]
        };
        for var in needed {
            assert!(
                env_opt(&env, var).is_some(),
                "{name} listens on the network without {var}"
            );
        }
        if program(s) == "rfm-coordinator" {
            for var in [
                "RFM_TOKEN_FILE",
                "RFM_ADMIN_TOKEN_FILE",
                "RFM_WORKER_TLS_NAME",
            ] {
                assert!(env_opt(&env, var).is_some(), "{name} has no {var}");
            }
        }
    }

    // The tools submit with the client token over TLS.
    let tools = environment(service(compose, "rfm"));
    assert_eq!(
        env_opt(&tools, "RFM_TOKEN_FILE"),
        Some("/secrets/client.token")
    );

    // PostgreSQL: its certificate from the secrets (a copy its own user
    // owns, made by the secrets service), network connections over TLS only.
    let postgres = service(compose, "postgres");
    assert!(postgres["ports"].is_null(), "PostgreSQL is not published");
    let args = strings(&postgres["command"]).join(" ");
    for setting in [
        "ssl=on",
        "ssl_cert_file=/certs/server.pem",
        "ssl_key_file=/certs/server.key",
        "hba_file=/certs/pg_hba.conf",
    ] {
        assert!(args.contains(setting), "postgres: {args}");
    }
    assert!(strings(&postgres["volumes"])
        .iter()
        .any(|v| v == &format!("{secrets_source}/postgres:/certs:ro")));
    for step in [
        "cp /secrets/server.key /secrets/postgres/server.key",
        "chown -R 999:999 /secrets/postgres",
        "chmod 0600 /secrets/postgres/server.key",
    ] {
        assert!(script.contains(step), "the secrets service: {step}");
    }
    let hba = script
        .lines()
        .find(|l| l.contains("pg_hba.conf"))
        .expect("the secrets service writes pg_hba.conf");
    assert!(hba.contains("hostssl all all all scram-sha-256"), "{hba}");
    assert!(
        !hba.contains("\\nhost "),
        "no network access without TLS: {hba}"
    );
}

#[test]
fn the_compose_file_and_the_dockerfile_describe_the_topology() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    assert!(postgres["image"]
        .as_str()
        .unwrap()
        .starts_with("postgres:15"));
    let pg_health = strings(&postgres["healthcheck"]["test"]).join(" ");
    assert!(pg_health.contains("pg_isready"), "{pg_health}");
    let pg_volume = strings(&postgres["volumes"])
        .into_iter()
        .find(|v| v.ends_with(":/var/lib/postgresql/data"))
        .expect("a volume for the database files");
    let volume_name = pg_volume.split(':').next().unwrap();
    assert!(
        compose["volumes"][volume_name].is_null() || compose["volumes"][volume_name].is_mapping(),
        "{volume_name} is a named volume"
    );
    assert!(compose["volumes"]
        .as_mapping()
        .unwrap()
        .contains_key(volume_name));

    let coordinator = service(&compose, "coordinator");
    let worker = service(&compose, "worker");
    assert_eq!(program(coordinator), "rfm-coordinator");
    assert_eq!(program(worker), "rfm-worker");
    assert_eq!(
        coordinator["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        worker["depends_on"]["coordinator"]["condition"].as_str(),
        Some("service_healthy")
    );
    let coordinator_env = environment(coordinator);
    let grpc_port = env_value(&coordinator_env, "RFM_LISTEN")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let ports = strings(&coordinator["ports"])
        .iter()
        .map(|p| interpolate(p))
        .collect::<Vec<_>>();
    let http_port = env_value(&coordinator_env, "RFM_HTTP_LISTEN")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    for port in [&grpc_port, &http_port] {
        assert!(
            ports.iter().any(|p| p.ends_with(&format!(":{port}"))),
            "the coordinator publishes its gRPC and HTTP ports: {ports:?}"
        );
    }
    assert!(
        env_value(&coordinator_env, "RFM_DATABASE_URL").contains("@postgres:5432/"),
        "the coordinator publishes to the postgres service"
    );
    secured_by_default(&compose);

    // Workers scale: no fixed name, no host ports; they find the coordinator
    // by its service name and retry their first connection.
    assert!(worker["container_name"].is_null());
    assert!(worker["ports"].is_null());
    assert_eq!(worker["restart"].as_str(), Some("on-failure"));
    let worker_env = environment(worker);
    assert_eq!(
        env_value(&worker_env, "RFM_COORDINATOR"),
        format!("https://coordinator:{grpc_port}")
    );
    assert!(env_value(&worker_env, "RFM_REGISTER_TIMEOUT").ends_with('s'));
    assert!(
        !worker_env.iter().any(|(k, _)| k == "RFM_ADVERTISE"),
        "workers register the address the coordinator sees"
    );

    // The same data directory at the same path, read-only, everywhere.
    let data_mount = |s: &Value| {
        strings(&s["volumes"])
            .into_iter()
            .map(|v| interpolate(&v))
            .find(|v| v.contains(":/data"))
            .expect("the data directory is mounted")
    };
    let mount = data_mount(coordinator);
    assert!(mount.ends_with(":/data:ro"), "{mount}");
    assert_eq!(data_mount(worker), mount);
    assert_eq!(data_mount(service(&compose, "rfm")), mount);
    for env in [&coordinator_env, &worker_env] {
        assert_eq!(env_value(env, "RFM_DATA_ROOT"), "/data");
    }

    // Healthchecks run a binary of the image, over TLS checked against the CA.
    let binaries = workspace_binaries();
    for name in ["coordinator", "worker"] {
        let test = strings(&service(&compose, name)["healthcheck"]["test"]);
        assert_eq!(
            test.first().map(String::as_str),
            Some("CMD"),
            "{name}: {test:?}"
        );
        assert!(binaries.contains(&test[1]), "{name}: {test:?}");
        assert!(
            test[3].starts_with("https://127.0.0.1:"),
            "{name}: {test:?}"
        );
        let ca = test.iter().position(|a| a == "--tls-ca").expect("--tls-ca");
        assert_eq!(test[ca + 1], "/secrets/ca.pem", "{name}: {test:?}");
    }

    // Tools run on demand only.
    for name in ["rfm", "dashboard"] {
        let s = service(&compose, name);
        assert_eq!(strings(&s["profiles"]), ["tools"], "{name}");
    }
    assert_eq!(program(service(&compose, "rfm")), "rfm");
    assert_eq!(program(service(&compose, "dashboard")), "rfm-dashboard");

    // Every RFM_* variable is one the binary of its service knows.
    let rfm_known = known_env_of_rfm();
    for (name, s) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if name == "postgres" || name == "secrets" {
            continue;
        }
        let program = program(s);
        let known = if program == "rfm" {
            rfm_known.clone()
        } else {
            known_env(&program, None)
        };
        for (var, _) in environment(s) {
            if var.starts_with("RFM_") {
                assert!(
                    known.contains(&var),
                    "service {name}: {program} does not know {var} (it knows {known:?})"
                );
            }
        }
    }

    // The Dockerfile: dependencies built before the sources are copied, every
    // binary installed in a debian:bookworm-slim image, run as non-root.
    let dockerfile = read("Dockerfile");
    let build_stage = dockerfile
        .split(" AS build")
        .nth(1)
        .and_then(|s| s.split("\nFROM ").next())
        .expect("a build stage");
    let deps = build_stage.find("cargo build").expect("a cargo build");
    let sources = build_stage.find("COPY . .").expect("the sources copied");
    assert!(
        deps < sources,
        "dependencies are built (and cached) before the sources arrive"
    );
    assert!(dockerfile.contains("RUNTIME_IMAGE=debian:bookworm-slim"));
    let runtime = dockerfile
        .split(" AS runtime")
        .nth(1)
        .expect("a runtime stage");
    for b in &binaries {
        assert!(
            build_stage.contains(&format!("\"$built/{b}\" ")),
            "the image holds {b}"
        );
    }
    // The image people build is the release build; another profile only
    // when asked for (the end-to-end test's `dev`).
    assert!(
        build_stage.contains("ARG PROFILE=release\n"),
        "the release profile by default"
    );
    assert_eq!(
        build_stage
            .matches("cargo build --profile \"${PROFILE}\"")
            .count(),
        2,
        "both builds (dependencies, then sources) use the chosen profile"
    );
    assert_eq!(binaries.len(), 5, "{binaries:?}");
    let user = runtime
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("a USER");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    assert!(runtime.contains("HEALTHCHECK"));
    // Every variable the compose file interpolates is explained in .env.example.
    let text = read("docker-compose.yml");
    let example = read(".env.example");
    for part in text.split("${").skip(1) {
        let var: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{var}="))),
            ".env.example does not set {var}"
        );
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// Where the compose network's names and mounts point on loopback.
struct Loopback {
    database_url: String,
    coordinator_url: String,
    secrets: PathBuf,
    data_root: PathBuf,
}

impl Loopback {
    /// A compose environment value as it must be on loopback: service names
    /// become the local test servers, fixed listen ports any free port,
    /// mounts the local directories.
    fn translate(&self, var: &str, value: &str) -> String {
        match var {
            "RFM_LISTEN" | "RFM_HTTP_LISTEN" => {
                assert!(value.starts_with("0.0.0.0:"), "{value}");
                "127.0.0.1:0".to_string()
            }
            "RFM_DATABASE_URL" | "DATABASE_URL" => {
                assert!(
                    value.contains("@postgres:5432/") && value.contains("sslmode=verify-full"),
                    "{value}"
                );
                self.database_url.clone()
            }
            "RFM_COORDINATOR" => {
                assert!(value.starts_with("https://coordinator:"), "{value}");
                self.coordinator_url.clone()
            }
            "RFM_DATA_ROOT" => {
                assert_eq!(value, "/data");
                self.data_root.display().to_string()
            }
            _ => self.path(value),
        }
    }

    /// `/secrets/FILE` → the local secrets folder's FILE; other values as they are.
    fn path(&self, value: &str) -> String {
        match value.strip_prefix("/secrets/") {
            Some(file) => self.secrets.join(file).display().to_string(),
            None => value.to_string(),
        }
    }

    /// A healthcheck's arguments with its loopback address pointing at `url`.
    fn health_args(&self, args: &[String], url: &str) -> Vec<String> {
        args.iter()
            .map(|a| {
                if a.starts_with("https://127.0.0.1:") {
                    url.to_string()
                } else {
                    self.path(a)
                }
            })
            .collect()
    }
}

/// Makes the secrets as the secrets service does: its own `rfm certs`
/// command, into `dir` instead of /secrets.
fn make_secrets(compose: &Value, dir: &Path) {
    let script = strings(&service(compose, "secrets")["command"]).join("\n");
    let line = script
        .lines()
        .find(|l| l.contains("rfm certs"))
        .expect("rfm certs in the secrets service");
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.replace("/secrets", &dir.display().to_string()))
        .collect();
    assert_eq!(words[0], "rfm");
    let o = Command::new(bin("rfm")).args(&words[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for file in CERTS_FILES {
        assert!(dir.join(file).is_file(), "rfm certs wrote no {file}");
    }
}

/// A process started like a compose service: its program and arguments, with
/// the service's environment translated to loopback.
fn start_service(service: &Value, loopback: &Loopback, cwd: &Path) -> Proc {
    let mut cmd = Command::new(bin(&program(service)));
    let mut words = strings(&service["entrypoint"]);
    words.extend(strings(&service["command"]));
    cmd.args(&words[1..]).current_dir(cwd);
    for (var, _) in std::env::vars() {
        if var.starts_with("RFM_") || var == "DATABASE_URL" {
            cmd.env_remove(var);
        }
    }
    for (var, value) in environment(service) {
        cmd.env(&var, loopback.translate(&var, &value));
    }
    Proc::spawn(cmd)
}

#[test]
fn the_compose_topology_with_four_workers_publishes_the_uci_run() {
    let compose = compose();
    let pg = testing::tls_server();
    let db = pg.database();
    let cwd = tempfile::tempdir().unwrap();
    let secrets = cwd.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    make_secrets(&compose, &secrets);
    let data_root = Path::new(REAL)
        .parent()
        .unwrap()
        .canonicalize()
        .expect("the real data directory");
    let coordinator_service = service(&compose, "coordinator");
    let mut loopback = Loopback {
        database_url: format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            db.url,
            pg.ca_file().display()
        ),
        coordinator_url: String::new(),
        secrets,
        data_root,
    };
    let coordinator = start_service(coordinator_service, &loopback, cwd.path());
    let url = coordinator
        .coordinator_url()
        .replacen("http://", "https://", 1);
    loopback.coordinator_url = url.clone();
    let worker_service = service(&compose, "worker");
    let _workers: Vec<Proc> = (0..4)
        .map(|_| start_service(worker_service, &loopback, cwd.path()))
        .collect();
    coordinator.wait_for("registered at", 4, Duration::from_secs(30));

    // The coordinator's healthcheck, as compose runs it (https, --tls-ca).
    let health = strings(&coordinator_service["healthcheck"]["test"]);
    let o = Command::new(bin(&health[1]))
        .args(loopback.health_args(&health[2..], &url))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A worker's healthcheck, as compose runs it, against one of the workers.
    let log = coordinator.stderr();
    let worker_address = log
        .lines()
        .find_map(|l| l.split(" registered at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a worker's address in the coordinator's log")
        .to_string();
    let health = strings(&worker_service["healthcheck"]["test"]);
    let o = Command::new(bin(&health[1]))
        .args(loopback.health_args(&health[2..], &format!("https://{worker_address}")))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "SERVING");

    // `docker-compose run --rm rfm workers --json`: four workers.
    let tools = service(&compose, "rfm");
    let rfm = |args: &[&str], without: Option<&str>| {
        let mut cmd = Command::new(bin("rfm"));
        cmd.args(args).current_dir(cwd.path());
        for (var, _) in std::env::vars() {
            if var.starts_with("RFM_") || var == "DATABASE_URL" {
                cmd.env_remove(var);
            }
        }
        for (var, value) in environment(tools) {
            if Some(var.as_str()) != without {
                cmd.env(&var, loopback.translate(&var, &value));
            }
        }
        cmd.output().unwrap()
    };
    let o = rfm(&["workers", "--json"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let workers: serde_json::Value = serde_json::from_slice(&o.stdout).expect("workers --json");
    assert_eq!(workers.as_array().map(Vec::len), Some(4), "{workers}");

    // Without the token, or without the CA, the tools are refused.
    for without in ["RFM_TOKEN_FILE", "RFM_TLS_CA"] {
        let o = rfm(&["workers", "--json"], Some(without));
        assert!(
            !o.status.success() && o.stdout.is_empty(),
            "without {without}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }

    // `docker-compose run --rm rfm submit /data/online_retail.csv`.
    let out = cwd.path().join("out");
    let o = rfm(
        &[
            "submit",
            REAL,
            "--chunk-size",
            "4MiB",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        o.status.success(),
        "rfm submit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("published: run "), "{stdout}");

    let (_, status, customers) = latest_run(&loopback.database_url);
    assert_eq!((status.as_str(), customers), ("published", 4338));
    let reference = std::fs::read_to_string(REFERENCE_SEGMENTS).unwrap();
    assert_eq!(latest_segments_csv(&loopback.database_url), reference);

    // No task needed a retry.
    let log = coordinator.stderr();
    assert!(!log.contains("retry"), "{log}");
    let o = rfm(&["runs", "--json"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
