//! The run report (`run.json`, [`rfm_core::report::RunReport`]) to and from
//! its wire form: the coordinator sends it in `GetJobResult` as protobuf
//! fields, never as JSON text inside a message.

use rfm_core::ledger::Excluded;
use rfm_core::report::{
    CacheUse, FileColumns, ReportOptions, ReportSample, RunReport, Stage, UploadedFile,
};
use rfm_core::score::CutPoints;
use rfm_core::RunStatus;

use crate::v1;

fn stage_to_proto(stage: Option<Stage>) -> v1::Stage {
    match stage {
        None => v1::Stage::Unspecified,
        Some(Stage::Input) => v1::Stage::Input,
        Some(Stage::Header) => v1::Stage::Header,
        Some(Stage::Planning) => v1::Stage::Planning,
        Some(Stage::Tasks) => v1::Stage::Tasks,
        Some(Stage::MalformedLimit) => v1::Stage::MalformedLimit,
        Some(Stage::AsOf) => v1::Stage::AsOf,
        Some(Stage::Scoring) => v1::Stage::Scoring,
        Some(Stage::Writing) => v1::Stage::Writing,
        Some(Stage::Database) => v1::Stage::Database,
        Some(Stage::Interrupted) => v1::Stage::Interrupted,
    }
}

fn stage_from_proto(stage: v1::Stage) -> Option<Stage> {
    Some(match stage {
        v1::Stage::Unspecified => return None,
        v1::Stage::Input => Stage::Input,
        v1::Stage::Header => Stage::Header,
        v1::Stage::Planning => Stage::Planning,
        v1::Stage::Tasks => Stage::Tasks,
        v1::Stage::MalformedLimit => Stage::MalformedLimit,
        v1::Stage::AsOf => Stage::AsOf,
        v1::Stage::Scoring => Stage::Scoring,
        v1::Stage::Writing => Stage::Writing,
        v1::Stage::Database => Stage::Database,
        v1::Stage::Interrupted => Stage::Interrupted,
    })
}

fn status_to_proto(status: RunStatus) -> v1::RunStatus {
    match status {
        RunStatus::Running => v1::RunStatus::Running,
        RunStatus::Succeeded => v1::RunStatus::Succeeded,
        RunStatus::Failed => v1::RunStatus::Failed,
        // Database statuses are not reported.
        RunStatus::Published | RunStatus::Abandoned | RunStatus::Skipped => {
            v1::RunStatus::Unspecified
        }
    }
}

fn cut_points_to_proto(c: &CutPoints) -> v1::CutPoints {
    v1::CutPoints {
        recency: c
            .recency
            .iter()
            .map(|&(score, low, high)| v1::SignedBounds {
                score: score.into(),
                low,
                high,
            })
            .collect(),
        frequency: c
            .frequency
            .iter()
            .map(|&(score, low, high)| v1::UnsignedBounds {
                score: score.into(),
                low,
                high,
            })
            .collect(),
        monetary: c
            .monetary
            .iter()
            .map(|(score, low, high)| v1::DecimalBounds {
                score: (*score).into(),
                low: low.clone(),
                high: high.clone(),
            })
            .collect(),
    }
}

/// A score of the wire (1-5).
fn score(score: u32) -> Result<u8, String> {
    u8::try_from(score)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| format!("cut points name score {score}, not 1-5"))
}

fn cut_points_from_proto(c: &v1::CutPoints) -> Result<CutPoints, String> {
    Ok(CutPoints {
        recency: c
            .recency
            .iter()
            .map(|b| Ok((score(b.score)?, b.low, b.high)))
            .collect::<Result<_, String>>()?,
        frequency: c
            .frequency
            .iter()
            .map(|b| Ok((score(b.score)?, b.low, b.high)))
            .collect::<Result<_, String>>()?,
        monetary: c
            .monetary
            .iter()
            .map(|b| Ok((score(b.score)?, b.low.clone(), b.high.clone())))
            .collect::<Result<_, String>>()?,
    })
}

fn status_from_proto(status: v1::RunStatus) -> Result<RunStatus, String> {
    match status {
        v1::RunStatus::Running => Ok(RunStatus::Running),
        v1::RunStatus::Succeeded => Ok(RunStatus::Succeeded),
        v1::RunStatus::Failed => Ok(RunStatus::Failed),
        v1::RunStatus::Unspecified => Err("the report has no run status".into()),
    }
}

