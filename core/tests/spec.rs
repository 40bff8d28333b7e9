//! The spec's worked example (§7) and its edge rules (§1–4), end to end.

use crate::common::*;
use rfm_core::RunOptions;

const EXAMPLE: &str = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1001,A,x,2,12/1/2010 8:26,2.50,17850,United Kingdom
1001,B,y,1,12/1/2010 8:26,0.10,17850,United Kingdom
1002,A,x,3,2011-01-02 10:00:00,1.00,17850.0,United Kingdom
C1003,A,x,-1,2011-01-02 11:00,2.50,17850,United Kingdom
1004,A,x,1,12/15/2010 9:00,5,,France
1005,A,x,4,12/20/2010 9:00,1.25,12583,France
";

#[test]
fn worked_example() {
    let out = run_bytes(EXAMPLE.as_bytes(), &RunOptions::default());
    let r = out.result.unwrap();
    assert_eq!(rfm_core::date::format_date(r.as_of), "2011-01-03");
    assert_eq!(out.ledger.lines_read, 6);
    assert_eq!(out.ledger.purchase_lines, 4);
    assert_eq!(out.ledger.excluded.cancellation, 1);
    assert_eq!(out.ledger.excluded.missing_customer, 1);
    assert_eq!(out.ledger.malformed, 0);
    let csv = String::from_utf8(customers_csv(&r)).unwrap();
    assert_eq!(
        csv,
        "customer_id,recency,frequency,monetary,first_purchase,last_purchase,country,r,f,m,rfm_score,segment\n\
         12583,14,1,5.00,2010-12-20 09:00:00,2010-12-20 09:00:00,France,1,1,1,111,Hibernating\n\
         17850,1,2,8.10,2010-12-01 08:26:00,2011-01-02 10:00:00,United Kingdom,2,2,2,222,Hibernating\n"
    );
    let seg = String::from_utf8(segments_csv(&r)).unwrap();
    assert_eq!(
        seg,
        "segment,customers,customers_share,revenue,revenue_share,avg_recency,avg_frequency,avg_monetary\n\
         Hibernating,2,1.000000,13.10,1.000000,7.50,1.50,6.55\n"
    );
}

/// Edge lines with the reason the spec gives each.
const EDGES: [(&[u8], &str); 22] = [
    (b"1,A,d,6.0,12/1/2010 8:00,1,100,UK", "malformed"),
    (b"2,A,d, 6 ,12/1/2010 8:00,\t1, 300 ,UK", "purchase"),
    (b"3,A,d,1,12/1/2010 8:00,1e-2,100,UK", "malformed"),
    (b"4,A,d,1,2/30/2011 8:00,1,100,UK", "malformed"),
    (b"5,A,d,1,12/1/2010 24:00,1,100,UK", "malformed"),
    (b"6,A,d,1,12/1/10 8:26:00,1,100,UK", "malformed"),
    (b"7,A,d,x,12/1/2010 8:00,1,,UK", "malformed"),
    (b",A,d,1,12/1/2010 8:00,1,100,UK", "malformed"),
    (b"8,A,d,1,12/1/2010 8:00,1,100", "malformed"),
    (b"9,A,d,1,12/1/2010 8:00,1,100,UK,x", "malformed"),
    (b"10,A,d,1,12/1/2010 8:00,1,NaN,UK", "missing_customer"),
    (b"11,A,d,1,12/1/2010 8:00,1,null,UK", "missing_customer"),
    (b"12,A,d,1,12/1/2010 8:00,1,NA,UK", "missing_customer"),
    (b"C13,A,d,-1,12/1/2010 8:00,0,,UK", "missing_customer"),
    (b"C14,A,d,5,12/1/2010 8:00,1,100,UK", "cancellation"),
    (b"15,A,d,0,12/1/2010 8:00,0,100,UK", "quantity_le_0"),
    (b"16,A,d,1,12/1/2010 8:00,-1,100,UK", "price_le_0"),
    (
        b"17,A,\"caf\xe9, \"\"x\"\"\",1,12/1/10 8:26,.125,100,UK",
        "purchase",
    ),
    (
        b"18,A,d,10,2010-12-02T09:00,0.0000001,100.0,France",
        "purchase",
    ),
    (b"19,A,d,1,2010-12-03 09:00:30,2,100,France", "purchase"),
    (b"20,A,d,1,12/4/2010 9:00,2,100,UK", "purchase"),
    (b"21,A,d,1,12/4/2010 9:00,1,200,Germany", "purchase"),
];

