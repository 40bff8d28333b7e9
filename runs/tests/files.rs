//! A run folder's customers.csv is read with every value checked: a score
//! outside 1–5 or a negative frequency is refused, naming the file and line.

use std::path::Path;

use rfm_runs::{Error, FolderSource, RunSource};

use crate::common::*;

/// A run folder whose customers.csv has line 3 (the second customer) changed
/// by `edit`; the error loading it.
fn load_with_line_3(edit: impl Fn(&mut Vec<String>)) -> (Error, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let (result, report) = compute(
        dir.path(),
        &sub_cent_purchases(12, 0),
        "20110301T000000Z-0000000a",
        "2011-03-01T00:00:00Z",
    );
    write_folder(&root, &result, &report);
    let path = root.join(&report.run_id).join("customers.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    edit(&mut fields);
    lines[2] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = FolderSource::open(&root)
        .unwrap()
        .results(None)
        .unwrap_err();
    (err, path)
}

fn assert_refused(err: &Error, path: &Path, column: &str) {
    let text = err.to_string();
    let place = format!("{}:3:", path.display());
    assert!(text.starts_with(&place), "{text}");
    assert!(text.contains(&format!("column {column}")), "{text}");
}

#[test]
fn a_score_of_0_or_6_is_refused_with_file_and_line() {
    for (k, column, value) in [(7, "r", "0"), (8, "f", "6"), (9, "m", "0")] {
        let (err, path) = load_with_line_3(|f| f[k] = value.to_string());
        assert_refused(&err, &path, column);
        assert!(err.to_string().contains("a score from 1 to 5"), "{err}");
    }
}

#[test]
fn a_negative_frequency_is_refused_with_file_and_line() {
    let (err, path) = load_with_line_3(|f| f[2] = "-2".to_string());
    assert_refused(&err, &path, "frequency");
}

#[test]
fn a_recency_beyond_the_integers_is_refused_not_truncated() {
    let (err, path) = load_with_line_3(|f| f[1] = "99999999999999999999".to_string());
    assert_refused(&err, &path, "recency");
}

#[test]
fn scores_that_disagree_with_the_rfm_score_are_refused() {
    let (err, path) = load_with_line_3(|f| f[10] = "999".to_string());
    assert_refused(&err, &path, "rfm_score");
}
