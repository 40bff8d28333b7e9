//! `--data-root` with real processes on loopback: a coordinator and a worker
//! given a root refuse every input outside it — an absolute path, `..`, a
//! glob reaching out, a directory or a link inside the root leading out —
//! with exit 3 from `rfm submit` and the words of a missing file, and no
//! byte of the refused files appears in any output, log or report; a file
//! inside the root gives the reference result. A `RunTask` sent straight to
//! the worker's task service with a path outside its root is refused without
//! telling the file's size or content.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rfm_proto::v1::worker_client::WorkerClient;
use rfm_proto::v1::worker_server::WorkerServer;
use rfm_proto::v1::{RunTaskRequest, TaskRef};
use sha2::{Digest, Sha256};

use super::support::{bin, Proc};

const EXTRACT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/real/online_retail_ii_2009-12_extract.csv"
);
const EXTRACT_REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/reference/online_retail_ii_2009-12_extract"
);

/// The words every refusal uses (a missing file's too).
const REFUSED: &str = "no such input file under the data root";

/// A secret outside the root: a CSV whose data lines carry `marker`, some
/// malformed, over 10 kB (its size in digits is unlikely anywhere else).
fn secret_csv(marker: &str) -> String {
    let mut text = format!(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
         {marker},{marker}\n"
    );
    for i in 0..200 {
        text.push_str(&format!(
            "{marker}-{i},1,x,1,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        ));
    }
    text
}

/// The first line of a system file, when readable.
fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .next()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
}

/// `../` enough times to climb from `dir` to `/`.
fn up_to_top(dir: &Path) -> String {
    "../".repeat(dir.components().count() - 1)
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    marker: String,
}

/// `ROOT/` with the extract, a directory `mixed/` holding a good file and a
/// link out, links out to a file and to a directory; `outside/secret.csv`.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("mixed")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let marker = format!("SECRET-{}-MARKER", std::process::id());
    std::fs::write(outside.join("secret.csv"), secret_csv(&marker)).unwrap();
    std::fs::copy(EXTRACT, root.join("data/extract.csv")).unwrap();
    std::fs::copy(EXTRACT, root.join("mixed/good.csv")).unwrap();
    use std::os::unix::fs::symlink as link;
    link(outside.join("secret.csv"), root.join("mixed/evil.csv")).unwrap();
    link(outside.join("secret.csv"), root.join("link.csv")).unwrap();
    link("/etc/passwd", root.join("passwd.csv")).unwrap();
    link(&outside, root.join("outlink")).unwrap();
    Setup {
        _tmp: tmp,
        root,
        outside,
        marker,
    }
}

/// What must never show: the secret's marker, the first lines of
/// /etc/passwd and /etc/shadow.
fn forbidden(s: &Setup) -> Vec<String> {
    let mut words = vec![s.marker.clone()];
    words.extend(first_line("/etc/passwd"));
    words.extend(first_line("/etc/shadow"));
    words
}

fn assert_clean(what: &str, text: &str, words: &[String]) {
    for w in words {
        assert!(!text.contains(w.as_str()), "{what} quotes {w:?}:\n{text}");
    }
}

/// Every file an `--out` folder holds, as text.
fn out_texts(out: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (
                e.path().display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect()
}

#[test]
fn inputs_outside_the_data_root_are_refused_like_missing_files() {
    let s = setup();
    let root = s.root.display().to_string();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--data-root", &root]);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--data-root", &root]);
    let worker = Proc::spawn(cmd);
    coordinator.wait_for("registered at", 1, Duration::from_secs(30));

    let outs = s.root.parent().unwrap().join("outs");
    let submit = |spec: &str, n: usize| {
        let out = outs.join(format!("o{n}"));
        let o = Command::new(bin("rfm"))
            .current_dir(&s.root)
            .args(["submit", spec, "--coordinator", &url, "--out"])
            .arg(&out)
            .output()
            .expect("rfm submit runs");
        (o, out)
    };

    let up = up_to_top(&s.root);
    // (spec as given, the path the refusal names)
    let abs = |p: &str| std::path::absolute(s.root.join(p)).unwrap();
    let cases: Vec<(String, PathBuf)> = vec![
        ("/etc/shadow".into(), "/etc/shadow".into()),
        (
            format!("{root}/{up}etc/passwd"),
            format!("{root}/{up}etc/passwd").into(),
        ),
        (format!("{up}etc/passwd"), abs(&format!("{up}etc/passwd"))),
        ("../outside/secret.csv".into(), abs("../outside/secret.csv")),
        (
            s.outside.join("secret.csv").display().to_string(),
            s.outside.join("secret.csv"),
        ),
        (
            format!("{root}/../*/secret.csv"),
            format!("{root}/../*/secret.csv").into(),
        ),
        (
            format!("{root}/{up}etc/passw*"),
            format!("{root}/{up}etc/passw*").into(),
        ),
        (
            format!("{root}/outlink/*.csv"),
            format!("{root}/outlink/*.csv").into(),
        ),
        (format!("{root}/mixed"), s.root.join("mixed/evil.csv")),
        (format!("{root}/link.csv"), s.root.join("link.csv")),
        ("passwd.csv".into(), abs("passwd.csv")),
    ];
    let (missing, missing_out) = submit("missing.csv", 0);
    let missing_err = String::from_utf8_lossy(&missing.stderr).into_owned();
    assert_eq!(missing.status.code(), Some(3), "{missing_err}");
    assert!(missing_err.contains(REFUSED), "{missing_err}");
    let missing_path = abs("missing.csv").display().to_string();
    let words = forbidden(&s);
    let mut outs_seen = vec![missing_out];
    for (i, (spec, named)) in cases.iter().enumerate() {
        let (o, out) = submit(spec, i + 1);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(3), "{spec}: {stderr}");
        let named = named.display().to_string();
        assert!(stderr.contains(&named), "{spec}: names {named}: {stderr}");
        // The words of a missing file, but for the path and the run id.
        let normal = |text: &str, path: &str| {
            text.replace(path, "<PATH>")
                .split_whitespace()
                .filter(|w| !w.contains("run"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            normal(&stderr, &named),
            normal(&missing_err, &missing_path),
            "{spec}: not the words of a missing file"
        );
        assert_clean(&format!("{spec}: stderr"), &stderr, &words);
        assert_clean(&format!("{spec}: stdout"), &stdout, &words);
        outs_seen.push(out);
    }
    for out in &outs_seen {
        let texts = out_texts(out);
        assert!(
            texts.iter().any(|(p, _)| p.ends_with("run.json")),
            "{}: no run.json",
            out.display()
        );
        for (path, text) in texts {
            assert_clean(&path, &text, &words);
        }
    }

    // A file inside the root still gives the reference result, by a path
    // relative to the root too.
    let (o, out) = submit("data/extract.csv", 100);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_extract_reference(&out);

    assert_clean("the coordinator's log", &coordinator.stderr(), &words);
    assert_clean("the worker's log", &worker.stderr(), &words);
}

