//! The store over TLS against a real PostgreSQL with `ssl=on` that accepts
//! TCP connections only over TLS: every `sslmode` as libpq means it, the
//! certificate checks (CA, host name), clear failures, and a real run
//! published over `verify-full`.

use rfm_store::testing::{self, TestDatabase, TestPki};
use rfm_store::{Error, Store};

use crate::common::*;

const PASSWORD: &str = "pw-never-shown-7f3a";

/// `db`'s URL with a password (ignored by the server's trust auth, so it
/// can be checked to stay out of messages) and `params`.
fn url(db: &TestDatabase, params: &str) -> String {
    let url = db.url.replacen(
        "postgresql://postgres@",
        &format!("postgresql://postgres:{PASSWORD}@"),
        1,
    );
    format!("{url}?{params}")
}

fn ca_param() -> String {
    format!("sslrootcert={}", testing::tls_server().ca_file().display())
}

/// Whether the store's own session is encrypted, as the server sees it.
fn session_is_encrypted(store: &mut Store) -> bool {
    store
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0)
}

/// The connection error of `url`, checked to name the host and never the password.
fn connect_error(url: &str, host: &str) -> String {
    let e = match Store::connect(url) {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e,
    };
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&format!("host {host}")), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    text
}

#[test]
fn verify_full_with_the_servers_ca_gives_an_encrypted_session() {
    let server = testing::tls_server();
    let db = server.database();
    let mut store = Store::connect(&url(&db, &format!("sslmode=verify-full&{}", ca_param())))
        .expect("verify-full with the right CA");
    assert!(session_is_encrypted(&mut store));

    // The key=value form of the same settings.
    let key_values = format!(
        "host=localhost port={} user=postgres dbname={} sslmode=verify-full sslrootcert='{}'",
        server.port(),
        db.name(),
        server.ca_file().display()
    );
    let mut store = Store::connect(&key_values).expect("key=value form");
    assert!(session_is_encrypted(&mut store));

    // By IP address: 127.0.0.1 is in the certificate too.
    let by_ip = url(&db, &format!("sslmode=verify-full&{}", ca_param())).replacen(
        "@localhost:",
        "@127.0.0.1:",
        1,
    );
    let mut store = Store::connect(&by_ip).expect("verify-full by IP");
    assert!(session_is_encrypted(&mut store));
}

#[test]
fn a_ca_that_did_not_sign_the_server_certificate_is_refused() {
    let db = testing::tls_server().database();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    TestPki::new(&["localhost"]).write_ca(&other_ca);
    for mode in ["verify-full", "verify-ca", "require"] {
        let text = connect_error(
            &url(
                &db,
                &format!("sslmode={mode}&sslrootcert={}", other_ca.display()),
            ),
            "localhost",
        );
        assert!(
            text.contains(&format!(
                "not accepted by sslrootcert={} (sslmode={mode})",
                other_ca.display()
            )) && text.contains("invalid peer certificate"),
            "{text}"
        );
    }
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let db = testing::tls_server().database();
    // Dialled at 127.0.0.1 under a name the certificate does not hold.
    let wrong_name = |mode: &str| {
        url(
            &db,
            &format!("sslmode={mode}&{}&hostaddr=127.0.0.1", ca_param()),
        )
        .replacen("@localhost:", "@db.wrong-name.test:", 1)
    };
    let text = connect_error(&wrong_name("verify-full"), "db.wrong-name.test");
    assert!(
        text.contains("does not name the host \"db.wrong-name.test\" (sslmode=verify-full")
            && text.contains("sslmode=verify-ca"),
        "{text}"
    );
    let mut store = Store::connect(&wrong_name("verify-ca")).expect("verify-ca ignores the name");
    assert!(session_is_encrypted(&mut store));
}

#[test]
fn require_without_a_ca_encrypts_without_checking() {
    let db = testing::tls_server().database();
    let mut store = Store::connect(&url(&db, "sslmode=require")).expect("require");
    assert!(session_is_encrypted(&mut store));
    // prefer (libpq's default, and the default here) takes TLS when offered.
    let mut store = Store::connect(&db.url).expect("no sslmode: prefer");
    assert!(session_is_encrypted(&mut store));
}

#[test]
fn sslmode_disable_against_a_tls_only_server_says_tls_is_required() {
    let db = testing::tls_server().database();
    let text = connect_error(&url(&db, "sslmode=disable"), "localhost");
    assert!(
        text.contains("no encryption")
            && text.contains("requires TLS")
            && text.contains("sslmode=verify-full"),
        "{text}"
    );
}

#[test]
fn verify_full_against_a_server_without_tls_says_so() {
    // The plain test server has ssl off.
    let db = testing::database();
    let text = connect_error(
        &format!("{}?sslmode=verify-full&{}", db.url, ca_param()),
        "127.0.0.1",
    );
    assert!(
        text.contains("server does not support TLS")
            && text.contains("sslmode=verify-full needs TLS but the server"),
        "{text}"
    );
}

#[test]
fn a_real_run_published_over_verify_full_lands() {
    let input = real_data("online_retail_ii_2009-12_extract.csv");
    let result = result_of(&input);
    let db = testing::tls_server().database();
    let mut store = Store::connect(&url(&db, &format!("sslmode=verify-full&{}", ca_param())))
        .expect("connect over verify-full");
    crate::publish(&mut store, &input, &result);
    let mut c = db.client();
    let segments = text_rows(
        &mut c,
        "SELECT segment, customers::text, customers_share::text, revenue::text,
                revenue_share::text, avg_recency::text, avg_frequency::text, avg_monetary::text
         FROM rfm_latest_segments ORDER BY segment COLLATE \"C\"",
    );
    assert_eq!(
        to_csv(&rfm_core::output::SEGMENTS_HEADER, &segments),
        segments_csv(&result)
    );
    let customers: i64 = c
        .query_one("SELECT count(*) FROM rfm_latest_customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(customers as usize, result.customers.len());
}