fn edges_file() -> Vec<u8> {
    let mut bytes =
        b"Invoice,StockCode,Description,Quantity,Invoice_Date,Price,Customer ID,Country\n".to_vec();
    for (line, _) in EDGES {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    bytes
}

#[test]
fn edge_lines_are_classified_by_the_first_reason() {
    let opts = RunOptions {
        max_malformed_share: 1.0,
        ..RunOptions::default()
    };
    let out = run_bytes(&edges_file(), &opts);
    let l = &out.ledger;
    let count = |reason: &str| EDGES.iter().filter(|(_, r)| *r == reason).count() as u64;
    assert_eq!(l.lines_read, EDGES.len() as u64);
    assert_eq!(l.malformed, count("malformed"));
    assert_eq!(l.purchase_lines, count("purchase"));
    assert_eq!(l.excluded.missing_customer, count("missing_customer"));
    assert_eq!(l.excluded.cancellation, count("cancellation"));
    assert_eq!(l.excluded.quantity_le_0, count("quantity_le_0"));
    assert_eq!(l.excluded.price_le_0, count("price_le_0"));
    // Samples: the first five malformed lines, with their line numbers (header = 1).
    let lines: Vec<u64> = l
        .malformed_samples
        .iter()
        .map(|s| s.line.unwrap())
        .collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7]);
    assert!(
        l.malformed_samples[0].problem.contains("quantity"),
        "{:?}",
        l.malformed_samples[0]
    );

    let r = out.result.unwrap();
    let row = |id: &str| {
        r.customers
            .iter()
            .find(|c| c.customer_id == id)
            .unwrap()
            .clone()
    };
    let c100 = row("100");
    assert_eq!(c100.frequency, 4);
    // 0.125 + 10 × 0.0000001 + 2 + 2 = 4.125001 → 4.13, rounded half away from zero.
    assert_eq!(c100.monetary.to_fixed(2), "4.13");
    assert_eq!(c100.monetary.to_exact_string(), "4.125001");
    assert_eq!(
        rfm_core::date::format_timestamp(c100.first_purchase),
        "2010-12-01 08:26:00"
    );
    assert_eq!(
        rfm_core::date::format_timestamp(c100.last_purchase),
        "2010-12-04 09:00:00"
    );
    // Two UK lines and two France lines: the tie goes to the smallest string.
    assert_eq!(&*c100.country, "France");
    assert_eq!(rfm_core::date::format_date(r.as_of), "2010-12-05");
    assert_eq!(c100.recency, 1);
    assert_eq!(row("300").monetary.to_fixed(2), "6.00");
    // Recency 4 first, then the recency tie in id order; NTILE of 3 rows.
    assert_eq!((row("300").r, row("100").r, row("200").r), (1, 2, 3));
}

#[test]
fn malformed_share_over_the_limit_fails_the_run() {
    let out = run_bytes(&edges_file(), &RunOptions::default());
    let err = out.result.unwrap_err().to_string();
    assert!(err.contains("malformed"), "{err}");
    assert!(
        err.contains("input.csv:2"),
        "the message names file and line: {err}"
    );
    // Exactly at the limit is fine: 9 of 22 lines.
    let opts = RunOptions {
        max_malformed_share: 9.0 / 22.0,
        ..RunOptions::default()
    };
    assert!(run_bytes(&edges_file(), &opts).result.is_ok());
}

#[test]
fn as_of_on_or_before_the_latest_purchase_is_an_error() {
    let mut opts = RunOptions {
        as_of: rfm_core::date::parse_date("2011-01-02"),
        ..RunOptions::default()
    };
    let err = run_bytes(EXAMPLE.as_bytes(), &opts).result.unwrap_err();
    assert!(
        err.to_string()
            .contains("not after the latest purchase date 2011-01-02"),
        "{err}"
    );
    opts.as_of = rfm_core::date::parse_date("2011-02-01");
    let r = run_bytes(EXAMPLE.as_bytes(), &opts).result.unwrap();
    assert_eq!(r.customers[1].recency, 30);
}

