//! Data strings on the dashboard's screens: a country or a malformed sample
//! with terminal escape sequences is shown with its control characters
//! escaped (`\x1b`), never raw and never silently dropped.

use std::path::Path;

use crate::common::{loaded_app, press, render, write_run};
use ratatui::crossterm::event::KeyCode;

/// Good lines (one customer's country colours the terminal) and one
/// malformed line that retitles and clears it.
fn hostile_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
    for i in 0..300 {
        let (customer, country) = if i == 0 {
            (11111, "UK\u{1b}[31mred\u{9b}1m")
        } else {
            (12000 + i % 40, "France")
        };
        text.push_str(&format!(
            "{},1,12/1/2010 8:26,2.5,{customer},{country}\n",
            1000 + i
        ));
    }
    text.push_str("9999,2\u{1b}]0;pwned\u{7}\u{1b}[2J,12/1/2010 8:26,2.5,17850,UK\n");
    let path = dir.join("h.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_no_control(screen: &str, what: &str) {
    let found: Vec<char> = screen
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        found.is_empty(),
        "{what}: control characters {found:?} in\n{screen}"
    );
}

#[test]
fn control_characters_in_data_are_shown_escaped() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    write_run(
        &hostile_csv(d.path()),
        &out,
        "escaping",
        "2011-12-10T08:00:00Z",
    );
    let mut app = loaded_app(&out);
    let overview = render(&app, 160, 48);
    assert_no_control(&overview, "overview");
    assert!(
        overview.contains("]0;pwned") && !overview.contains("2]0;pwned"),
        "the sample is shown with its escapes visible:\n{overview}"
    );
    press(&mut app, &out, &[KeyCode::Char('4')]);
    let customers = render(&app, 160, 48);
    assert_no_control(&customers, "customers");
    assert!(
        customers.contains("UK\\x1b[31mred\\u{9b}1m"),
        "the country is shown escaped:\n{customers}"
    );
}
