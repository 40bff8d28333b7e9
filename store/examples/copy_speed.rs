//! Load speed of [`Store::publish`] against `psql \copy` of the same rows.
//!
//! `cargo run --release -p rfm-store --example copy_speed -- URL [COPIES]`
//! publishes the UCI file's customers repeated COPIES times (default 104,
//! about 451k customers), then loads the same rows with `psql \copy` from a CSV
//! file into the same table, and prints both times.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rfm_core::engine;
use rfm_core::report::{self, RunReport};
use rfm_core::{output, RunOptions};
use rfm_store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: copy_speed URL [COPIES]")?;
    let copies: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(104);
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real/online_retail.csv");
    let opts = RunOptions::default();
    let files = engine::open_inputs(&input.display().to_string(), &opts.parse)?;
    let (ledger, result) = engine::finish_run(engine::run_local(&files, &opts)?, &files, &opts);
    let mut result = result?;
    let base = std::mem::take(&mut result.customers);
    for k in 0..copies {
        for c in &base {
            let mut c = c.clone();
            c.customer_id = format!("{}-{k}", c.customer_id);
            result.customers.push(c);
        }
    }
    let n = result.customers.len();

    let mut store = Store::connect(&url)?;
    let mut rep = RunReport::begin(&report::new_run_id(), &files, &opts);
    rep.customers = n as u64;
    rep.set_ledger(&ledger);
    let run = store.begin_run(&rep, &rfm_store::Lease::with_defaults("copy-speed"))?;
    let started = Instant::now();
    store.publish(run, &rep, &result)?;
    let ours = started.elapsed().as_secs_f64();
    println!("publish (binary COPY, one transaction): {n} customers in {ours:.3} s");

    // The same rows as CSV for psql \copy, into a second run.
    let mut rep2 = rep.clone();
    rep2.run_id = format!("{}-psql", rep.run_id);
    let run2 = store.begin_run(&rep2, &rfm_store::Lease::with_defaults("copy-speed"))?;
    let csv_path = std::env::temp_dir().join(format!("rfm-copy-speed-{}.csv", std::process::id()));
    {
        let mut buf = Vec::new();
        output::write_customers(&result, &mut buf)?;
        let text = String::from_utf8(buf)?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        for (line, c) in text.lines().skip(1).zip(&result.customers) {
            // Exact monetary, as publish stores it.
            let mut fields: Vec<String> = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes())
                .records()
                .next()
                .ok_or("empty")??
                .iter()
                .map(str::to_string)
                .collect();
            fields[3] = c.monetary.to_exact_string();
            let mut wr = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            wr.write_record(std::iter::once(run2.0.to_string()).chain(fields))?;
            w.write_all(&wr.into_inner()?)?;
        }
    }
    let started = Instant::now();
    let status = std::process::Command::new("psql")
        .arg(&url)
        .arg("-q")
        .arg("-c")
        .arg(format!(
            "\\copy rfm_customers (run, customer_id, recency, frequency, monetary, first_purchase, \
             last_purchase, country, r, f, m, rfm_score, segment) FROM '{}' WITH (FORMAT csv)",
            csv_path.display()
        ))
        .status()?;
    let psql = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&csv_path);
    if !status.success() {
        return Err("psql \\copy failed".into());
    }
    println!("psql \\copy (CSV):                      {n} customers in {psql:.3} s");
    println!("speed ratio (psql time / publish time): {:.2}", psql / ours);
    Ok(())
}
