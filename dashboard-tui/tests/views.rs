//! Every view rendered with ratatui's TestBackend at 80 × 24 and 160 × 48 on
//! runs of the real UCI file, checked against the spec's and the core's figures.

use std::collections::HashMap;

use crate::common::{fixture, line_with, loaded_app, press, render, render_buffer, type_text};
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Color;
use rfm_core::Segment;
use rfm_dashboard::app::App;
use rfm_dashboard::{loader, source};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

#[test]
fn overview_shows_segments_and_ledger() {
    let fx = fixture();
    let app = loaded_app(&fx.full);
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        let champions = line_with(&screen, "Champions ");
        assert!(champions.contains(" 632 "), "{w}x{h}: {champions}");
        assert!(champions.contains("48.7%"), "{w}x{h}: {champions}");
        assert!(champions.contains("4,339,953.67"), "{w}x{h}: {champions}");
        assert!(champions.contains("14.6%"), "{w}x{h}: {champions}");
        let hib = line_with(&screen, "Hibernating ");
        assert!(hib.contains("1,077") && hib.contains("24.8%"), "{hib}");
        for needle in [
            "as-of 2011-12-10",
            "4,338 customers",
            "revenue 8,911,407.90",
            "541,909",
            "397,884",
            "135,080",
            "8,905",
            "no malformed lines",
        ] {
            assert!(
                screen.contains(needle),
                "{w}x{h}: no {needle:?} in\n{screen}"
            );
        }
        assert!(
            line_with(&screen, "price <= 0").contains(" 40 "),
            "{screen}"
        );
        let status = screen.lines().last().unwrap();
        assert!(
            status.contains("4,338 customers, as-of 2011-12-10"),
            "{status}"
        );
    }
    // The large screen has room for the bar charts too.
    let large = render(&app, 160, 48);
    assert!(
        large.contains("Customers and revenue per segment"),
        "{large}"
    );
    let rule = line_with(&large, "R = 5 and F ≥ 4");
    assert!(rule.contains("632 customers"), "{rule}");
    assert!(
        line_with(&large, "R ≤ 2 and F ≤ 2").contains("1,077 customers"),
        "{large}"
    );
}

#[test]
fn overview_bars_toggle_on_small_screen() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('b')]);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("Customers and revenue per segment"),
        "{screen}"
    );
    let champions = line_with(&screen, "Champions ");
    assert!(
        champions.contains("█") && champions.contains("632") && champions.contains("48.7%"),
        "{champions}"
    );
    // Hibernating has the most customers: the longest customers bar.
    let bar_len = |l: &str| l.split('│').nth(1).map_or(0, |s| s.matches('█').count());
    let hib = line_with(&screen, "Hibernating ");
    assert!(bar_len(hib) > bar_len(champions), "{screen}");
}

#[test]
fn grid_shows_cells_with_segment_names() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('2')]);
    // The core's own per-cell counts, independent of the dashboard's reading.
    let mut cells = [[0u64; 5]; 5];
    for c in &fx.full_result.customers {
        cells[c.r as usize - 1][c.f as usize - 1] += 1;
    }
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(
            screen.contains("R × F grid: customers per cell"),
            "{screen}"
        );
        let r5 = line_with(&screen, "R 5");
        assert!(r5.contains("New") && r5.contains("Champions"), "{r5}");
        assert!(
            line_with(&screen, "R 1").contains("Hibernating"),
            "{screen}"
        );
        // New Customers is the single cell R5 F1: 42 customers (segments.csv).
        assert_eq!(cells[4][0], 42);
        let lines: Vec<&str> = screen.lines().collect();
        let r5_row = lines.iter().position(|l| l.contains("R 5")).unwrap();
        let values = lines[r5_row + 1];
        assert!(values.contains(" 42 "), "{values}");
        for f in 2..=5 {
            assert!(
                values.contains(&format!(" {} ", cells[4][f - 1])),
                "F{f}: {values}"
            );
        }
    }
    press(&mut app, &fx.full, &[KeyCode::Char('v')]);
    let screen = render(&app, 160, 48);
    assert!(screen.contains("revenue per cell"), "{screen}");
    assert!(
        screen.contains("16,304.94"),
        "New Customers' revenue\n{screen}"
    );
    assert!(
        screen.contains("27,216.23"),
        "Promising's revenue\n{screen}"
    );
}