fn assert_extract_reference(out: &Path) {
    let segments = std::fs::read(out.join("segments.csv")).unwrap();
    let want = std::fs::read(format!("{EXTRACT_REFERENCE}.segments.csv")).unwrap();
    assert!(segments == want, "segments.csv differs from the reference");
    let customers = std::fs::read(out.join("customers.csv")).unwrap();
    let want = std::fs::read_to_string(format!("{EXTRACT_REFERENCE}.customers.sha256")).unwrap();
    assert_eq!(
        format!("{:x}", Sha256::digest(customers)),
        want.split_whitespace().next().unwrap(),
        "customers.csv differs from the reference"
    );
}

#[test]
fn a_task_naming_a_file_outside_the_workers_root_is_refused() {
    let s = setup();
    let secret = s.outside.join("secret.csv");
    let size = std::fs::metadata(&secret).unwrap().len();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
        );
        let root = rfm_core::DataRoot::new(&s.root).unwrap();
        let service =
            rfm_worker::TaskService::new(Arc::default(), Some(pool), "test-worker".into())
                .with_data_root(Some(Arc::new(root)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(WorkerServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let mut client = WorkerClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the task service");

        let opts = rfm_core::RunOptions::default();
        let planned = rfm_core::engine::open_inputs(secret.to_str().unwrap(), &opts.parse)
            .expect("the secret is a CSV");
        let request = |path: &Path, len: u64, n: u32| {
            let mut file = planned[0].clone();
            file.path = path.to_path_buf();
            file.layout.len = len;
            RunTaskRequest {
                task: Some(TaskRef {
                    job_id: "data-root".into(),
                    task_id: n,
                    attempt: 1,
                }),
                input: Some(rfm_proto::input::to_proto(&file)),
                file_index: 0,
                start: file.layout.data_start,
                end: len,
                options: Some(rfm_proto::options::to_proto(&opts)),
                fold: Vec::new(),
            }
        };
        let words = forbidden(&s);
        // As planned, with a size that does not match (an answer telling the
        // real size would be an oracle), through `..` and through a link.
        let through_dot_dot = s.root.join("../outside/secret.csv");
        let via_link = s.root.join("link.csv");
        let missing = s.root.join("missing.csv");
        let mut messages = Vec::new();
        for (n, (path, len)) in [
            (&secret, size),
            (&secret, size + 1000),
            (&through_dot_dot, size),
            (&via_link, size + 1000),
            (&missing, size),
        ]
        .into_iter()
        .enumerate()
        {
            let call = tokio::time::timeout(
                Duration::from_secs(30),
                client.run_task(request(path, len, n as u32)),
            )
            .await
            .expect("the worker answers");
            let status = call.expect_err("refused");
            assert_eq!(
                status.code(),
                tonic::Code::FailedPrecondition,
                "{}: {status:?}",
                path.display()
            );
            let message = status.message().to_string();
            assert!(message.contains(REFUSED), "{message}");
            assert!(
                !message.contains(&size.to_string()),
                "tells the size: {message}"
            );
            assert_clean("RunTask's message", &message, &words);
            messages.push(message.replace(&path.display().to_string(), "<PATH>"));
        }
        assert!(
            messages.windows(2).all(|w| w[0] == w[1]),
            "outside and missing differ: {messages:?}"
        );
        server.abort();
    });
}

#[test]
fn a_data_root_that_is_not_a_directory_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for root in [tmp.path().join("none"), file] {
        let root = root.display().to_string();
        let coordinator = Command::new(bin("rfm-coordinator"))
            .args(["--listen", "127.0.0.1:0", "--data-root", &root])
            .output()
            .unwrap();
        let worker = Command::new(bin("rfm-worker"))
            .args([
                "--coordinator",
                "http://127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--register-timeout", "1s", "--data-root", &root])
            .output()
            .unwrap();
        for (name, o) in [("rfm-coordinator", coordinator), ("rfm-worker", worker)] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains("--data-root") && err.contains(&root),
                "{name}: {err}"
            );
        }
    }
}
