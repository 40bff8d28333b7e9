//! The HTML pages as served (no browser): the figures against the
//! reference, escaping of ids and countries that hold markup, the 404 and
//! 400 pages, the CSV download, the security headers, and the listening
//! rule (beyond loopback a token, then sign-in).

use std::process::Command;

use crate::common::{self, fixture, request, text_of, Server, HALF};

#[test]
fn every_page_answers_with_the_reference_figures() {
    let s = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    let home = s.get("/");
    assert_eq!(home.status, 200);
    let csp = home.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = home.text();
    assert_eq!(text_of(&html, "kpi-customers").as_deref(), Some("4,338"));
    assert_eq!(
        text_of(&html, "kpi-revenue").as_deref(),
        Some("8,911,407.90")
    );
    let row = &html[html
        .find("<tr data-segment=\"Champions\"")
        .expect("Champions row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">632<"), "{row}");
    assert!(row.contains(">48.7%<"), "{row}");
    assert!(row.contains(">4,339,953.67<"), "{row}");
    assert!(html.contains("541,909"), "lines read in the ledger");
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline script or style"
    );

    for path in [
        "/heatmap",
        "/heatmap?by=revenue",
        "/distributions",
        "/distributions?segment=Champions&scale=log",
        "/customers",
        "/customers?segment=Champions&sort=-monetary&page=2",
        "/customers/14646",
        "/runs",
        "/movement",
        &format!("/?run={HALF}"),
        "/assets/app.js",
        "/assets/app.css",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let heat = s.get("/heatmap").text();
    // The R5 F5 cell links to its customers.
    assert!(
        heat.contains("href=\"/customers?r=5&amp;f=5\""),
        "heatmap links"
    );
    let champs = s.get("/customers?segment=Champions").text();
    assert_eq!(text_of(&champs, "total").as_deref(), Some("632"));
    let detail = s.get("/customers/14646").text();
    assert_eq!(text_of(&detail, "segment").as_deref(), Some("Champions"));
    assert!(detail.contains("R = 5 and F ≥ 4"));
    assert!(
        detail.contains("id=\"history\"") && detail.contains(HALF),
        "history names the older run"
    );
}

#[test]
fn unknown_things_are_404_pages_and_bad_parameters_400() {
    let s = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    for path in [
        "/?run=nope",
        "/customers/99999999",
        "/no-such-page",
        "/customers?run=nope",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().contains("id=\"not-found\""), "{path}");
    }
    let r = s.get("/customers?page=0");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("page=&quot;0&quot;"));
}

#[test]
fn csv_download_is_the_selection() {
    let s = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    let r = s.get("/customers.csv?segment=Champions&sort=-monetary");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, 1 + common::CHAMPIONS);
    assert!(lines[0].starts_with("customer_id,recency,frequency,monetary"));
    assert!(lines[1].starts_with("14646,"), "{}", lines[1]);
    assert!(lines[1..].iter().all(|l| l.ends_with(",Champions")));
    let all = s.get("/customers.csv").text();
    assert_eq!(all.lines().count() as u64, 1 + common::CUSTOMERS);
}

#[test]
fn markup_in_ids_and_countries_is_text() {
    let fx = fixture();
    let s = Server::start(&["--results", fx.xss_root.to_str().unwrap()]);
    let list = s.get("/customers").text();
    assert!(
        list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{list}"
    );
    assert!(!list.contains("<script>alert"), "raw markup in the page");
    assert!(!list.contains("<img src=x"), "raw markup in the page");
    assert!(list.contains("Côte &quot;d&#39;Ivoire&quot; &lt;b&gt;"));
    // The detail page of each id, by its percent-encoded URL.
    for id in [common::XSS_ID, common::XSS_ID2] {
        let path = format!("/customers/{}", rfm_web::params::component(id));
        let r = s.get(&path);
        assert_eq!(r.status, 200, "{path}");
        let html = r.text();
        assert!(!html.contains(id), "{id} unescaped");
        assert!(html.contains(&rfm_web::html::esc(id)));
        let (code, json) = s.json(&format!(
            "/api/customers/{}",
            rfm_web::params::component(id)
        ));
        assert_eq!(code, 200);
        assert_eq!(json["customer"]["customer_id"], id);
        assert_eq!(json["customer"]["country"], common::XSS_COUNTRY);
    }
}

#[test]
fn beyond_loopback_needs_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_rfm-web"))
        .args(["--results", fixture().xss_root.to_str().unwrap()])
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("RFM_WEB_TOKEN")
        .output()
        .expect("run rfm-web");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0") && err.contains("--token"),
        "{err}"
    );

    let token = "a-long-enough-web-token";
    let s = Server::start(&[
        "--results",
        fixture().xss_root.to_str().unwrap(),
        "--token",
        token,
    ]);
    assert_eq!(s.get("/api/runs").status, 401);
    let r = s.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(s.get("/login").status, 200);
    let bearer = format!("Bearer {token}");
    let ok = request(
        &s.addr,
        "GET",
        "/api/runs",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(ok.status, 200);
    let wrong = request(
        &s.addr,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer nope")],
        None,
    );
    assert_eq!(wrong.status, 401);
    // Sign in: the form sets a cookie that opens the pages.
    let form = format!("token={token}");
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let signed = request(&s.addr, "POST", "/login", &form_type, Some(form.as_bytes()));
    assert_eq!(signed.status, 303);
    let cookie = signed.header("set-cookie").expect("a cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    let page = request(&s.addr, "GET", "/", &[("Cookie", pair)], None);
    assert_eq!(page.status, 200);
    let bad = request(&s.addr, "POST", "/login", &form_type, Some(b"token=nope"));
    assert_eq!(bad.status, 401);
}

#[test]
fn a_skipped_run_is_listed_as_skipped_with_its_reason_escaped() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ok = root.join("2011-12");
    std::fs::create_dir(&ok).unwrap();
    for f in ["customers.csv", "segments.csv", "run.json"] {
        std::fs::copy(fx.full.join(f), ok.join(f)).unwrap();
    }
    let mut skipped: rfm_core::report::RunReport =
        serde_json::from_slice(&std::fs::read(fx.full.join("run.json")).unwrap()).unwrap();
    skipped.run_id = "20300101T000000Z-nightly".into();
    skipped.started_at = "2030-01-01T00:00:00Z".into();
    skipped.skip("no new <b>or</b> changed files");
    rfm_core::output::write_report(&root.join("nightly"), &skipped).unwrap();

    let s = Server::start(&["--results", root.to_str().unwrap()]);
    let html = s.get("/runs").text();
    let row = &html[html
        .find("20300101T000000Z-nightly")
        .expect("the skipped run")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("class=\"status status-skipped\"")
            && row.contains("no new &lt;b&gt;or&lt;/b&gt; changed files"),
        "{row}"
    );
    assert!(
        !row.contains("<b>") && !row.contains("status-failed"),
        "{row}"
    );
    // The run with results is still the latest and stays a plain status.
    assert!(html.contains("class=\"status status-succeeded\""), "{html}");
}