/// The wire form of a run report.
pub fn to_proto(r: &RunReport) -> v1::RunReport {
    v1::RunReport {
        run_id: r.run_id.clone(),
        status: status_to_proto(r.status) as i32,
        input: r.input.clone(),
        files: r
            .files
            .iter()
            .map(|f| v1::FileColumns {
                file: f.file.clone(),
                bytes: f.bytes,
                columns: f
                    .columns
                    .iter()
                    .map(|(role, name)| v1::ColumnName {
                        role: role.clone(),
                        name: name.clone(),
                    })
                    .collect(),
                date_form: f.date_form.clone(),
            })
            .collect(),
        options: Some(v1::ReportOptions {
            delimiter: r.options.delimiter.clone(),
            decimal_comma: r.options.decimal_comma,
            date_format: r.options.date_format.clone(),
            as_of: r.options.as_of.clone(),
            until: r.options.until.clone(),
            max_malformed_share: r.options.max_malformed_share,
            chunk_size: r.options.chunk_size,
        }),
        lines_read: r.lines_read,
        purchase_lines: r.purchase_lines,
        excluded: Some(v1::Excluded {
            missing_customer: r.excluded.missing_customer,
            cancellation: r.excluded.cancellation,
            quantity_le_0: r.excluded.quantity_le_0,
            price_le_0: r.excluded.price_le_0,
            after_until: r.excluded.after_until,
        }),
        malformed: r.malformed,
        malformed_samples: r
            .malformed_samples
            .iter()
            .map(|m| v1::MalformedSample {
                file: m.file.clone(),
                line: m.line,
                text: m.text.clone(),
                problem: m.problem.clone(),
            })
            .collect(),
        customers: r.customers,
        as_of: r.as_of.clone(),
        latest_purchase: r.latest_purchase.clone(),
        revenue: r.revenue.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        seconds: r.seconds,
        error: r.error.clone(),
        stage: stage_to_proto(r.stage) as i32,
        cut_points: r.cut_points.as_ref().map(cut_points_to_proto),
        first_purchase: r.first_purchase.clone(),
        warnings: r.warnings.clone(),
        cache: r.cache.as_ref().map(|c| v1::CacheUse {
            hits: c.hits,
            computed: c.computed,
            warnings: c.warnings.clone(),
        }),
        upload: r.upload.as_ref().map(upload_to_proto),
    }
}

/// The wire form of an uploaded file's record.
pub fn upload_to_proto(u: &UploadedFile) -> v1::UploadedFile {
    v1::UploadedFile {
        file: u.file.clone(),
        bytes: u.bytes,
        sha256: u.sha256.clone(),
    }
}

/// An uploaded file's record from the wire.
pub fn upload_from_proto(u: &v1::UploadedFile) -> UploadedFile {
    UploadedFile {
        file: u.file.clone(),
        bytes: u.bytes,
        sha256: u.sha256.clone(),
    }
}

