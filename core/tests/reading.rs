//! Reading inputs: a file that changes under the reader is an input error
//! naming it (never a crash); over-long records cost linear work whatever the
//! chunk layout and are malformed lines; a `**` glob does not follow directory
//! links and stops when cancelled.

use std::io::Write;
use std::path::Path;

use rfm_core::engine::{self, InputReader, SUB_RANGE_SIZE};
use rfm_core::{Cancel, Error, ErrorKind, PartialState, RunOptions};

const HEADER: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";
const LINE: &str = "536365,A,\"X, Y\",6,12/1/2010 8:26,2.55,17850,United Kingdom\n";

fn write_lines(path: &Path, bytes: usize) {
    let mut s = String::from(HEADER);
    while s.len() < bytes {
        s.push_str(LINE);
    }
    std::fs::write(path, s).unwrap();
}

/// Every chunk of the file computed in this thread, merged.
fn compute_all(path: &Path, opts: &RunOptions) -> rfm_core::Result<PartialState> {
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse)?;
    let reader = InputReader::open(&files[0].path)?;
    let mut merged = PartialState::new();
    for c in engine::plan_chunks(&files, opts.chunk_size) {
        let state = engine::compute_chunk(
            &reader,
            &files[0],
            c,
            &opts.parse,
            SUB_RANGE_SIZE,
            &Cancel::default(),
        )?;
        merged.merge(state);
    }
    Ok(merged)
}

#[test]
fn an_input_truncated_while_read_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    write_lines(&path, 3 << 20);
    let size = std::fs::metadata(&path).unwrap().len();
    let opts = RunOptions::default();
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
    let reader = InputReader::open(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let chunk = engine::plan_chunks(&files, 1 << 30)[0];
    let err = engine::compute_chunk(
        &reader,
        &files[0],
        chunk,
        &opts.parse,
        1 << 20,
        &Cancel::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InputChanged { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Input);
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("was {size} bytes, now 1000")) && msg.contains("stable copy"),
        "{msg}"
    );
}

#[test]
fn an_input_rewritten_in_place_while_read_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    write_lines(&path, 1 << 20);
    let opts = RunOptions::default();
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
    let reader = InputReader::open(&path).unwrap();
    // Same size, new bytes and a new modification time.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(b"C").unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let chunk = engine::plan_chunks(&files, 1 << 30)[0];
    let err = engine::compute_chunk(
        &reader,
        &files[0],
        chunk,
        &opts.parse,
        1 << 20,
        &Cancel::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InputChanged { .. }), "{err:?}");
}

#[test]
fn a_cancelled_chunk_stops_with_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    write_lines(&path, 1 << 20);
    let opts = RunOptions::default();
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
    let reader = InputReader::open(&path).unwrap();
    let cancel = Cancel::default();
    cancel.cancel();
    let before = engine::bytes_read();
    let chunk = engine::plan_chunks(&files, 1 << 30)[0];
    let err = engine::compute_chunk(&reader, &files[0], chunk, &opts.parse, 64 << 10, &cancel)
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(
        engine::bytes_read(),
        before,
        "a cancelled chunk reads nothing"
    );
}

/// A valid purchase line whose description pads it to `len` bytes.
fn padded_line(len: usize, quoted_breaks: bool) -> String {
    let fill = len.saturating_sub(LINE.len());
    let description = if quoted_breaks {
        let body: String = "ab\n".repeat(fill / 3 + 1);
        format!("\"{body}\"")
    } else {
        "D".repeat(fill)
    };
    format!("536366,B,{description},2,12/2/2010 9:00,1.25,13047,France\n")
}

/// Bytes read to compute a file of one long line between two short ones, at
/// 1 MiB chunks; checks the long line is one malformed line.
fn read_for_one_long_line(dir: &Path, len: usize) -> (u64, u64) {
    let path = dir.join(format!("long{len}.csv"));
    let mut s = String::from(HEADER);
    s.push_str(LINE);
    s.push_str(&padded_line(len, false));
    s.push_str(LINE);
    std::fs::write(&path, &s).unwrap();
    let opts = RunOptions {
        chunk_size: 1 << 20,
        max_malformed_share: 1.0,
        ..RunOptions::default()
    };
    let before = engine::bytes_read();
    let state = compute_all(&path, &opts).unwrap();
    let read = engine::bytes_read() - before;
    assert_eq!(state.ledger.lines_read, 3);
    assert_eq!(state.ledger.malformed, 1);
    assert_eq!(state.ledger.purchase_lines, 2);
    let sample = &state.ledger.malformed_samples[0];
    assert!(
        sample.problem.contains("--max-record-size"),
        "{}",
        sample.problem
    );
    assert_eq!(sample.offset, (HEADER.len() + LINE.len()) as u64);
    assert!(sample.text.len() <= 300);
    (read, s.len() as u64)
}

