//! criterion benches of the core engine's stages, each reporting throughput:
//! record splitting (MB/s), parsing and classification into Arrow batches
//! (lines/s), aggregation into a partial state, merging partial states, the
//! Arrow round trip of a state, a state's cache entry written and read, and
//! scoring.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rfm_benches::Fixture;
use rfm_core::engine::{self, InputReader};
use rfm_core::parse::{parse_range, RangeSpec};
use rfm_core::scan::RecordSplitter;
use rfm_core::{Cancel, PartialState};

const ROWS: u64 = 200_000;

/// The data records of the fixture (after its header) and where they start.
fn data(f: &Fixture) -> (&[u8], RangeSpec) {
    let data_start = f.files[0].layout.data_start;
    let range = RangeSpec {
        file_index: 0,
        base: data_start,
    };
    (&f.bytes[data_start as usize..], range)
}

fn stages(c: &mut Criterion) {
    let f = Fixture::generated(ROWS);
    let data_start = f.files[0].layout.data_start as usize;
    let columns = &f.files[0].layout.columns;

    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(f.bytes.len() as u64));
    g.bench_function("split_records", |b| {
        b.iter(|| {
            let mut sp = RecordSplitter::new(b',', f.opts.parse.max_record_size);
            let mut pos = data_start;
            let mut n = 0usize;
            while let Some(r) = sp.next_record(&f.bytes, 0, &mut pos, f.bytes.len()) {
                n += r.field_count();
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(ROWS));
    g.bench_function("classify_to_arrow", |b| {
        b.iter(|| {
            let mut rows = 0;
            let (bytes, range) = data(&f);
            parse_range(bytes, range, columns, &f.opts.parse, |batch| {
                rows += batch.num_rows()
            });
            rows
        })
    });
    let mut batches = Vec::new();
    let (bytes, range) = data(&f);
    parse_range(bytes, range, columns, &f.opts.parse, |b| batches.push(b));
    let purchase_rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    g.throughput(Throughput::Elements(purchase_rows as u64));
    g.bench_function("aggregate_batches", |b| {
        b.iter(|| {
            let mut s = PartialState::new();
            for batch in &batches {
                s.absorb(batch);
            }
            s.seal();
            s.customer_count()
        })
    });
    g.finish();

    // Eight chunk states of the same file, as a coordinator would merge them.
    let reader = InputReader::open(&f.path).unwrap();
    let chunk_size = (f.bytes.len() as u64).div_ceil(8);
    let cancel = Cancel::default();
    let states: Vec<PartialState> = engine::plan_chunks(&f.files, chunk_size)
        .into_iter()
        .map(|c| {
            engine::compute_chunk(&reader, &f.files[0], c, &f.opts.parse, 1 << 22, &cancel).unwrap()
        })
        .collect();
    let customers: usize = states.iter().map(|s| s.customer_count()).sum();
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(customers as u64));
    g.bench_function("merge_8_chunk_states", |b| {
        b.iter_batched(
            || states.clone(),
            |states| {
                let mut m = PartialState::new();
                for s in states {
                    m.merge(s);
                }
                m.customer_count()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("arrow_round_trip", |b| {
        b.iter(|| {
            let batches: Vec<_> = states.iter().map(|s| s.to_record_batch()).collect();
            batches
                .iter()
                .map(|b| {
                    PartialState::from_record_batches(&b.schema(), std::slice::from_ref(b))
                        .unwrap()
                        .customer_count()
                })
                .sum::<usize>()
        })
    });
    let mut merged = PartialState::new();
    for s in states.clone() {
        merged.merge(s);
    }
    g.throughput(Throughput::Elements(merged.customer_count() as u64));
    // A cache entry of the merged state: written once per new file, read
    // (checked and decoded) on every incremental run.
    let mut payload = Vec::new();
    merged.encode_entry(&merged.ledger, &mut payload);
    g.bench_function("cache_entry_encode", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            merged.encode_entry(&merged.ledger, &mut out);
            out.len()
        })
    });
    g.bench_function("cache_entry_decode", |b| {
        b.iter(|| {
            PartialState::decode_entry(&payload)
                .unwrap()
                .customer_count()
        })
    });
    g.bench_function("score_and_segment", |b| {
        b.iter_batched(
            || merged.clone(),
            |m| rfm_core::score::finish(m, None).unwrap().customers.len(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = stages
}
criterion_main!(benches);
