//! Result files (spec §6): `customers.csv`, `segments.csv` and `run.json`,
//! written under temporary names and renamed at the end, so a reader never
//! finds a half-written result.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::date;
use crate::error::{Error, Result};
use crate::report::RunReport;
use crate::score::RfmResult;

pub const CUSTOMERS_FILE: &str = "customers.csv";
pub const SEGMENTS_FILE: &str = "segments.csv";
pub const REPORT_FILE: &str = "run.json";

pub const CUSTOMERS_HEADER: [&str; 12] = [
    "customer_id",
    "recency",
    "frequency",
    "monetary",
    "first_purchase",
    "last_purchase",
    "country",
    "r",
    "f",
    "m",
    "rfm_score",
    "segment",
];

pub const SEGMENTS_HEADER: [&str; 8] = [
    "segment",
    "customers",
    "customers_share",
    "revenue",
    "revenue_share",
    "avg_recency",
    "avg_frequency",
    "avg_monetary",
];

fn out_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.to_path_buf(),
        source,
    }
}

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> Error + '_ {
    move |e| Error::Output {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Writes `customers.csv` to any writer.
pub fn write_customers<W: Write>(result: &RfmResult, out: W) -> csv::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    w.write_record(CUSTOMERS_HEADER)?;
    for c in &result.customers {
        w.write_record([
            c.customer_id.as_str(),
            &c.recency.to_string(),
            &c.frequency.to_string(),
            &c.monetary.to_fixed(2),
            &date::format_timestamp(c.first_purchase),
            &date::format_timestamp(c.last_purchase),
            &c.country,
            &c.r.to_string(),
            &c.f.to_string(),
            &c.m.to_string(),
            &c.rfm_score(),
            c.segment.name(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Writes `segments.csv` to any writer.
pub fn write_segments<W: Write>(result: &RfmResult, out: W) -> csv::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    w.write_record(SEGMENTS_HEADER)?;
    for s in &result.segments {
        w.write_record([
            s.segment.name(),
            &s.customers.to_string(),
            &s.customers_share,
            &s.revenue_text,
            &s.revenue_share,
            &s.avg_recency,
            &s.avg_frequency,
            &s.avg_monetary,
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Makes sure `dir` exists and can be written, before any work is done.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(out_err(dir))?;
    let probe = dir.join(format!(".rfm-write-test-{}", std::process::id()));
    fs::write(&probe, b"").map_err(out_err(dir))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// A set of files written under temporary names and renamed together.
struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    fn create(&mut self, dir: &Path, name: &str) -> Result<BufWriter<fs::File>> {
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = fs::File::create(&tmp).map_err(out_err(&tmp))?;
        self.files.push((tmp, dir.join(name)));
        Ok(BufWriter::with_capacity(1 << 20, file))
    }

    fn commit(mut self) -> Result<()> {
        for (tmp, dst) in std::mem::take(&mut self.files) {
            fs::rename(&tmp, &dst).map_err(out_err(&dst))?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn finish_file(mut w: BufWriter<fs::File>, path: &Path) -> Result<()> {
    w.flush().map_err(out_err(path))?;
    w.get_ref().sync_data().map_err(out_err(path))?;
    Ok(())
}

/// Writes the three result files into `dir`.
pub fn write_results(dir: &Path, result: &RfmResult, report: &RunReport) -> Result<()> {
    fs::create_dir_all(dir).map_err(out_err(dir))?;
    let mut staged = Staged { files: Vec::new() };
    let customers_path = dir.join(CUSTOMERS_FILE);
    let mut w = staged.create(dir, CUSTOMERS_FILE)?;
    write_customers(result, &mut w).map_err(csv_err(&customers_path))?;
    finish_file(w, &customers_path)?;
    let segments_path = dir.join(SEGMENTS_FILE);
    let mut w = staged.create(dir, SEGMENTS_FILE)?;
    write_segments(result, &mut w).map_err(csv_err(&segments_path))?;
    finish_file(w, &segments_path)?;
    write_report_into(&mut staged, dir, report)?;
    staged.commit()
}

fn write_report_into(staged: &mut Staged, dir: &Path, report: &RunReport) -> Result<()> {
    let path = dir.join(REPORT_FILE);
    let mut w = staged.create(dir, REPORT_FILE)?;
    serde_json::to_writer_pretty(&mut w, report).map_err(|e| Error::Output {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    w.write_all(b"\n").map_err(out_err(&path))?;
    finish_file(w, &path)
}

/// Writes only `run.json` (a failed run's report).
pub fn write_report(dir: &Path, report: &RunReport) -> Result<()> {
    fs::create_dir_all(dir).map_err(out_err(dir))?;
    let mut staged = Staged { files: Vec::new() };
    write_report_into(&mut staged, dir, report)?;
    staged.commit()
}
