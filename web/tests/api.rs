//! The JSON API on result folders of the real UCI file: status codes,
//! shapes, paging bounds, sorting and filters, checked against the
//! reference figures (4,338 customers, Champions 632 with 48.7 % of the
//! revenue).

use serde_json::Value;

use crate::common::{self, fixture, Server, FULL, HALF};

fn server() -> Server {
    Server::start(&["--results", fixture().root.to_str().unwrap()])
}

fn champions(segments: &Value) -> &Value {
    segments["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == "Champions")
        .expect("a Champions row")
}

#[test]
fn runs_and_segments_match_the_reference() {
    let s = server();
    let (code, runs) = s.json("/api/runs");
    assert_eq!(code, 200);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], FULL);
    assert_eq!(runs[0]["latest"], true);
    assert_eq!(runs[1]["run_id"], HALF);
    assert_eq!(runs[1]["latest"], false);

    let (code, seg) = s.json("/api/segments");
    assert_eq!(code, 200);
    assert_eq!(seg["run_id"], FULL);
    assert_eq!(seg["customers"], common::CUSTOMERS);
    assert_eq!(seg["revenue"], common::REVENUE);
    let c = champions(&seg);
    assert_eq!(c["customers"], common::CHAMPIONS);
    assert_eq!(c["revenue"], common::CHAMPIONS_REVENUE);
    assert_eq!(c["revenue_share"], common::CHAMPIONS_REVENUE_SHARE);
    let total: u64 = seg["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(total, common::CUSTOMERS);

    // An older run by id; an unknown one is a 404 with a message.
    let (code, half) = s.json(&format!("/api/segments?run={HALF}"));
    assert_eq!(code, 200);
    assert_eq!(half["run_id"], HALF);
    assert!(half["customers"].as_u64().unwrap() < common::CUSTOMERS);
    let (code, err) = s.json("/api/segments?run=nope");
    assert_eq!(code, 404);
    assert!(err["error"].as_str().unwrap().contains("nope"), "{err}");
}