#[test]
fn distributions_show_histograms() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('3')]);
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(screen.contains("Recency"), "{screen}");
        assert!(screen.contains("all customers (4,338)"), "{screen}");
        // as-of 2011-12-10; first invoice 2010-12-01: recency from 1 to 374 days.
        assert!(
            screen.contains("min 1 ") && screen.contains("max 374"),
            "{screen}"
        );
        assert!(screen.contains("linear bins"), "{screen}");
        assert!(screen.contains('█'), "{screen}");
    }
    // Monetary on a log scale, for Champions only.
    press(
        &mut app,
        &fx.full,
        &[KeyCode::Char('l'), KeyCode::Char('l'), KeyCode::Char('j')],
    );
    let first = app.current.as_ref().unwrap().segments[0].segment;
    assert_eq!(app.dist.segment, Some(first));
    assert_eq!(first, Segment::Champions);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("Monetary")
            && screen.contains("Champions (632)")
            && screen.contains("log bins"),
        "{screen}"
    );
    // Mean of Champions' monetary: avg_monetary of segments.csv.
    assert!(screen.contains("mean 6,867.02"), "{screen}");
    press(&mut app, &fx.full, &[KeyCode::Char('g')]);
    assert!(render(&app, 80, 24).contains("linear bins"));
}

#[test]
fn customers_table_search_and_detail() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('4')]);
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(screen.contains("4,338 of 4,338"), "{screen}");
        // Sorted by monetary, largest first: 14646 spent 279,489.02 in the UCI file.
        let top = fx
            .full_result
            .customers
            .iter()
            .max_by_key(|c| c.monetary)
            .unwrap();
        let row = line_with(&screen, &top.customer_id);
        assert!(
            row.contains(&common_group(&top.monetary.to_fixed(2))),
            "{row}"
        );
    }
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "12347");
    press(&mut app, &fx.full, &[KeyCode::Enter, KeyCode::Enter]);
    assert!(app.customers.detail);
    let c = fx
        .full_result
        .customers
        .iter()
        .find(|c| c.customer_id == "12347")
        .unwrap();
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(screen.contains("Customer 12347 · Champions"), "{screen}");
        assert!(screen.contains("R 5 · F 5 · M 5"), "{screen}");
        assert!(screen.contains("R = 5 and F ≥ 4"), "{screen}");
        assert!(
            screen.contains("4,310.00") && screen.contains("Iceland"),
            "{screen}"
        );
        // Cut points agree with the core's own.
        let (_, lo, hi) = fx
            .full_result
            .cut_points
            .recency
            .iter()
            .find(|x| x.0 == c.r)
            .unwrap();
        assert!(
            screen.contains(&format!("▶{lo} – {hi}")),
            "recency {lo}–{hi}\n{screen}"
        );
        let (_, lo, hi) = fx
            .full_result
            .cut_points
            .frequency
            .iter()
            .find(|x| x.0 == 1)
            .unwrap();
        assert!(
            screen.contains(&format!(" {lo} – {hi} ")),
            "frequency {lo}–{hi}\n{screen}"
        );
        let (_, lo, hi) = fx
            .full_result
            .cut_points
            .monetary
            .iter()
            .find(|x| x.0 == c.m)
            .unwrap();
        let text = format!("▶{} – {}", common_group(lo), common_group(hi));
        assert!(screen.contains(&text), "{text}\n{screen}");
    }
}

fn common_group(text: &str) -> String {
    rfm_dashboard::format::group(text)
}