/// A run report from the wire (an unknown status or stage is an error).
pub fn from_proto(p: &v1::RunReport) -> Result<RunReport, String> {
    let status = v1::RunStatus::try_from(p.status)
        .map_err(|_| format!("unknown run status {}", p.status))
        .and_then(status_from_proto)?;
    let stage = v1::Stage::try_from(p.stage)
        .map(stage_from_proto)
        .map_err(|_| format!("unknown stage {}", p.stage))?;
    let options = p.options.as_ref().ok_or("the report has no options")?;
    // A struct literal: a field added to the report does not compile here
    // until the wire carries it.
    Ok(RunReport {
        run_id: p.run_id.clone(),
        status,
        input: p.input.clone(),
        files: p
            .files
            .iter()
            .map(|f| FileColumns {
                file: f.file.clone(),
                bytes: f.bytes,
                columns: f
                    .columns
                    .iter()
                    .map(|c| (c.role.clone(), c.name.clone()))
                    .collect(),
                date_form: f.date_form.clone(),
            })
            .collect(),
        options: ReportOptions {
            delimiter: options.delimiter.clone(),
            decimal_comma: options.decimal_comma,
            date_format: options.date_format.clone(),
            as_of: options.as_of.clone(),
            until: options.until.clone(),
            max_malformed_share: options.max_malformed_share,
            chunk_size: options.chunk_size,
        },
        lines_read: p.lines_read,
        purchase_lines: p.purchase_lines,
        excluded: {
            let excluded = p.excluded.unwrap_or_default();
            Excluded {
                missing_customer: excluded.missing_customer,
                cancellation: excluded.cancellation,
                quantity_le_0: excluded.quantity_le_0,
                price_le_0: excluded.price_le_0,
                after_until: excluded.after_until,
            }
        },
        malformed: p.malformed,
        malformed_samples: p
            .malformed_samples
            .iter()
            .map(|m| ReportSample {
                file: m.file.clone(),
                line: m.line,
                text: m.text.clone(),
                problem: m.problem.clone(),
            })
            .collect(),
        customers: p.customers,
        as_of: p.as_of.clone(),
        first_purchase: p.first_purchase.clone(),
        latest_purchase: p.latest_purchase.clone(),
        revenue: p.revenue.clone(),
        warnings: p.warnings.clone(),
        started_at: p.started_at.clone(),
        finished_at: p.finished_at.clone(),
        seconds: p.seconds,
        error: p.error.clone(),
        stage,
        cut_points: p
            .cut_points
            .as_ref()
            .map(cut_points_from_proto)
            .transpose()?,
        cache: p.cache.as_ref().map(|c| CacheUse {
            hits: c.hits,
            computed: c.computed,
            warnings: c.warnings.clone(),
        }),
        upload: p.upload.as_ref().map(upload_from_proto),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfm_core::RunOptions;

    #[test]
    fn a_failed_report_with_samples_round_trips() {
        let mut r = RunReport::before_input(
            "20111210T101500Z-3fa9c2e1",
            "in.csv",
            &RunOptions::default(),
        );
        r.files = vec![FileColumns {
            file: "in.csv".into(),
            bytes: 42,
            columns: vec![("customer".into(), "Customer ID".into())],
            date_form: Some("ISO (YYYY-MM-DD HH:MM)".into()),
        }];
        r.warnings = vec!["in.csv: ambiguous dates".into()];
        r.first_purchase = Some("2010-12-01".into());
        r.cache = Some(CacheUse {
            hits: 12,
            computed: 1,
            warnings: vec!["cache entry x.state is not usable".into()],
        });
        r.excluded.after_until = 3;
        r.options.until = Some("2011-06-30".into());
        r.lines_read = 10;
        r.purchase_lines = 7;
        r.excluded.cancellation = 2;
        r.malformed = 1;
        r.malformed_samples = vec![ReportSample {
            file: "in.csv".into(),
            line: Some(3),
            text: "a;b\u{1}".into(),
            problem: "bad price".into(),
        }];
        r.finished_at = "2011-12-10T10:15:01Z".into();
        r.seconds = 1.25;
        r.fail(Stage::MalformedLimit, "too many malformed lines");
        r.upload = Some(UploadedFile {
            file: "/home/me/in.csv".into(),
            bytes: 42,
            sha256: "ab".repeat(32),
        });
        assert_eq!(from_proto(&to_proto(&r)).unwrap(), r);

        let mut ok = RunReport::before_input("r", "x", &RunOptions::default());
        ok.status = RunStatus::Succeeded;
        ok.as_of = Some("2011-12-10".into());
        ok.revenue = Some("12.50".into());
        ok.cut_points = Some(CutPoints {
            recency: vec![(1, 200, 373), (5, 0, 16)],
            frequency: vec![(1, 1, 1), (5, 7, 210)],
            monetary: vec![
                (1, "-4287.63".into(), "251.80".into()),
                (5, "2000.01".into(), "279489.02".into()),
            ],
        });
        assert_eq!(from_proto(&to_proto(&ok)).unwrap(), ok);
        let mut p = to_proto(&ok);
        p.cut_points.as_mut().unwrap().frequency[0].score = 6;
        assert!(from_proto(&p).unwrap_err().contains("score 6"));
    }

    #[test]
    fn a_report_without_status_or_with_an_unknown_stage_is_refused() {
        let r = RunReport::before_input("r", "x", &RunOptions::default());
        let mut p = to_proto(&r);
        p.status = v1::RunStatus::Unspecified as i32;
        assert!(from_proto(&p).is_err());
        let mut p = to_proto(&r);
        p.stage = 99;
        assert!(from_proto(&p).is_err());
    }
}
