//! Property tests: whatever the chunk and sub-range sizes (down to a few
//! bytes), the merge order and the line order, the result is the one of a
//! single-chunk run; and the record splitter agrees with the `csv` crate.

use crate::common;

use std::path::Path;

use arrow::array::RecordBatch;
use proptest::prelude::*;
use rfm_core::engine::{self, Chunk, InputReader};
use rfm_core::input::ParseOptions;
use rfm_core::parse;
use rfm_core::scan::{RecordSplitter, DEFAULT_MAX_RECORD_SIZE};
use rfm_core::split::ChunkSplit;
use rfm_core::{Cancel, PartialState, RunOptions};

/// One generated line: fields chosen to hit quoting and parsing edge cases.
#[derive(Clone, Debug)]
struct Line {
    invoice: String,
    description: String,
    quantity: String,
    date: String,
    price: String,
    customer: String,
    country: String,
    malformed_shape: bool,
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn line_strategy() -> impl Strategy<Value = Line> {
    let invoice = prop_oneof![
        (536365u32..536400).prop_map(|n| n.to_string()),
        (536365u32..536400).prop_map(|n| format!("C{n}")),
        Just("A1".to_string()),
        Just("".to_string()),
        Just("INVOICE-NUMBER-LONGER-THAN-15".to_string()),
    ];
    let description = prop_oneof![
        Just("WHITE HEART".to_string()),
        Just(quoted("SET OF 3, RED")),
        Just(quoted("line\nbreak, and \"quotes\"")),
        Just(quoted("crlf\r\ninside")),
        Just("12\" RECORD".to_string()),
        Just("a\"b\"c".to_string()),
        Just(quoted("")),
        Just("\"\"\"".to_string()),
    ];
    let quantity = prop_oneof![
        (-3i32..50).prop_map(|n| n.to_string()),
        Just(" 6 ".to_string()),
        Just("6.0".to_string()),
    ];
    let date = prop_oneof![
        (1u32..13, 1u32..29, 0u32..24, 0u32..60)
            .prop_map(|(m, d, h, mi)| format!("{m}/{d}/2011 {h}:{mi:02}")),
        (1u32..13, 1u32..29).prop_map(|(m, d)| format!("2010-{m:02}-{d:02} 10:00:00")),
        Just("2/30/2011 8:00".to_string()),
    ];
    let price = prop_oneof![
        (0u32..2000).prop_map(|c| format!("{}.{:02}", c / 100, c % 100)),
        Just(".5".to_string()),
        Just("-1".to_string()),
        Just("1e3".to_string()),
    ];
    let customer = prop_oneof![
        (12346u32..12360).prop_map(|n| n.to_string()),
        (12346u32..12360).prop_map(|n| format!("{n}.0")),
        (12346u32..12360).prop_map(|n| quoted(&n.to_string())),
        Just("".to_string()),
        Just("NA".to_string()),
        Just(quoted("id, with comma")),
        // One customer in two byte forms (UTF-8 and ISO-8859-1, see `render`).
        Just("René".to_string()),
        Just("Ren@E9".to_string()),
        // Control characters: malformed.
        Just("12\u{1b}346".to_string()),
        Just(quoted("12\n346")),
    ];
    let country = prop_oneof![
        Just("United Kingdom".to_string()),
        Just("France".to_string()),
        Just(quoted("Korea, Republic of")),
        Just("".to_string()),
    ];
    (
        invoice,
        description,
        quantity,
        date,
        price,
        customer,
        country,
        proptest::bool::weighted(0.03),
    )
        .prop_map(
            |(invoice, description, quantity, date, price, customer, country, malformed_shape)| {
                Line {
                    invoice,
                    description,
                    quantity,
                    date,
                    price,
                    customer,
                    country,
                    malformed_shape,
                }
            },
        )
}

fn render(lines: &[Line], crlf: bool, bom: bool, blank_every: usize) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut s = String::new();
    if bom {
        s.push('\u{feff}');
    }
    s.push_str("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country");
    s.push_str(eol);
    for (i, l) in lines.iter().enumerate() {
        if blank_every > 0 && i % blank_every == 0 {
            s.push_str(eol);
        }
        s.push_str(&format!(
            "{},A,{},{},{},{},{},{}",
            l.invoice, l.description, l.quantity, l.date, l.price, l.customer, l.country
        ));
        if l.malformed_shape {
            s.push_str(",extra");
        }
        s.push_str(eol);
    }
    // `@E9` stands for the byte E9 (`é` in ISO-8859-1), which no `String` holds.
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some(i) = rest.windows(3).position(|w| w == b"@E9") {
        bytes.extend_from_slice(&rest[..i]);
        bytes.push(0xe9);
        rest = &rest[i + 3..];
    }
    bytes.extend_from_slice(rest);
    bytes
}

