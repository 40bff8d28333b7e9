//! `rfm submit --upload` with real processes on loopback: a file outside the
//! coordinator's data root (the real UCI file, as CSV and gzipped) is
//! streamed into `uploads/` and gives the reference result on two workers,
//! the same content is stored once; an upload over `--max-upload-size`
//! (declared or actually sent), without the token, to a coordinator without
//! a data root, cut mid-way, short or not matching its digest is refused and
//! leaves no file, not even a temporary one, in `uploads/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rfm_proto::auth::Token;
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::upload_chunk::Part;
use rfm_proto::v1::{UploadChunk, UploadInputResponse, UploadStart};
use rfm_proto::PROTOCOL_VERSION;
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::cluster::{cluster, serial};
use crate::support::reference::assert_uci_reference;
use crate::support::{bin, Proc, REAL};

const TOKEN: &str = "upload-client-token-0123456789";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names in `ROOT/uploads` (none when it does not exist).
fn uploads(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("uploads")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `ROOT/uploads` holds exactly `want`.
fn wait_uploads(root: &Path, want: &[String]) {
    let start = Instant::now();
    while uploads(root) != want {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "uploads/ holds {:?}, not {want:?}",
            uploads(root)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A standalone coordinator (no worker) with `args`.
fn coordinator(args: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"]).args(args);
    let proc = Proc::spawn(cmd);
    let url = proc.coordinator_url();
    (proc, url)
}

/// `rfm submit --upload FILE` to `url`; its exit code and stderr.
fn submit_upload(
    url: &str,
    file: &Path,
    out: &Path,
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin("rfm"));
    cmd.args(["submit", "--upload"])
        .arg(file)
        .args(["--coordinator", url, "--out"])
        .arg(out)
        .env_remove("RFM_TOKEN")
        .envs(env.iter().copied());
    let mut p = Proc::spawn(cmd);
    let status = p.wait_exit(Duration::from_secs(180));
    (status.code(), p.stderr())
}

/// A data root and, beside it (not under it), a folder for the client's files.
fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let client = tmp.path().join("laptop");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&client).unwrap();
    (tmp, root, client)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(url: &str) -> CoordinatorClient<tonic::transport::Channel> {
    CoordinatorClient::connect(url.to_string())
        .await
        .expect("connect to the coordinator")
}

fn start(name: &str, size: u64, sha256: &str) -> UploadChunk {
    UploadChunk {
        part: Some(Part::Start(UploadStart {
            protocol_version: PROTOCOL_VERSION,
            file_name: name.into(),
            size,
            sha256: sha256.into(),
        })),
    }
}

fn data(bytes: &[u8]) -> UploadChunk {
    UploadChunk {
        part: Some(Part::Data(bytes.to_vec())),
    }
}

/// A whole upload of `messages` over a raw gRPC client, with `token`.
async fn raw_upload(
    url: &str,
    token: Option<&str>,
    messages: Vec<UploadChunk>,
) -> Result<UploadInputResponse, tonic::Status> {
    let request = Token::new(token.map(str::to_string)).request(tokio_stream::iter(messages));
    client(url)
        .await
        .upload_input(request)
        .await
        .map(|r| r.into_inner())
}

#[test]
fn an_uploaded_file_gives_the_reference_result_and_is_stored_once() {
    let _serial = serial();
    let (_tmp, root, laptop) = layout();
    let root_arg = root.display().to_string();
    let c = cluster(&["--data-root", &root_arg], 2, 0);
    let real = std::fs::read(REAL).unwrap();
    let sha = sha256_hex(&real);

    // The real file, where it lies (outside the root).
    let out = laptop.join("out");
    let mut submit = c.submit_with(Path::new(REAL), &out, "1MiB", &["--upload"]);
    let status = submit.wait_exit(Duration::from_secs(180));
    assert!(status.success(), "{}", submit.stderr());
    assert_uci_reference(&out);
    let stored = format!("{sha}.csv");
    assert_eq!(uploads(&root), vec![stored.clone()]);
    assert_eq!(
        std::fs::read(root.join("uploads").join(&stored)).unwrap(),
        real
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let given = std::path::absolute(REAL).unwrap().display().to_string();
    assert_eq!(report["upload"]["file"], given.as_str(), "{report}");
    assert_eq!(report["upload"]["sha256"], sha.as_str());
    assert_eq!(report["upload"]["bytes"], real.len() as u64);
    let input = report["input"][0].as_str().unwrap();
    assert!(input.ends_with(&format!("uploads/{stored}")), "{input}");
    let log = c.coordinator.stderr();
    assert!(
        log.contains(&format!("stored as uploads/{stored}")),
        "{log}"
    );
    let status = c.job_status().expect("the job's status");
    assert!(status.tasks_total > 1, "{status:?}");

    // The same file again: stored once, the same result.
    let again = laptop.join("again");
    let mut submit = c.submit_with(Path::new(REAL), &again, "1MiB", &["--upload"]);
    assert!(
        submit.wait_exit(Duration::from_secs(180)).success(),
        "{}",
        submit.stderr()
    );
    assert!(
        submit.stderr().contains("already on the coordinator"),
        "{}",
        submit.stderr()
    );
    assert_uci_reference(&again);
    assert_eq!(uploads(&root), vec![stored.clone()]);

    // Gzipped, with its extension kept: the same result.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &real).unwrap();
    let gz = gz.finish().unwrap();
    let gz_file = laptop.join("Online Retail.CSV.GZ");
    std::fs::write(&gz_file, &gz).unwrap();
    let out_gz = laptop.join("out-gz");
    let mut submit = c.submit_with(&gz_file, &out_gz, "1MiB", &["--upload"]);
    assert!(
        submit.wait_exit(Duration::from_secs(180)).success(),
        "{}",
        submit.stderr()
    );
    assert_uci_reference(&out_gz);
    let stored_gz = format!("{}.csv.gz", sha256_hex(&gz));
    let mut want = vec![stored, stored_gz];
    want.sort();
    assert_eq!(uploads(&root), want);
}

#[test]
fn an_upload_over_the_limit_is_refused_and_leaves_nothing() {
    let (_tmp, root, laptop) = layout();
    let root_arg = root.display().to_string();
    let (coordinator, url) = coordinator(&["--data-root", &root_arg, "--max-upload-size", "1MiB"]);

    // Declared larger than the limit: refused before a byte is stored (exit 3).
    let (code, stderr) = submit_upload(&url, Path::new(REAL), &laptop.join("out"), &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("--max-upload-size"), "{stderr}");
    assert!(stderr.contains("online_retail.csv"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(uploads(&root), Vec::<String>::new());

    // Declared small, but more bytes sent: refused on the bytes, nothing left.
    let big = vec![b'x'; 3 << 20];
    let runtime = runtime();
    let err = runtime
        .block_on(raw_upload(
            &url,
            None,
            vec![
                start("lie.csv", 1000, &sha256_hex(&big[..1000])),
                data(&big[..512 << 10]),
                data(&big[512 << 10..1 << 20]),
            ],
        ))
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("more than"), "{err:?}");
    wait_uploads(&root, &[]);
    drop(coordinator);
}

#[test]
fn an_upload_without_the_token_is_refused_and_writes_nothing() {
    let (_tmp, root, laptop) = layout();
    let root_arg = root.display().to_string();
    let (_coordinator, url) = coordinator(&["--data-root", &root_arg, "--token", TOKEN]);
    let file = laptop.join("small.csv");
    let content = b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,2011-01-01,1.0,7\n";
    std::fs::write(&file, content).unwrap();

    for env in [vec![], vec![("RFM_TOKEN", "a-wrong-token-0123456789abc")]] {
        let (code, stderr) = submit_upload(&url, &file, &laptop.join("out"), &env);
        assert_eq!(code, Some(5), "{stderr}");
        assert!(stderr.contains("refused the credential"), "{stderr}");
        assert!(stderr.contains("small.csv"), "{stderr}");
        assert_eq!(uploads(&root), Vec::<String>::new());
    }

    // With the token, a raw client's upload lands under its digest.
    let sha = sha256_hex(content);
    let runtime = runtime();
    let answer = runtime
        .block_on(raw_upload(
            &url,
            Some(TOKEN),
            vec![
                start("small.csv", content.len() as u64, &sha),
                data(content),
            ],
        ))
        .unwrap();
    assert_eq!(answer.input, format!("uploads/{sha}.csv"));
    assert!(!answer.reused);
    assert_eq!(
        std::fs::read(root.join(&answer.input)).unwrap(),
        content.to_vec()
    );
    let err = runtime
        .block_on(raw_upload(
            &url,
            None,
            vec![
                start("small.csv", content.len() as u64, &sha),
                data(content),
            ],
        ))
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
}

#[test]
fn a_coordinator_without_a_data_root_takes_no_upload() {
    let (_tmp, _root, laptop) = layout();
    let (_coordinator, url) = coordinator(&[]);
    let file = laptop.join("small.csv");
    std::fs::write(
        &file,
        "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n",
    )
    .unwrap();
    let (code, stderr) = submit_upload(&url, &file, &laptop.join("out"), &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("--data-root"), "{stderr}");
    assert!(stderr.contains("small.csv"), "{stderr}");
    // The failed run is recorded, naming the file.
    let report = std::fs::read_to_string(laptop.join("out/run.json")).unwrap();
    assert!(report.contains("--data-root"), "{report}");
    assert!(!laptop.join("out/customers.csv").exists());

    // A folder is not uploaded (usage error, nothing written).
    let (code, stderr) = submit_upload(&url, &laptop, &laptop.join("out-dir"), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("folder"), "{stderr}");
}

#[test]
fn an_upload_cut_short_or_not_matching_leaves_no_file() {
    let (_tmp, root, _laptop) = layout();
    let root_arg = root.display().to_string();
    let (coordinator, url) = coordinator(&["--data-root", &root_arg]);
    let content: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
    let sha = sha256_hex(&content);
    let chunk = 256 << 10;
    let runtime = runtime();

    // Cut: a few chunks, then the call and its connection are dropped.
    runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let mut raw = client(&url).await;
        let call = tokio::spawn(async move { raw.upload_input(ReceiverStream::new(rx)).await });
        tx.send(start("cut.csv", content.len() as u64, &sha))
            .await
            .unwrap();
        for part in content.chunks(chunk).take(3) {
            tx.send(data(part)).await.unwrap();
        }
        // Receiving: its temporary file holds the chunks sent.
        let begun = Instant::now();
        loop {
            let names = uploads(&root);
            let part = names.iter().find(|n| n.ends_with(".part"));
            let len = part
                .and_then(|p| std::fs::metadata(root.join("uploads").join(p)).ok())
                .map_or(0, |m| m.len());
            if len >= 3 * chunk as u64 {
                break;
            }
            assert!(begun.elapsed() < Duration::from_secs(20), "{names:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        call.abort();
        let _ = call.await;
        // The sender is still held: the stream was cut, not ended.
        drop(tx);
    });
    wait_uploads(&root, &[]);

    // Ended early: refused, nothing left.
    let err = runtime
        .block_on(raw_upload(
            &url,
            None,
            vec![
                start("short.csv", content.len() as u64, &sha),
                data(&content[..chunk]),
            ],
        ))
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("ended after"), "{err:?}");
    wait_uploads(&root, &[]);

    // All the bytes, another digest: refused, nothing left.
    let mut messages = vec![start("changed.csv", content.len() as u64, &sha)];
    let mut changed = content.clone();
    changed[12345] ^= 1;
    messages.extend(changed.chunks(chunk).map(data));
    let err = runtime
        .block_on(raw_upload(&url, None, messages))
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("SHA-256"), "{err:?}");
    wait_uploads(&root, &[]);

    // No metadata first: refused.
    let err = runtime
        .block_on(raw_upload(&url, None, vec![data(b"x")]))
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // The whole content: stored, and the coordinator still serves.
    let mut messages = vec![start("../../escape.csv", content.len() as u64, &sha)];
    messages.extend(content.chunks(chunk).map(data));
    let answer = runtime.block_on(raw_upload(&url, None, messages)).unwrap();
    assert_eq!(answer.input, format!("uploads/{sha}.csv"));
    wait_uploads(&root, &[format!("{sha}.csv")]);
    assert_eq!(std::fs::read(root.join(&answer.input)).unwrap(), content);
    assert!(!coordinator.stderr().contains("panicked"));
}

#[test]
fn interrupting_an_upload_starts_no_job_and_leaves_no_file() {
    let _serial = serial();
    let (tmp, root, laptop) = layout();
    let (_coordinator, url) = coordinator(&["--data-root", root.to_str().unwrap()]);
    // A sparse file large enough that the upload is still running when
    // the signal comes.
    let big = laptop.join("big.csv");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let mut cmd = Command::new(bin("rfm"));
    cmd.args(["submit", "--upload"])
        .arg(&big)
        .args(["--coordinator", &url, "--out"])
        .arg(tmp.path().join("out"))
        .env_remove("RFM_TOKEN");
    let mut submit = Proc::spawn(cmd);
    // The coordinator's temporary file shows the bytes are on their way.
    let start = Instant::now();
    while !uploads(&root).iter().any(|n| n.ends_with(".part")) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no upload began: {}",
            submit.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    submit.signal("-INT");
    let code = submit.wait_exit(Duration::from_secs(20)).code();
    let stderr = submit.stderr();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("upload stopped; no job was started"),
        "{stderr}"
    );
    assert!(!stderr.contains("may still run"), "{stderr}");
    let report = std::fs::read_to_string(tmp.path().join("out/run.json")).unwrap();
    assert!(report.contains("\"interrupted\""), "{report}");
    // The coordinator drops its partial copy when the stream ends.
    wait_uploads(&root, &[]);
}