#[test]
fn customers_page_sort_and_filter() {
    let s = server();
    let (code, page) = s.json("/api/customers");
    assert_eq!(code, 200);
    assert_eq!(page["total"], common::CUSTOMERS);
    assert_eq!(page["size"], 50);
    assert_eq!(page["pages"], 87);
    let rows = page["customers"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    // Default order: customer id; the first id of the file's customers.
    assert_eq!(rows[0]["customer_id"], "12346");
    for key in [
        "customer_id",
        "recency",
        "frequency",
        "monetary",
        "country",
        "r",
        "f",
        "m",
        "rfm_score",
        "segment",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} missing: {}", rows[0]);
    }

    // The biggest spender of the UCI file is 14646 (Netherlands).
    let (_, top) = s.json("/api/customers?sort=-monetary&size=3");
    assert_eq!(top["customers"][0]["customer_id"], "14646");
    assert_eq!(top["customers"][0]["country"], "Netherlands");

    // Filters: the Champions segment, and the same customers by R and F.
    let (_, champ) = s.json("/api/customers?segment=Champions&size=1000");
    assert_eq!(champ["total"], common::CHAMPIONS);
    let by_score: u64 = [4, 5]
        .iter()
        .map(|f| {
            s.json(&format!("/api/customers?r=5&f={f}")).1["total"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(by_score, common::CHAMPIONS);
    // The same in the selection language of `rfm customers --where`.
    for query in ["segment%3Dchampions", "r%3D5+f%3E%3D4", "r%3D5%20f%3E3"] {
        let (code, w) = s.json(&format!("/api/customers?where={query}&size=1"));
        assert_eq!(code, 200, "{query}: {w}");
        assert_eq!(w["total"], common::CHAMPIONS, "{query}");
    }
    let (_, rich) = s.json("/api/customers?where=segment%3Dchampions+monetary%3E10000&size=1000");
    let rich = rich["customers"].as_array().unwrap();
    assert!(!rich.is_empty() && (rich.len() as u64) < common::CHAMPIONS);
    assert!(rich.iter().all(|c| {
        c["segment"] == "Champions"
            && c["monetary"].as_str().unwrap().parse::<f64>().unwrap() > 10000.0
    }));
    let (_, found) = s.json("/api/customers?q=1464");
    assert!(found["customers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["customer_id"].as_str().unwrap().contains("1464")));
    assert!(found["total"].as_u64().unwrap() >= 1);

    // Paging through a sorted selection gives every customer once, in order.
    let mut seen = Vec::new();
    for p in 1..=5 {
        let (_, page) = s.json(&format!("/api/customers?sort=-monetary&size=1000&page={p}"));
        for c in page["customers"].as_array().unwrap() {
            seen.push((
                c["monetary"].as_str().unwrap().parse::<f64>().unwrap(),
                c["customer_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert_eq!(seen.len() as u64, common::CUSTOMERS);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "not descending");
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, common::CUSTOMERS);
}

#[test]
fn paging_bounds_and_bad_parameters() {
    let s = server();
    let (code, beyond) = s.json("/api/customers?page=88");
    assert_eq!(code, 200);
    assert_eq!(beyond["customers"].as_array().unwrap().len(), 0);
    let (_, last) = s.json("/api/customers?page=87");
    assert_eq!(last["customers"].as_array().unwrap().len(), 4338 - 86 * 50);
    for bad in [
        "page=0",
        "page=-1",
        "page=x",
        "size=0",
        "size=1001",
        "sort=bogus",
        "r=6",
        "segment=Nobody",
        "where=bogus%3C3",
        "where=r%3Dsix",
    ] {
        let (code, err) = s.json(&format!("/api/customers?{bad}"));
        assert_eq!(code, 400, "{bad}: {err}");
        assert!(err["error"].is_string(), "{bad}: {err}");
    }
    let (code, _) = s.json("/api/customers?size=1000");
    assert_eq!(code, 200);
    let (code, _) = s.json("/api/nothing");
    assert_eq!(code, 404);
}

#[test]
fn one_customer_and_movement() {
    let s = server();
    let (code, c) = s.json("/api/customers/14646");
    assert_eq!(code, 200);
    assert_eq!(c["customer"]["segment"], "Champions");
    assert_eq!(c["segment_rule"], "R = 5 and F ≥ 4");
    assert_eq!(c["cut_points"]["recency"].as_array().unwrap().len(), 5);
    let (code, err) = s.json("/api/customers/99999999");
    assert_eq!(code, 404);
    assert!(err["error"].as_str().unwrap().contains("99999999"));
    let (code, _) = s.json("/api/customers/14646?run=nope");
    assert_eq!(code, 404);

    let (code, m) = s.json("/api/movement");
    assert_eq!(code, 200);
    assert_eq!(m["from"], HALF);
    assert_eq!(m["to"], FULL);
    let moves = m["moves"].as_array().unwrap();
    // Every customer of the latest run is counted once (new ones from null).
    let in_to: u64 = moves
        .iter()
        .filter(|m| !m["to"].is_null())
        .map(|m| m["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(in_to, common::CUSTOMERS);
    // Nobody disappears: the full file holds every customer of its first part.
    assert!(moves.iter().all(|m| !m["to"].is_null()));
    let into_champions: u64 = moves
        .iter()
        .filter(|m| m["to"] == "Champions")
        .map(|m| m["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(into_champions, common::CHAMPIONS);
    let (code, _) = s.json(&format!("/api/movement?from={FULL}&to=nope"));
    assert_eq!(code, 404);
}

#[test]
fn every_column_sorts_with_ties_by_id() {
    let s = server();
    for col in rfm_web::select::COLUMNS {
        for desc in [false, true] {
            let sort = if desc {
                format!("-{col}")
            } else {
                col.to_string()
            };
            let (code, page) = s.json(&format!("/api/customers?sort={sort}&size=1000&page=2"));
            assert_eq!(code, 200, "{sort}");
            let rows = page["customers"].as_array().unwrap();
            assert_eq!(rows.len(), 1000, "{sort}");
            let key = |c: &Value| -> (String, f64) {
                let v = &c[col];
                match v.as_f64() {
                    Some(n) => (String::new(), n),
                    None => match v.as_str().unwrap().parse::<f64>() {
                        Ok(n) if col == "monetary" => (String::new(), n),
                        _ => (v.as_str().unwrap().to_string(), 0.0),
                    },
                }
            };
            for w in rows.windows(2) {
                let (a, b) = (key(&w[0]), key(&w[1]));
                let o = a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
                let o = if desc { o.reverse() } else { o };
                let ids = w[0]["customer_id"]
                    .as_str()
                    .cmp(&w[1]["customer_id"].as_str());
                let ids = if desc { ids.reverse() } else { ids };
                assert!(
                    o.is_lt() || (o.is_eq() && ids.is_lt()),
                    "{sort}: {} before {}",
                    w[0],
                    w[1]
                );
            }
        }
    }
    // The id search matches ids containing the text, whatever the sort.
    let (_, a) = s.json("/api/customers?q=1234&size=1000");
    let (_, b) = s.json("/api/customers?q=1234&size=1000&sort=-monetary");
    assert_eq!(a["total"], b["total"]);
    assert!(a["total"].as_u64().unwrap() >= 1);
}
