//! Identifiers and texts callers send, checked at the edge of every port
//! before they are kept, logged or echoed: a job id or worker id of at most
//! 64 characters of `[A-Za-z0-9._:-]`, a host name or IP address of at most
//! 253 characters, an input spec of at most 4096 bytes without control
//! characters. Refusals are INVALID_ARGUMENT and quote the value only
//! escaped and cut.

use rfm_core::text::{cut, escape_controls};
use tonic::Status;

/// Longest job id or worker id.
pub const MAX_ID_CHARS: usize = 64;
/// Longest host name a worker may advertise (DNS's limit).
pub const MAX_HOST_CHARS: usize = 253;
/// Longest input spec (path or glob) of a submission, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// How much of a refused value a message quotes.
const QUOTED_CHARS: usize = 40;

/// A refused value as a message quotes it: cut, escaped, in quotes.
fn quoted(value: &str) -> String {
    format!("\"{}\"", escape_controls(&cut(value, QUOTED_CHARS)))
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks an id (`what`: "job id", "worker id").
fn check_id(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument(format!("the {what} is empty")));
    }
    if id.len() > MAX_ID_CHARS {
        return Err(Status::invalid_argument(format!(
            "the {what} is {} bytes long; at most {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : - are allowed",
            id.len()
        )));
    }
    if !id.chars().all(is_id_char) {
        return Err(Status::invalid_argument(format!(
            "the {what} {} has characters outside A-Z a-z 0-9 . _ : -",
            quoted(id)
        )));
    }
    Ok(())
}

/// Checks a job id: 1 to 64 characters of `[A-Za-z0-9._:-]`.
pub fn check_job_id(id: &str) -> Result<(), Status> {
    check_id("job id", id)
}

/// Checks a worker id: 1 to 64 characters of `[A-Za-z0-9._:-]`.
pub fn check_worker_id(id: &str) -> Result<(), Status> {
    check_id("worker id", id)
}

/// Checks the host a worker advertises: empty (the address its registration
/// comes from), an IP address, or a host name of at most 253 characters
/// (labels of letters, digits and `-`, separated by dots).
pub fn check_advertise_host(host: &str) -> Result<(), Status> {
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host.len() > MAX_HOST_CHARS {
        return Err(Status::invalid_argument(format!(
            "the advertised host is {} bytes long; a host name has at most {MAX_HOST_CHARS} characters",
            host.len()
        )));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.trim_end_matches('.').split('.').all(label_ok) {
        return Err(Status::invalid_argument(format!(
            "the advertised host {} is neither an IP address nor a host name; check the worker's --advertise",
            quoted(host)
        )));
    }
    Ok(())
}

/// Checks a submission's input spec: 1 to 4096 bytes, no control characters.
pub fn check_input(input: &str) -> Result<(), Status> {
    if input.is_empty() {
        return Err(Status::invalid_argument(
            "the input is empty: name a file, directory or glob",
        ));
    }
    if input.len() > MAX_INPUT_BYTES {
        return Err(Status::invalid_argument(format!(
            "the input is {} bytes long; at most {MAX_INPUT_BYTES} bytes are allowed",
            input.len()
        )));
    }
    if input.chars().any(rfm_core::text::is_control) {
        return Err(Status::invalid_argument(format!(
            "the input {} has control characters",
            quoted(input)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn ids() {
        for ok in [
            "20111210T101500Z-3fa9c2e1",
            "w1",
            "a.b_c:d-e",
            &"x".repeat(64),
        ] {
            assert!(check_job_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a\nINFO forged", "é", &"x".repeat(65), "a/b"] {
            let e = check_job_id(bad).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument);
            assert!(e.message().contains("job id"), "{}", e.message());
            assert!(!e.message().contains('\n'), "{}", e.message());
        }
        let huge = "y".repeat(10_000_000);
        assert!(check_worker_id(&huge).unwrap_err().message().len() < 200);
    }

    #[test]
    fn hosts_and_inputs() {
        for ok in [
            "",
            "worker-1",
            "w.example.com",
            "10.0.0.5",
            "::1",
            "fe80::1",
        ] {
            assert!(check_advertise_host(ok).is_ok(), "{ok}");
        }
        for bad in ["a b", "evil\n", "-x", "a..b", &"h".repeat(254), "x/y"] {
            assert_eq!(
                check_advertise_host(bad).unwrap_err().code(),
                Code::InvalidArgument,
                "{bad}"
            );
        }
        assert!(check_input("/data/*.csv").is_ok());
        assert!(check_input("").is_err());
        assert!(check_input(&"a".repeat(4097)).is_err());
        let e = check_input("a\u{1b}[2Jb").unwrap_err();
        assert!(e.message().contains("\\x1b"), "{}", e.message());
    }
}