/// Sets a file's access and modification times to `age` ago.
fn age_file(path: &Path, age: Duration) {
    let then = std::time::SystemTime::now() - age;
    std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap()
        .set_times(
            std::fs::FileTimes::new()
                .set_accessed(then)
                .set_modified(then),
        )
        .unwrap();
}

#[test]
fn uploads_unused_for_the_retention_are_removed_and_a_resent_one_is_kept() {
    let (_tmp, root, _laptop) = layout();
    let dir = root.join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    let stored = |content: &[u8]| format!("{}.csv", sha256_hex(content));
    let (old, young, resent) = (
        b"old\n".as_slice(),
        b"young\n".as_slice(),
        b"resent\n".as_slice(),
    );
    for content in [old, young, resent] {
        std::fs::write(dir.join(stored(content)), content).unwrap();
    }
    let week = Duration::from_secs(7 * 86400);
    age_file(&dir.join(stored(old)), week + Duration::from_secs(3600));
    age_file(&dir.join(stored(resent)), week - Duration::from_secs(3600));
    age_file(&dir.join(stored(young)), Duration::from_secs(3600));

    // At start: the upload older than the default retention (7 days) goes.
    let root_arg = root.display().to_string();
    let (coordinator, url) = coordinator(&["--data-root", &root_arg]);
    let mut want = vec![stored(resent), stored(young)];
    want.sort();
    wait_uploads(&root, &want);
    assert!(
        coordinator
            .stderr()
            .contains("removed 1 upload(s) (4 bytes) unused"),
        "{}",
        coordinator.stderr()
    );

    // Sent again: its bytes are not sent, it counts as used now, and its
    // modification time (the state cache's key) is kept.
    let resent_path = dir.join(stored(resent));
    let modified = std::fs::metadata(&resent_path).unwrap().modified().unwrap();
    let answer = runtime()
        .block_on(raw_upload(
            &url,
            None,
            vec![start("again.csv", resent.len() as u64, &sha256_hex(resent))],
        ))
        .expect("a stored file is taken without its bytes");
    assert!(answer.reused);
    let meta = std::fs::metadata(&resent_path).unwrap();
    assert_eq!(meta.modified().unwrap(), modified);
    let accessed_age = meta.accessed().unwrap().elapsed().unwrap_or_default();
    assert!(accessed_age < Duration::from_secs(600), "{accessed_age:?}");

    // Two hours later (aged by hand), a new upload arrives: the file not
    // sent again for a week goes, the one sent again stays.
    age_file(&dir.join(stored(young)), week + Duration::from_secs(60));
    let fresh = b"fresh\n".as_slice();
    runtime()
        .block_on(raw_upload(
            &url,
            None,
            vec![
                start("fresh.csv", fresh.len() as u64, &sha256_hex(fresh)),
                data(fresh),
            ],
        ))
        .expect("a new upload");
    let mut want = vec![stored(resent), stored(fresh)];
    want.sort();
    wait_uploads(&root, &want);
}

#[test]
fn a_zero_retention_keeps_every_upload() {
    let (_tmp, root, _laptop) = layout();
    let dir = root.join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{}.csv", sha256_hex(b"old\n"));
    std::fs::write(dir.join(&name), b"old\n").unwrap();
    age_file(&dir.join(&name), Duration::from_secs(400 * 86400));
    let root_arg = root.display().to_string();
    let (coordinator, _url) = coordinator(&["--data-root", &root_arg, "--upload-retention", "0"]);
    // Ready (it prints its address) after the start-up sweep.
    assert_eq!(uploads(&root), vec![name]);
    assert!(
        !coordinator.stderr().contains("removed"),
        "{}",
        coordinator.stderr()
    );
}