#[test]
fn ids_sort_bytewise_and_latin1_text_becomes_utf8() {
    let data = b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
        1,1,12/1/2010 8:00,1,12346,Espa\xf1a\n\
        2,1,12/1/2010 8:00,1,100000,UK\n\
        3,1,12/1/2010 8:00,1,017850,UK\n";
    let r = run_bytes(data, &RunOptions::default()).result.unwrap();
    let ids: Vec<&str> = r.customers.iter().map(|c| c.customer_id.as_str()).collect();
    assert_eq!(ids, vec!["017850", "100000", "12346"]);
    assert_eq!(&*r.customers[2].country, "España");
}

#[test]
fn missing_country_column_gives_empty_country() {
    let data = b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,12/1/2010 8:00,1,5\n";
    let r = run_bytes(data, &RunOptions::default()).result.unwrap();
    assert_eq!(&*r.customers[0].country, "");
}

#[test]
fn header_problems_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "InvoiceNo,Quantity,InvoiceDate,Price,Country\n1,1,12/1/2010 8:00,1,UK\n",
    )
    .unwrap();
    let err =
        rfm_core::engine::open_inputs(path.to_str().unwrap(), &Default::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("customer") && msg.contains("bad.csv") && msg.contains("InvoiceNo,Quantity"),
        "{msg}"
    );

    std::fs::write(&path, "").unwrap();
    let msg = rfm_core::engine::open_inputs(path.to_str().unwrap(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("empty"), "{msg}");

    std::fs::write(&path, "InvoiceNo,Quantity,InvoiceDate,Price,CustomerID\n").unwrap();
    let msg = rfm_core::engine::open_inputs(path.to_str().unwrap(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no data lines"), "{msg}");

    std::fs::write(
        &path,
        "InvoiceNo;Quantity;InvoiceDate;Price;CustomerID\n1;1;12/1/2010 8:00;1;5\n",
    )
    .unwrap();
    let msg = rfm_core::engine::open_inputs(path.to_str().unwrap(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("--delimiter ';'"), "{msg}");
}

#[test]
fn run_settings_name_the_flag_at_fault() {
    use rfm_core::engine::RunSettings;
    let good = RunSettings {
        delimiter: b';',
        decimal_comma: true,
        date_format: Some("%d/%m/%Y %H:%M"),
        as_of: Some("2011-12-10"),
        until: None,
        max_malformed_share: 0.05,
        chunk_size: 1 << 20,
        max_record_size: 1 << 20,
    };
    let opts = good.check().unwrap();
    assert_eq!(opts.parse.delimiter, b';');
    assert_eq!(opts.as_of, rfm_core::date::parse_date("2011-12-10"));
    let cases: [(RunSettings, &str); 7] = [
        (
            RunSettings {
                until: Some("2011-06-31"),
                ..good.clone()
            },
            "--until",
        ),
        (
            RunSettings {
                delimiter: b'"',
                ..good.clone()
            },
            "--delimiter",
        ),
        (
            RunSettings {
                date_format: Some("%Q"),
                ..good.clone()
            },
            "--date-format",
        ),
        (
            RunSettings {
                as_of: Some("2011-02-30"),
                ..good.clone()
            },
            "--as-of",
        ),
        (
            RunSettings {
                max_malformed_share: -0.1,
                ..good.clone()
            },
            "--max-malformed-share",
        ),
        (
            RunSettings {
                max_record_size: 0,
                ..good.clone()
            },
            "--max-record-size",
        ),
        (
            RunSettings {
                max_record_size: 1 << 40,
                ..good.clone()
            },
            "--max-record-size",
        ),
    ];
    for (settings, flag) in cases {
        let err = settings.check().unwrap_err();
        assert_eq!(err.kind(), rfm_core::ErrorKind::Usage);
        assert!(err.to_string().contains(flag), "{err}");
    }
}
