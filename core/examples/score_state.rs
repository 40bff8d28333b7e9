//! Times scoring ([`rfm_core::score::finish`]) and the writing of
//! `customers.csv` on one input: the whole input is computed and merged
//! first (as `rfm run` does), then the merged state is scored a few times;
//! prints each round's times and a digest of the files' bytes (equal
//! digests: equal results).
//!
//! `cargo run --release -p rfm-core --example score_state -- FILE [ROUNDS]`

use std::hash::{Hash, Hasher};
use std::time::Instant;

use rfm_core::engine::{open_inputs, run_local};
use rfm_core::output::{write_customers, write_segments};
use rfm_core::score::finish;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).expect("usage: score_state FILE [ROUNDS]");
    let rounds: usize = args.get(2).map_or(5, |s| s.parse().expect("rounds"));
    let opts = rfm_core::RunOptions::default();
    let files = open_inputs(file, &opts.parse).expect("input opens");
    let started = Instant::now();
    let state = run_local(&files, &opts).expect("input computes");
    eprintln!(
        "computed in {:.2} s ({} customers)",
        started.elapsed().as_secs_f64(),
        state.customer_count()
    );
    for round in 0..rounds {
        let copy = state.clone();
        let started = Instant::now();
        let result = finish(copy, None).expect("scores");
        let scored = started.elapsed();
        let started = Instant::now();
        let mut customers = Vec::new();
        write_customers(&result, &mut customers).expect("customers format");
        let formatted = started.elapsed();
        let mut segments = Vec::new();
        write_segments(&result, &mut segments).expect("segments format");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        customers.hash(&mut h);
        segments.hash(&mut h);
        format!("{:?}", result.cut_points).hash(&mut h);
        eprintln!(
            "round {round}: scored in {:.1} ms, customers.csv formatted in {:.1} ms ({} bytes); digest {:016x}",
            scored.as_secs_f64() * 1e3,
            formatted.as_secs_f64() * 1e3,
            customers.len(),
            h.finish()
        );
    }
}
