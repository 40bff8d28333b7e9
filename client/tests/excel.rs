//! Excel workbooks through the real binary: the real UCI file and the Online
//! Retail II extract written as workbooks (typed cells: numbers, date serials
//! with a date format, text) give the DuckDB reference's results of their
//! CSV files; `--sheet` reads one sheet; a truncated workbook and a missing
//! sheet fail with exit 3, naming the file (and the sheets it has), and
//! publish nothing. A workbook whose sheet expands far beyond its size (a
//! zip bomb, written here) is refused before it is parsed, naming the part
//! and the setting to raise.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::support::{ok, rfm};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(name)
}

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/reference")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

/// Checks a run folder against the reference outputs named `name`.
fn assert_reference(out: &Path, name: &str) {
    let segments = std::fs::read_to_string(out.join("segments.csv")).unwrap();
    let want = std::fs::read_to_string(reference(&format!("{name}.segments.csv"))).unwrap();
    assert_eq!(segments, want, "{name}: segments.csv");
    let customers = std::fs::read(out.join("customers.csv")).unwrap();
    let sha = std::fs::read_to_string(reference(&format!("{name}.customers.sha256"))).unwrap();
    assert_eq!(
        format!("{:x}", Sha256::digest(&customers)),
        sha.split_whitespace().next().unwrap(),
        "{name}: customers.csv"
    );
}

/// A directory that lives as long as the test binary.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// `csv` written as a workbook of `sheets` (its rows split evenly).
fn workbook(csv: &Path, name: &str, sheets: &[&str]) -> PathBuf {
    let out = scratch().join(name);
    let file = std::fs::File::create(&out).unwrap();
    let names: Vec<String> = sheets.iter().map(|s| s.to_string()).collect();
    rfm_core::excel::write::csv_to_xlsx(csv, file, &names, false).unwrap();
    out
}

/// The real UCI file as a one-sheet workbook, written once per test binary.
fn uci_workbook() -> &'static Path {
    static BOOK: OnceLock<PathBuf> = OnceLock::new();
    BOOK.get_or_init(|| {
        workbook(
            &real("online_retail.csv"),
            "Online Retail.xlsx",
            &["Online Retail"],
        )
    })
}

#[test]
fn the_uci_file_as_a_workbook_gives_the_reference_results() {
    let tmp = tempfile::tempdir().unwrap();
    let book = uci_workbook();
    // One task for the sheet, then row ranges of about 2 MiB of the file.
    for chunk in [None, Some("2MiB")] {
        let out = tmp.path().join(format!("out-{}", chunk.unwrap_or("one")));
        let mut args = vec![
            "run",
            book.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "2",
        ];
        if let Some(c) = chunk {
            args.extend(["--chunk-size", c]);
        }
        ok(rfm(&args));
        assert_reference(&out, "online_retail");
        let r = report(&out);
        assert_eq!(r["lines_read"], 541_909, "{r}");
        assert_eq!(r["purchase_lines"], 397_884, "{r}");
        assert_eq!(r["malformed"], 0, "{r}");
        assert_eq!(r["customers"], 4_338, "{r}");
    }
}