#[test]
fn a_50_mb_single_line_is_one_malformed_record_read_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let (read_25, size_25) = read_for_one_long_line(dir.path(), 25 << 20);
    let (read_50, size_50) = read_for_one_long_line(dir.path(), 50 << 20);
    // Each byte is read a few times (the owner's records, the searches of
    // the cells it crosses), not once per chunk: twice the line, about twice
    // the reads. The old search scanned to the end of the line from every
    // chunk: four times the work for twice the line.
    for (read, size) in [(read_25, size_25), (read_50, size_50)] {
        assert!(
            read < 5 * size,
            "read {read} bytes for a file of {size} bytes"
        );
    }
    let growth = read_50 as f64 / read_25 as f64;
    assert!(
        growth < 2.3,
        "reads grew {growth:.2} times for a line twice as long"
    );
}

#[test]
fn many_long_lines_are_malformed_and_read_in_linear_time_for_every_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.csv");
    let mut s = String::from(HEADER);
    for i in 0..30 {
        s.push_str(LINE);
        // Over the 1 MiB limit, half of them with line breaks inside quotes
        // (the length rule cuts those at a line break past the limit: their
        // remaining lines read as further, malformed, lines).
        s.push_str(&padded_line((3 << 19) + i * 1000, i % 2 == 0));
        // Within the limit: a valid purchase.
        s.push_str(&padded_line(1 << 19, i % 2 == 1));
    }
    std::fs::write(&path, &s).unwrap();
    let mut outcomes = Vec::new();
    for chunk_size in [1 << 20, 3 << 20, 64 << 20] {
        let opts = RunOptions {
            chunk_size,
            max_malformed_share: 1.0,
            ..RunOptions::default()
        };
        let before = engine::bytes_read();
        let state = compute_all(&path, &opts).unwrap();
        let read = engine::bytes_read() - before;
        assert!(
            read < 5 * s.len() as u64,
            "chunk size {chunk_size}: read {read} bytes for a file of {} bytes",
            s.len()
        );
        assert!(state.ledger.malformed >= 30, "chunk size {chunk_size}");
        let long_samples = state
            .ledger
            .malformed_samples
            .iter()
            .filter(|m| m.problem.contains("--max-record-size"))
            .count();
        assert!(long_samples > 0, "chunk size {chunk_size}");
        assert_eq!(state.ledger.purchase_lines, 60, "chunk size {chunk_size}");
        // The canonical encoding (a cache entry's payload): the customers'
        // slots follow the order the threads folded the sub-ranges in.
        let mut canonical = Vec::new();
        state.encode_entry(&state.ledger, &mut canonical);
        outcomes.push((state.ledger.malformed, canonical));
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_double_star_glob_does_not_follow_directory_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("2011/12")).unwrap();
    write_lines(&root.join("a.csv"), 100);
    write_lines(&root.join("2011/12/b.csv"), 100);
    // Two links back up: following them, the walk would never end.
    std::os::unix::fs::symlink("..", root.join("2011/12/up")).unwrap();
    std::os::unix::fs::symlink("../..", root.join("2011/12/top")).unwrap();
    // A link to a file is still a file.
    std::os::unix::fs::symlink("b.csv", root.join("2011/12/c.csv")).unwrap();
    let spec = format!("{}/**/*.csv", root.display());
    let found = rfm_core::input::resolve_input(&spec).unwrap();
    assert_eq!(
        found,
        vec![
            root.join("2011/12/b.csv"),
            root.join("2011/12/c.csv"),
            root.join("a.csv"),
        ]
    );
}

#[test]
fn resolving_a_glob_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(&dir.path().join("a.csv"), 100);
    let spec = format!("{}/**/*.csv", dir.path().display());
    let cancel = Cancel::default();
    cancel.cancel();
    let err = rfm_core::input::resolve_input_cancellable(&spec, &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    let err = engine::open_inputs_cancellable(&spec, &Default::default(), &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}
