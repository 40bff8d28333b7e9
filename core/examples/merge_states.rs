//! Times the coordinator's side of a job on one CSV file: the chunks'
//! partial states are computed first (as workers would), encoded to Arrow,
//! then decoded and merged one at a time in chunk order, as the driver
//! does; prints the decoding and merging times and a digest of the sealed
//! result (equal digests: equal results).
//!
//! `cargo run --release -p rfm-core --example merge_states -- FILE [CHUNK_BYTES]`

use std::hash::{Hash, Hasher};
use std::time::Instant;

use rayon::prelude::*;
use rfm_core::engine::{compute_chunk, open_inputs, plan_chunks, InputReader, SUB_RANGE_SIZE};
use rfm_core::{Cancel, PartialState};

/// CPU time of this thread, in seconds.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).expect("usage: merge_states FILE [CHUNK_BYTES]");
    let chunk_size: u64 = args
        .get(2)
        .map_or(64 << 20, |s| s.parse().expect("chunk bytes"));
    let opts = rfm_core::RunOptions::default();
    let files = open_inputs(file, &opts.parse).expect("input opens");
    let chunks = plan_chunks(&files, chunk_size);
    let reader = InputReader::open_planned(&files[0], None).expect("reader");
    let cancel = Cancel::default();
    let started = Instant::now();
    let batches: Vec<_> = chunks
        .par_iter()
        .map(|c| {
            compute_chunk(&reader, &files[0], *c, &opts.parse, SUB_RANGE_SIZE, &cancel)
                .expect("chunk computes")
                .to_record_batch()
        })
        .collect();
    let customers: usize = batches.iter().map(|b| b.num_rows()).sum();
    eprintln!(
        "{} chunks computed and encoded in {:.2} s ({customers} customers in all)",
        batches.len(),
        started.elapsed().as_secs_f64()
    );
    for round in 0..3 {
        let cpu = thread_cpu();
        let started = Instant::now();
        let states: Vec<PartialState> = batches
            .iter()
            .map(|b| {
                PartialState::from_record_batches(&b.schema(), std::slice::from_ref(b)).unwrap()
            })
            .collect();
        let decoded = started.elapsed();
        let decode_cpu = thread_cpu() - cpu;
        let cpu = thread_cpu();
        let started = Instant::now();
        let mut merged = PartialState::new();
        let mut slowest = 0f64;
        for s in states {
            let t = Instant::now();
            merged.merge(s);
            slowest = slowest.max(t.elapsed().as_secs_f64());
        }
        let merging = started.elapsed();
        let merge_cpu = thread_cpu() - cpu;
        let t = Instant::now();
        merged.seal();
        let sealed = t.elapsed();
        let mut rows: Vec<_> = (0..merged.customer_count())
            .map(|i| {
                let c = &merged.customers()[i];
                (
                    merged.id(i).to_vec(),
                    c.first_ts,
                    c.last_ts,
                    c.monetary.0,
                    merged.frequency(i),
                    merged.country_of(c).to_vec(),
                )
            })
            .collect();
        rows.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        rows.hash(&mut h);
        format!("{:?}", merged.ledger).hash(&mut h);
        eprintln!(
            "round {round}: decoded in {:.3} s ({:.3} s CPU), merged in {:.3} s ({:.3} s CPU) (slowest {:.1} ms), sealed in {:.1} ms; {} customers, digest {:016x}",
            decoded.as_secs_f64(),
            decode_cpu,
            merging.as_secs_f64(),
            merge_cpu,
            slowest * 1e3,
            sealed.as_secs_f64() * 1e3,
            merged.customer_count(),
            h.finish()
        );
    }
}
