//! The run report (`run.json`, [`rfm_core::report::RunReport`]) to and from
//! its wire form: the coordinator sends it in `GetJobResult` as protobuf
//! fields, never as JSON text inside a message.

use rfm_core::ledger::Excluded;
use rfm_core::report::{FileColumns, ReportOptions, ReportSample, RunReport, Stage};
use rfm_core::{RunOptions, RunStatus};

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

fn status_to_proto(status: &str) -> v1::RunStatus {
    match RunStatus::parse_reported(status) {
        Some(RunStatus::Running) => v1::RunStatus::Running,
        Some(RunStatus::Succeeded) => v1::RunStatus::Succeeded,
        Some(RunStatus::Failed) => v1::RunStatus::Failed,
        _ => v1::RunStatus::Unspecified,
    }
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
        status: status_to_proto(&r.status) as i32,
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
            })
            .collect(),
        options: Some(v1::ReportOptions {
            delimiter: r.options.delimiter.clone(),
            decimal_comma: r.options.decimal_comma,
            date_format: r.options.date_format.clone(),
            as_of: r.options.as_of.clone(),
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
    // Built on an empty report: a field the wire does not carry keeps its
    // value there.
    let mut r = RunReport::before_input(&p.run_id, "", &RunOptions::default());
    r.status = status.to_string();
    r.input = p.input.clone();
    r.files = p
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
        })
        .collect();
    r.options = ReportOptions {
        delimiter: options.delimiter.clone(),
        decimal_comma: options.decimal_comma,
        date_format: options.date_format.clone(),
        as_of: options.as_of.clone(),
        max_malformed_share: options.max_malformed_share,
        chunk_size: options.chunk_size,
    };
    r.lines_read = p.lines_read;
    r.purchase_lines = p.purchase_lines;
    let excluded = p.excluded.unwrap_or_default();
    r.excluded = Excluded {
        missing_customer: excluded.missing_customer,
        cancellation: excluded.cancellation,
        quantity_le_0: excluded.quantity_le_0,
        price_le_0: excluded.price_le_0,
    };
    r.malformed = p.malformed;
    r.malformed_samples = p
        .malformed_samples
        .iter()
        .map(|m| ReportSample {
            file: m.file.clone(),
            line: m.line,
            text: m.text.clone(),
            problem: m.problem.clone(),
        })
        .collect();
    r.customers = p.customers;
    r.as_of = p.as_of.clone();
    r.latest_purchase = p.latest_purchase.clone();
    r.revenue = p.revenue.clone();
    r.started_at = p.started_at.clone();
    r.finished_at = p.finished_at.clone();
    r.seconds = p.seconds;
    r.error = p.error.clone();
    r.stage = stage;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }];
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
        assert_eq!(from_proto(&to_proto(&r)).unwrap(), r);

        let mut ok = RunReport::before_input("r", "x", &RunOptions::default());
        ok.status = RunStatus::Succeeded.to_string();
        ok.as_of = Some("2011-12-10".into());
        ok.revenue = Some("12.50".into());
        assert_eq!(from_proto(&to_proto(&ok)).unwrap(), ok);
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