#[test]
fn runs_history_and_movement() {
    let fx = fixture();
    let mut app = loaded_app(&fx.root);
    press(&mut app, &fx.root, &[KeyCode::Char('5')]);
    // Independent join of the two core results.
    let earlier: HashMap<&str, Segment> = fx
        .half_result
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c.segment))
        .collect();
    let later: HashMap<&str, Segment> = fx
        .full_result
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c.segment))
        .collect();
    let left_champions = earlier
        .iter()
        .filter(|(id, s)| **s == Segment::Champions && later.get(*id) != Some(&Segment::Champions))
        .count();
    let new_customers = later.keys().filter(|id| !earlier.contains_key(*id)).count();
    let champions_stayed = earlier
        .iter()
        .filter(|(id, s)| **s == Segment::Champions && later.get(*id) == Some(&Segment::Champions))
        .count();
    assert!(left_champions > 0 && new_customers > 0);
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(screen.contains("Runs (2)"), "{screen}");
        let newest = line_with(&screen, "2011-12-10T08:00:00Z");
        assert!(
            newest.contains('●') && newest.contains("4,338") && newest.contains("8,911,407.90"),
            "{newest}"
        );
        let older = line_with(&screen, "2011-08-13T08:00:00Z");
        assert!(older.contains('◆'), "{older}");
        assert!(screen.contains("Movement 2011-08 → 2011-12"), "{screen}");
        assert!(
            screen.contains(&format!(
                "left Champions {} (",
                common_group(&left_champions.to_string())
            )),
            "left Champions {left_champions}\n{screen}"
        );
        let row = line_with(&screen, "CH Champions");
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[2], champions_stayed.to_string(), "{row}");
        let new_row = line_with(&screen, "new in later run");
        // The eleven matrix cells after the label (a flow list may follow on wide screens).
        let sum: usize = new_row
            .split_whitespace()
            .skip_while(|t| t.parse::<usize>().is_err() && *t != "·")
            .take(11)
            .filter_map(|t| t.parse::<usize>().ok())
            .sum();
        assert_eq!(sum, new_customers, "{new_row}");
    }
    // Revenue at stake.
    press(&mut app, &fx.root, &[KeyCode::Char('v')]);
    let screen = render(&app, 160, 48);
    assert!(screen.contains("revenue at stake"), "{screen}");
    assert!(screen.contains("largest moves"), "{screen}");
    // Who left Champions: every customer of the older run is in the newer one
    // (its lines are a prefix of the file), so all of them are listed.
    press(&mut app, &fx.root, &[KeyCode::Char('L')]);
    assert_eq!(app.customers.visible.len(), left_champions);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("[left Champions since 2011-08"), "{screen}");
    assert!(!line_with(&screen, "RFM").is_empty());
    let listed = app.current.as_ref().unwrap();
    for &i in &app.customers.visible {
        let c = &listed.customers[i];
        assert_ne!(c.segment, Segment::Champions);
        assert_eq!(earlier[c.customer_id.as_str()], Segment::Champions);
    }
    // The detail says where a customer was in the compared run.
    press(&mut app, &fx.root, &[KeyCode::Enter]);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("· was Champions (5"), "{screen}");
    assert!(screen.contains(") in 2011-08"), "{screen}");
    press(&mut app, &fx.root, &[KeyCode::Esc, KeyCode::Esc]);
    assert_eq!(app.customers.visible.len(), 4_338);
}

#[test]
fn help_overlay_lists_keys() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('?')]);
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(
            screen.contains("Keys") && screen.contains("switch view") && screen.contains("quit"),
            "{screen}"
        );
    }
    // At 80×24 every line fits, the last key and the bottom border included.
    let screen = render(&app, 80, 24);
    assert!(screen.contains("list who left Champions"), "{screen}");
    assert!(
        screen.contains("clear the search, then the filter"),
        "{screen}"
    );
    let bottom = format!("└{}┘", "─".repeat(76));
    assert!(screen.lines().any(|l| l.contains(&bottom)), "{screen}");
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert!(!app.show_help);
}

#[test]
fn tiny_and_colorless_screens_do_not_panic() {
    let fx = fixture();
    let mut app = loaded_app(&fx.root);
    app.color = false;
    for view in ['1', '2', '3', '4', '5'] {
        press(&mut app, &fx.root, &[KeyCode::Char(view)]);
        for (w, h) in [(20, 5), (40, 10), (80, 24), (160, 48), (1, 1)] {
            let buffer = render_buffer(&app, w, h);
            // NO_COLOR: no foreground or background colour anywhere.
            for cell in buffer.content() {
                assert_eq!(
                    (cell.fg, cell.bg),
                    (Color::Reset, Color::Reset),
                    "view {view} at {w}x{h}"
                );
            }
        }
    }
    press(&mut app, &fx.root, &[KeyCode::Char('4'), KeyCode::Enter]);
    for (w, h) in [(20, 5), (40, 10), (80, 24)] {
        let _ = render(&app, w, h);
    }
}

#[test]
fn loading_and_errors_show_in_the_status_line() {
    let empty = tempfile::tempdir().unwrap();
    let src = source::open(&source::SourceSpec::Results(empty.path().to_path_buf())).unwrap();
    let mut app = App::new(src.describe(), true);
    let work = app.start();
    let screen = render(&app, 80, 24);
    assert!(
        line_with(&screen, "listing runs").contains("?:help"),
        "{screen}"
    );
    assert!(screen.contains("Loading…"), "{screen}");
    for command in work {
        assert!(app.apply(loader::execute(src.as_ref(), command)).is_empty());
    }
    let screen = render(&app, 80, 24);
    let status = screen.lines().last().unwrap();
    assert!(
        status.starts_with("error: ") && status.contains("no run found"),
        "{screen}"
    );
}