/// customers.csv + segments.csv + ledger counts of a run with the given split.
fn outcome(path: &Path, chunk_size: u64, sub_range: usize, reverse_merge: bool) -> String {
    outcome_limited(
        path,
        chunk_size,
        sub_range,
        reverse_merge,
        DEFAULT_MAX_RECORD_SIZE,
    )
}

/// [`outcome`] with a record size limit.
fn outcome_limited(
    path: &Path,
    chunk_size: u64,
    sub_range: usize,
    reverse_merge: bool,
    max_record_size: u64,
) -> String {
    let opts = RunOptions {
        max_malformed_share: 1.0,
        parse: ParseOptions {
            max_record_size,
            ..ParseOptions::default()
        },
        ..RunOptions::default()
    };
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
    let reader = InputReader::open(&files[0].path).unwrap();
    let chunks: Vec<Chunk> = engine::plan_chunks(&files, chunk_size);
    let cancel = Cancel::default();
    let mut states: Vec<PartialState> = chunks
        .iter()
        .map(|c| {
            engine::compute_chunk(&reader, &files[0], *c, &opts.parse, sub_range, &cancel).unwrap()
        })
        .collect();
    if reverse_merge {
        states.reverse();
    }
    outcome_of_states(path, &files, &opts, states)
}

/// The run's outcome (ledger, customers and segments, or its error) from
/// the chunks' `states`, merged as the coordinator merges them.
fn outcome_of_states(
    path: &Path,
    files: &[engine::InputFile],
    opts: &RunOptions,
    states: Vec<PartialState>,
) -> String {
    // A split run merges as the coordinator does: into a state whose
    // columns are reserved for the job; the single chunk into a plain one.
    let mut merged = PartialState::new();
    if states.len() > 1 {
        merged.reserve_for_job(files[0].layout.len);
    }
    for s in states {
        // Through Arrow and back, as between processes: a state of no customer
        // travels as its schema alone, like a Flight stream of zero rows.
        let batch = s.to_record_batch();
        let batches = if batch.num_rows() == 0 {
            Vec::new()
        } else {
            vec![batch.clone()]
        };
        merged.merge(PartialState::from_record_batches(&batch.schema(), &batches).unwrap());
    }
    let (ledger, result) = engine::finish_run(merged, files, opts);
    let mut text = format!(
        "read {} purchase {} malformed {} excluded {:?}\n",
        ledger.lines_read, ledger.purchase_lines, ledger.malformed, ledger.excluded
    );
    match result {
        Ok(r) => {
            text.push_str(&String::from_utf8(common::customers_csv(&r)).unwrap());
            text.push_str(&String::from_utf8(common::segments_csv(&r)).unwrap());
        }
        // The input's name aside: runs on two files are compared.
        Err(e) => text.push_str(&e.to_string().replace(path.to_str().unwrap(), "INPUT")),
    }
    text
}

