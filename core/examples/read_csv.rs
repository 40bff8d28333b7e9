//! Reads one CSV file's records on one thread, as a sub-range is read
//! (split, classified, folded into a state), and prints the line counts and
//! the customers: a small program to profile the CSV reader alone
//! (`valgrind --tool=callgrind`) without the cluster around it.
//!
//! `cargo run --release -p rfm-core --example read_csv -- FILE`

use rfm_core::engine::{open_inputs, InputReader};
use rfm_core::parse::{parse_range_into, RangeSpec};
use rfm_core::PartialState;

fn main() {
    let file = std::env::args().nth(1).expect("usage: read_csv FILE");
    let opts = rfm_core::RunOptions::default();
    let files = open_inputs(&file, &opts.parse).expect("input opens");
    let input = &files[0];
    let reader = InputReader::open_planned(input, None).expect("reader");
    let mut bytes = Vec::new();
    let start = input.layout.data_start;
    reader.read(start, reader.size(), &mut bytes).expect("read");
    let mut state = PartialState::new();
    state.reserve_for_input(bytes.len());
    let range = RangeSpec {
        file_index: 0,
        base: start,
    };
    let ledger = parse_range_into(
        &bytes,
        range,
        &input.layout.columns,
        &opts.parse,
        &mut state,
    );
    println!(
        "lines {} purchases {} customers {}",
        ledger.lines_read,
        ledger.purchase_lines,
        state.customer_count()
    );
}