#[test]
fn failed_run_shows_its_error_and_ledger() {
    let fx = fixture();
    let root = tempfile::tempdir().unwrap();
    let report = std::fs::read_to_string(fx.full.join("run.json")).unwrap();
    let mut report: rfm_core::report::RunReport = serde_json::from_str(&report).unwrap();
    report.status = rfm_core::RunStatus::Failed;
    report.error = Some("too many malformed lines: 3 of 10".into());
    report.started_at = "2030-01-01T00:00:00Z".into();
    rfm_core::output::write_report(&root.path().join("broken"), &report).unwrap();
    let ok = root.path().join("ok");
    std::fs::create_dir_all(&ok).unwrap();
    for f in ["customers.csv", "segments.csv", "run.json"] {
        std::fs::copy(fx.full.join(f), ok.join(f)).unwrap();
    }
    let app = loaded_app(root.path());
    assert_eq!(app.runs[0].label, "broken", "newest first");
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("failed") && screen.contains("too many malformed lines"),
        "{screen}"
    );
    assert!(screen.contains("541,909"), "{screen}");
}

#[test]
fn unreadable_customers_file_names_file_and_line() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for f in ["segments.csv", "run.json"] {
        std::fs::copy(fx.full.join(f), dir.path().join(f)).unwrap();
    }
    let customers = std::fs::read_to_string(fx.full.join("customers.csv")).unwrap();
    let broken = customers.replacen(",Champions\n", ",Champs\n", 1);
    std::fs::write(dir.path().join("customers.csv"), broken).unwrap();
    let src = source::open(&source::SourceSpec::Results(dir.path().to_path_buf())).unwrap();
    let runs = src.list_runs().unwrap().runs;
    let err = src.load_run(&runs[0]).unwrap_err().to_string();
    assert!(
        err.contains("customers.csv:3:") && err.contains("Champs"),
        "{err}"
    );
}

#[test]
fn unreadable_run_folder_is_skipped_and_reported() {
    let fx = fixture();
    let root = tempfile::tempdir().unwrap();
    let ok = root.path().join("ok");
    std::fs::create_dir_all(&ok).unwrap();
    for f in ["customers.csv", "segments.csv", "run.json"] {
        std::fs::copy(fx.full.join(f), ok.join(f)).unwrap();
    }
    let bad = root.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("run.json"), "{ not json").unwrap();
    let src = source::open(&source::SourceSpec::Results(root.path().to_path_buf())).unwrap();
    let mut app = App::new(src.describe(), true);
    let mut work = app.start();
    while let Some(command) = work.pop() {
        let loaded = loader::execute(src.as_ref(), command);
        work.extend(app.apply(loaded));
    }
    assert_eq!(app.runs.len(), 1);
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);
    let screen = render(&app, 160, 48);
    let status = screen.lines().last().unwrap();
    assert!(
        status.contains("1 run folder(s) skipped") && status.contains("bad"),
        "{status}"
    );
    assert!(screen.contains("632"), "{screen}");
}

#[test]
fn detail_ranks_reproduce_the_engines_scores() {
    let fx = fixture();
    let app = loaded_app(&fx.full);
    let run = app.current.as_ref().unwrap();
    let n = run.customers.len();
    // The explanation holds for every customer: its rank on each metric falls
    // in the fifth that gives the score the engine wrote.
    for (i, c) in run.customers.iter().enumerate() {
        let score = |rank: u32| rfm_core::score::ntile(rank as usize - 1, n, 5);
        assert_eq!(score(run.ranks.recency[i]), c.r, "{}", c.customer_id);
        assert_eq!(score(run.ranks.frequency[i]), c.f, "{}", c.customer_id);
        assert_eq!(score(run.ranks.monetary[i]), c.m, "{}", c.customer_id);
    }
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "12347");
    press(&mut app, &fx.full, &[KeyCode::Enter, KeyCode::Enter]);
    let screen = render(&app, 80, 24);
    // 4,338 customers in fifths of 868, 868, 868, 867, 867.
    assert!(
        line_with(&screen, "  5   ").contains("3,472–4,338"),
        "{screen}"
    );
    assert!(line_with(&screen, "  1   ").contains("1–868"), "{screen}");
    assert!(screen.contains("ranks of 4,338: R "), "{screen}");
}

#[test]
fn hidden_temporary_folders_are_not_runs() {
    let fx = fixture();
    let root = tempfile::tempdir().unwrap();
    // What a crash while writing a run folder leaves: a complete hidden copy.
    for name in ["ok", ".ok.rfm-tmp-0123456789abcdef0123456789abcdef"] {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["customers.csv", "segments.csv", "run.json"] {
            std::fs::copy(fx.full.join(f), dir.join(f)).unwrap();
        }
    }
    let src = source::open(&source::SourceSpec::Results(root.path().to_path_buf())).unwrap();
    let listing = src.list_runs().unwrap();
    let labels: Vec<&str> = listing.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["ok"]);
}