/// The state of a file's data lines folded line by line
/// ([`parse::parse_range_into`]) and through Arrow batches
/// ([`parse::parse_range`] + [`PartialState::absorb`]), as Arrow batches.
fn folded_both_ways(path: &Path) -> (RecordBatch, RecordBatch) {
    let opts = ParseOptions::default();
    let files = engine::open_inputs(path.to_str().unwrap(), &opts).unwrap();
    let layout = &files[0].layout;
    let bytes = std::fs::read(path).unwrap();
    let data = &bytes[layout.data_start as usize..];
    let range = parse::RangeSpec {
        file_index: 0,
        base: layout.data_start,
    };
    let mut direct = PartialState::new();
    let ledger = parse::parse_range_into(data, range, &layout.columns, &opts, &mut direct);
    direct.ledger = ledger;
    let mut batched = PartialState::new();
    let ledger = parse::parse_range(data, range, &layout.columns, &opts, |b| batched.absorb(&b));
    batched.ledger = ledger;
    direct.seal();
    batched.seal();
    (direct.to_record_batch(), batched.to_record_batch())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn lines_folded_one_by_one_give_the_state_of_batches(
        lines in proptest::collection::vec(line_strategy(), 1..120),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, render(&lines, false, false, 0)).unwrap();
        let (direct, batched) = folded_both_ways(&path);
        prop_assert_eq!(direct, batched);
    }

    #[test]
    fn any_split_gives_the_single_chunk_result(
        lines in proptest::collection::vec(line_strategy(), 1..120),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        blank_every in 0usize..7,
        chunk in 1u64..400,
        sub in 1usize..64,
        reverse in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, render(&lines, crlf, bom, blank_every)).unwrap();
        let whole = outcome(&path, u64::MAX / 2, usize::MAX / 2, false);
        let split = outcome(&path, chunk, sub, reverse);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn a_chunk_cut_short_and_its_rest_give_the_single_chunk_result(
        lines in proptest::collection::vec(line_strategy(), 1..120),
        crlf in any::<bool>(),
        sub in 1usize..64,
        cuts in 0usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, render(&lines, crlf, false, 0)).unwrap();
        let whole = outcome(&path, u64::MAX / 2, usize::MAX / 2, false);
        let opts = RunOptions { max_malformed_share: 1.0, ..RunOptions::default() };
        let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
        let reader = InputReader::open(&files[0].path).unwrap();
        let chunk = engine::plan_chunks(&files, u64::MAX / 2)[0];
        // Cut the way a worker cuts a task it has not started, `cuts` times.
        let split = ChunkSplit::new(chunk, sub);
        for _ in 0..cuts {
            split.split();
        }
        let cancel = Cancel::default();
        let kept = engine::compute_chunk_split(
            &reader, &files[0], chunk, &opts.parse, sub, &cancel, Some(&split),
        )
        .unwrap();
        let end = split.end();
        prop_assert!(end > chunk.start && end <= chunk.end);
        let mut states = vec![kept];
        if end < chunk.end {
            let rest = Chunk { start: end, ..chunk };
            states.push(
                engine::compute_chunk(&reader, &files[0], rest, &opts.parse, sub, &cancel).unwrap(),
            );
        }
        prop_assert_eq!(whole, outcome_of_states(&path, &files, &opts, states));
    }

    #[test]
    fn over_long_records_give_the_same_result_for_any_split(
        lines in proptest::collection::vec(line_strategy(), 1..80),
        long in proptest::collection::vec((0usize..4, 1usize..120), 80),
        // The header (81 bytes) stays within the limit.
        limit in 81u64..200,
        crlf in any::<bool>(),
        chunk in 1u64..400,
        sub in 1usize..64,
        reverse in any::<bool>(),
    ) {
        // Some descriptions made longer than the limit: plain, quoted with
        // line breaks, or an opening quote that never closes.
        let lines: Vec<Line> = lines
            .into_iter()
            .zip(long)
            .map(|(mut l, (kind, n))| {
                match kind {
                    1 => l.description = "L".repeat(n),
                    2 => l.description = quoted(&"ab\n".repeat(n / 3 + 1)),
                    3 => l.description = format!("\"{}", "q,".repeat(n / 2 + 1)),
                    _ => {}
                }
                l
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, render(&lines, crlf, false, 0)).unwrap();
        let whole = outcome_limited(&path, u64::MAX / 2, usize::MAX / 2, false, limit);
        let split = outcome_limited(&path, chunk, sub, reverse, limit);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn line_order_does_not_matter(
        lines in proptest::collection::vec(line_strategy(), 1..80),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        // A field with an unclosed quote swallows the lines after it, so the
        // order-free property holds for self-contained lines only.
        let lines: Vec<Line> = lines
            .into_iter()
            .filter(|l| l.description != "\"\"\"")
            .collect();
        prop_assume!(!lines.is_empty());
        std::fs::write(&a, render(&lines, false, false, 0)).unwrap();
        let mut shuffled = lines.clone();
        // Fisher-Yates with a simple LCG from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        std::fs::write(&b, render(&shuffled, true, false, 0)).unwrap();
        prop_assert_eq!(outcome(&a, 1 << 30, 1 << 30, false), outcome(&b, 97, 13, true));
    }

    #[test]
    fn splitter_agrees_with_the_csv_crate(
        lines in proptest::collection::vec(line_strategy(), 1..60),
        crlf in any::<bool>(),
    ) {
        let bytes = render(&lines, crlf, false, 0);
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[..]);
        let want: Vec<Vec<Vec<u8>>> = rdr
            .byte_records()
            .map(|r| r.unwrap().iter().map(|f| f.to_vec()).collect())
            .collect();
        let mut splitter = RecordSplitter::new(b',', DEFAULT_MAX_RECORD_SIZE);
        let mut pos = 0;
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        while let Some(rec) = splitter.next_record(&bytes, 0, &mut pos, bytes.len()) {
            got.push(rec.fields().map(|f| f.value(rec.bytes, &mut scratch).to_vec()).collect::<Vec<_>>());
        }
        prop_assert_eq!(got, want);
    }
}
