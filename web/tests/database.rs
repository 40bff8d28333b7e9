//! rfm-web reading the runs from a real PostgreSQL server (a throwaway one
//! unless RFM_TEST_DATABASE_URL or DATABASE_URL names one), holding the
//! same two runs of the real UCI file: the API and the pages give the
//! reference figures, the same as from the result folders; a database that
//! goes away gives a 503 page with a banner, and the pages come back with
//! it.

use std::time::{Duration, Instant};

use crate::common::{self, fixture, published, text_of, Server, FULL, HALF};

#[test]
fn the_database_gives_what_the_folders_give() {
    let db = published();
    let s = Server::start(&["--database-url", &db.url]);
    let files = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    let (code, runs) = s.json("/api/runs");
    assert_eq!(code, 200);
    assert_eq!(runs["runs"][0]["run_id"], FULL);
    assert_eq!(runs["runs"][1]["run_id"], HALF);
    let (code, seg) = s.json("/api/segments");
    assert_eq!(code, 200);
    assert_eq!(seg["customers"], common::CUSTOMERS);
    assert_eq!(seg["segments"], files.json("/api/segments").1["segments"]);
    for path in [
        "/api/customers?sort=-monetary&size=200",
        "/api/customers?segment=At%20Risk&sort=country&page=2",
        "/api/customers/14646",
        "/api/movement",
    ] {
        assert_eq!(s.json(path), files.json(path), "{path}");
    }
    let html = s.get("/").text();
    assert_eq!(text_of(&html, "kpi-customers").as_deref(), Some("4,338"));
    assert!(html.contains(">48.7%<"));
}

#[test]
fn a_database_that_goes_away_shows_a_banner_and_recovers() {
    let db = published();
    let s = Server::start(&["--database-url", &db.url]);
    assert_eq!(s.get("/").status, 200);
    db.cut_off();
    let down = s.get("/");
    assert_eq!(down.status, 503);
    let html = down.text();
    assert!(
        html.contains("id=\"banner\"") && html.contains("cannot be read"),
        "{html}"
    );
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "the page retries by itself"
    );
    let (code, err) = s.json("/api/segments");
    assert_eq!(code, 503);
    assert!(err["error"].is_string());
    db.reopen();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get("/");
        if r.status == 200 {
            assert_eq!(
                text_of(&r.text(), "kpi-customers").as_deref(),
                Some("4,338")
            );
            break;
        }
        assert!(Instant::now() < deadline, "still {} after reopen", r.status);
        std::thread::sleep(Duration::from_millis(200));
    }
}