#[test]
fn the_online_retail_ii_extract_as_two_sheets_gives_the_results_of_its_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = real("online_retail_ii_2009-12_extract.csv");
    let book = workbook(&csv, "online_retail_ii.xlsx", &["Year 2009-2010", "Part 2"]);
    let out = tmp.path().join("both");
    ok(rfm(&[
        "run",
        book.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_reference(&out, "online_retail_ii_2009-12_extract");
    assert_eq!(report(&out)["lines_read"], 45_228);

    // One sheet: the first half of the rows, as the CSV of those rows gives.
    let all = std::fs::read_to_string(&csv).unwrap();
    let half: String = all.split_inclusive('\n').take(1 + 22_614).collect();
    let half_csv = tmp.path().join("half.csv");
    std::fs::write(&half_csv, half).unwrap();
    let expected = tmp.path().join("half-csv");
    ok(rfm(&[
        "run",
        half_csv.to_str().unwrap(),
        "--out",
        expected.to_str().unwrap(),
    ]));
    let out = tmp.path().join("first");
    ok(rfm(&[
        "run",
        book.to_str().unwrap(),
        "--sheet",
        "Year 2009-2010",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(report(&out)["lines_read"], 22_614);
    for f in ["segments.csv", "customers.csv"] {
        assert!(
            std::fs::read(out.join(f)).unwrap() == std::fs::read(expected.join(f)).unwrap(),
            "{f} of the sheet differs from its CSV's"
        );
    }
    assert_ne!(
        std::fs::read(out.join("customers.csv")).unwrap(),
        std::fs::read(tmp.path().join("both/customers.csv")).unwrap()
    );
}

#[test]
fn a_truncated_workbook_and_a_missing_sheet_fail_with_exit_3_and_publish_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = real("variants/mdyy_2digit_year_crlf_999.csv");
    let book = workbook(&csv, "small.xlsx", &["Data"]);

    let bytes = std::fs::read(&book).unwrap();
    let cut = tmp.path().join("cut.xlsx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = tmp.path().join("cut-out");
    let o = rfm(&["run", cut.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cut.xlsx") && err.contains("not a readable Excel workbook"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("customers.csv").exists());

    let out = tmp.path().join("sheet-out");
    let o = rfm(&[
        "run",
        book.to_str().unwrap(),
        "--sheet",
        "Year 2010",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("small.xlsx")
            && err.contains("no sheet \"Year 2010\"")
            && err.contains("\"Data\""),
        "{err}"
    );
    assert!(!out.join("customers.csv").exists());

    // The same workbook read whole gives its CSV's reference results.
    let out = tmp.path().join("whole");
    ok(rfm(&[
        "run",
        book.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_reference(&out, "mdyy_2digit_year_crlf_999");
}

#[test]
fn rfm_gen_writes_a_workbook_with_the_rows_of_its_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("gen.csv");
    let book = tmp.path().join("gen.xlsx");
    ok(rfm(&[
        "gen",
        "--rows",
        "20000",
        "--seed",
        "3",
        "--out",
        csv.to_str().unwrap(),
    ]));
    ok(rfm(&[
        "gen",
        "--rows",
        "20000",
        "--seed",
        "3",
        "--out",
        book.to_str().unwrap(),
    ]));
    assert_eq!(&std::fs::read(&book).unwrap()[..2], b"PK");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(rfm(&[
        "run",
        csv.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]));
    ok(rfm(&[
        "run",
        book.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]));
    for f in ["segments.csv", "customers.csv"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} of the workbook differs from its CSV's"
        );
    }
    assert_eq!(report(&b)["lines_read"], 20_000);
}

/// `book` rewritten with its first sheet's XML padded by `pad` bytes of
/// spaces after the XML declaration (valid XML that compresses ~1000 times).
fn padded_workbook(book: &Path, name: &str, pad: usize) -> PathBuf {
    use std::io::{Read, Write};
    let mut zip = zip::ZipArchive::new(std::fs::File::open(book).unwrap()).unwrap();
    let out = scratch().join(name);
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&out).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let entry_name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        writer.start_file(entry_name.as_str(), options).unwrap();
        if entry_name == "xl/worksheets/sheet1.xml" {
            let at = bytes.windows(2).position(|w| w == b"?>").unwrap() + 2;
            writer.write_all(&bytes[..at]).unwrap();
            let spaces = vec![b' '; 1 << 20];
            for _ in 0..pad >> 20 {
                writer.write_all(&spaces).unwrap();
            }
            writer.write_all(&bytes[at..]).unwrap();
        } else {
            writer.write_all(&bytes).unwrap();
        }
    }
    writer.finish().unwrap();
    out
}

#[test]
fn a_workbook_that_expands_beyond_the_limits_is_refused_naming_the_part_and_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = real("variants/mdyy_2digit_year_crlf_999.csv");
    let book = workbook(&csv, "bomb-base.xlsx", &["Data"]);
    let bomb = padded_workbook(&book, "bomb.xlsx", 64 << 20);
    let run = |extra: &[&str], out: &str| {
        let out = tmp.path().join(out);
        let mut args = vec![
            "run",
            bomb.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        (rfm(&args), out)
    };
    let refused = |(o, out): (Output, PathBuf), fragments: &[&str]| {
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        for f in fragments {
            assert!(err.contains(f), "stderr lacks {f:?}: {err}");
        }
        assert!(!out.join("customers.csv").exists());
    };
    // 64 MiB of sheet from well under 1 MiB: over the ratio cap.
    refused(
        run(&[], "ratio"),
        &[
            "bomb.xlsx",
            "\"xl/worksheets/sheet1.xml\"",
            "--max-compression-ratio",
        ],
    );
    // The ratio allowed, the size limit holds.
    refused(
        run(
            &[
                "--max-compression-ratio",
                "100000",
                "--max-decompressed-size",
                "32MiB",
            ],
            "size",
        ),
        &[
            "bomb.xlsx",
            "\"xl/worksheets/sheet1.xml\"",
            "over the limit of 32.0 MiB",
            "--max-decompressed-size",
        ],
    );
    // Both raised: the padding is valid XML, and the workbook is read.
    let (o, out) = run(&["--max-compression-ratio", "100000"], "raised");
    ok(o);
    assert_reference(&out, "mdyy_2digit_year_crlf_999");

    // A part declaring a small size but inflating past it: the zip reader
    // stops at the declared size, and the read fails.
    let mut bytes = std::fs::read(&bomb).unwrap();
    let name = b"xl/worksheets/sheet1.xml";
    let central = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [b'P', b'K', 1, 2])
        .map(|(i, _)| i)
        .find(|&i| bytes[i + 46..].starts_with(name))
        .unwrap();
    bytes[central + 24..central + 28].copy_from_slice(&4096u32.to_le_bytes());
    let liar = tmp.path().join("liar.xlsx");
    std::fs::write(&liar, &bytes).unwrap();
    let out = tmp.path().join("liar-out");
    let o = rfm(&[
        "run",
        liar.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("liar.xlsx"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("customers.csv").exists());
}
