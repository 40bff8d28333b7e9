//! Plain-words explanations of the TLS failures a client meets: a
//! certificate its CA does not trust, a host name the certificate lacks, a
//! client certificate the server refused, a plaintext client against a TLS
//! port (told by the error chain, or by asking the port).

use std::error::Error as StdError;
use std::path::Path;
use std::time::Duration;

use super::host_of;

/// The next error of a chain: the one an `io::Error` wraps (its `source`
/// skips it), else the source.
fn next_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner),
        None => e.source(),
    }
}

/// The first rustls error in `err`'s chain.
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        next = next_error(e);
    }
    None
}

/// Every message of `err`'s chain, joined and lower-cased (for the checks below).
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        text.push_str(&e.to_string());
        text.push_str(": ");
        next = next_error(e);
    }
    text.to_ascii_lowercase()
}

/// A plain-words explanation of a failed connection to `url` (the `who`:
/// "coordinator", "worker", "server"), when it is a TLS matter: its
/// certificate is not trusted by the CA (`ca`), is not valid for the host,
/// it refused this client's certificate, or a plaintext client talks to a
/// TLS port (or the reverse).
pub fn explain(
    err: &(dyn StdError + 'static),
    url: &str,
    who: &str,
    ca: Option<&Path>,
) -> Option<String> {
    use rustls::{CertificateError, Error};
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .map(host_of)
        .unwrap_or(url);
    let ca = ca.map_or_else(
        || "--tls-ca".to_string(),
        |p| format!("--tls-ca {}", p.display()),
    );
    if let Some(e) = rustls_error(err) {
        return Some(match e {
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the {who}'s certificate is not valid for host {host} (not among the names it \
                 was made for): connect with a name it holds, or make it for this host \
                 (`rfm certs --hosts`)"
            ),
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => format!("the {who}'s certificate has expired: make a new one"),
            Error::InvalidCertificate(_) => format!(
                "the {who}'s certificate is not trusted by {ca} (signed by another CA?): give \
                 the CA that signed it"
            ),
            Error::AlertReceived(alert) => format!(
                "the {who} ended the TLS handshake ({alert:?}): if it checks client \
                 certificates (--tls-client-ca), give --tls-cert and --tls-key signed by that CA"
            ),
            Error::InvalidMessage(_) => format!(
                "the {who} at {url} does not answer in TLS: it may serve plaintext: connect \
                 with http:// and without --tls-ca"
            ),
            other => format!("TLS with the {who} at {url} failed: {other}"),
        });
    }
    // A TLS server's first bytes (an alert record) read as an HTTP/2 frame
    // header make a frame far larger than allowed; or it closed the
    // connection first: then ask it (a transport failure only, not an
    // answer the peer sent, which has no source).
    let plaintext_to_tls = url.starts_with("http://")
        && (chain_text(err).contains("frame with invalid size")
            || (err.source().is_some() && answers_in_tls(url)));
    if plaintext_to_tls {
        return Some(format!(
            "the {who} at {url} does not answer in plaintext HTTP/2: it may use TLS: connect \
             with https:// and --tls-ca"
        ));
    }
    None
}

/// Whether the server of an `http://` URL answers a plaintext HTTP/2
/// preface with a TLS alert record (content type 21, version 3.x): it
/// serves TLS. Blocking, at most about 3 s (connect, write, read: 1 s
/// each); for error paths.
fn answers_in_tls(url: &str) -> bool {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    let Some(authority) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
    else {
        return false;
    };
    let Some(addr) = authority.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let wait = Duration::from_secs(1);
    let Ok(mut tcp) = std::net::TcpStream::connect_timeout(&addr, wait) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(wait));
    let _ = tcp.set_write_timeout(Some(wait));
    let mut first = [0u8; 2];
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").is_ok()
        && tcp.read_exact(&mut first).is_ok()
        && first == [0x15, 0x03]
}