#[test]
fn after_a_failed_run_the_two_latest_succeeded_runs_are_compared() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The fixture's two runs, and a newer run that failed (run.json alone).
    for run in ["2011-12", "2011-08"] {
        std::fs::create_dir(root.join(run)).unwrap();
        for f in std::fs::read_dir(fx.root.join(run)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), root.join(run).join(f.file_name())).unwrap();
        }
    }
    let mut failed = crate::common::read_report(&fx.full).unwrap();
    failed.run_id = "20300101T000000Z-failed".into();
    failed.started_at = "2030-01-01T00:00:00Z".into();
    failed.fail(rfm_core::report::Stage::Database, "the database went away");
    std::fs::create_dir(root.join("failed")).unwrap();
    std::fs::write(
        root.join("failed/run.json"),
        serde_json::to_vec_pretty(&failed).unwrap(),
    )
    .unwrap();

    let app = loaded_app(root);
    assert_eq!(app.runs.len(), 3);
    assert_eq!(app.runs[0].report.run_id, "20300101T000000Z-failed");
    let id = |r: &Option<std::sync::Arc<rfm_dashboard::data::RunData>>| {
        r.as_ref().map(|r| r.entry.report.run_id.clone())
    };
    assert_eq!(id(&app.current).as_deref(), Some(crate::common::FULL));
    assert_eq!(id(&app.baseline).as_deref(), Some(crate::common::HALF));
    assert_eq!(app.runs_selected, 1, "the run shown is selected in Runs");
    let movement = app.movement.as_ref().expect("a movement between them");
    let moved: u64 = movement.customers.iter().flatten().sum();
    assert_eq!(moved, 4_338, "every customer of either run, once");
}

#[test]
fn a_skipped_run_has_its_own_style_and_escaped_reason() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ok = root.join("ok");
    std::fs::create_dir(&ok).unwrap();
    for f in ["customers.csv", "segments.csv", "run.json"] {
        std::fs::copy(fx.full.join(f), ok.join(f)).unwrap();
    }
    let mut skipped = crate::common::read_report(&fx.full).unwrap();
    skipped.run_id = "20300101T000000Z-nightly".into();
    skipped.started_at = "2030-01-01T00:00:00Z".into();
    skipped.skip("nothing changed in \u{1b}[31mexports/\u{1b}[0m since the last run");
    std::fs::create_dir(root.join("nightly")).unwrap();
    std::fs::write(
        root.join("nightly/run.json"),
        serde_json::to_vec_pretty(&skipped).unwrap(),
    )
    .unwrap();

    let mut app = loaded_app(root);
    assert_eq!(app.runs[0].label, "nightly", "newest first");
    assert_eq!(app.runs[0].status, rfm_core::RunStatus::Skipped);
    press(&mut app, root, &[KeyCode::Char('5')]);
    for (w, h) in SIZES {
        let buffer = render_buffer(&app, w, h);
        let screen = render(&app, w, h);
        assert!(!screen.contains('\u{1b}'), "{screen}");
        let row = line_with(&screen, "2030-01-01T00:00:00Z");
        assert!(row.contains("skipped"), "{row}");
        let y = screen
            .lines()
            .position(|l| l.contains("2030-01-01T00:00:00Z"))
            .unwrap() as u16;
        let x = row
            .find("skipped")
            .map(|b| row[..b].chars().count())
            .unwrap() as u16;
        let cell = &buffer[(x, y)];
        assert_eq!(
            cell.fg,
            Color::Yellow,
            "a skipped run is not shown as failed"
        );
        assert_ne!(cell.fg, Color::Red);
    }
    // Opened, it says why it did not run, escaped, in the skipped style.
    press(
        &mut app,
        root,
        &[KeyCode::Up, KeyCode::Enter, KeyCode::Char('1')],
    );
    let screen = render(&app, 80, 24);
    let buffer = render_buffer(&app, 80, 24);
    let title = line_with(&screen, "Run 20300101T000000Z-nightly skipped");
    let y = screen.lines().position(|l| l == title).unwrap() as u16;
    let x = title.find("Run").unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Yellow, "{screen}");
    assert!(screen.contains("nothing changed in"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "{screen}");
    assert!(!screen.contains("failed"), "{screen}");
}
