//! `rfm certs`: a development certificate authority and the certificates of
//! a cluster (rcgen), plus random tokens, so that a cluster (or the compose
//! file) runs with TLS and credentials in two commands. Writes `ca.pem`;
//! `server.pem` + `server.key` for the coordinator and the workers (names:
//! the `--hosts`, 127.0.0.1 and ::1; good for serverAuth and clientAuth, so
//! servers present it when they dial each other); `client.pem` +
//! `client.key` for CLI clients; `client.token`, `worker.token` and
//! `admin.token`. Keys and tokens are mode 0600; the CA's private key is
//! not kept (make a new set to add a host). Every file is written
//! atomically; existing files are kept unless `--force`.

use std::fs::{File, Permissions};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cli::CertsArgs;
use crate::cluster::JobError;
use crate::exit;

/// The files `rfm certs` writes, in order.
pub const FILES: [&str; 8] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
    "client.token",
    "worker.token",
    "admin.token",
];

/// Names every server certificate holds besides `--hosts`.
const LOOPBACK: [&str; 2] = ["127.0.0.1", "::1"];

fn output_error(message: String) -> anyhow::Error {
    JobError {
        code: exit::OUTPUT,
        message,
    }
    .into()
}

fn usage_error(message: String) -> anyhow::Error {
    exit::UsageError(message).into()
}

pub fn certs(args: CertsArgs) -> Result<()> {
    let hosts = hosts(&args.hosts)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| output_error(format!("cannot create --out {}: {e}", args.out.display())))?;
    if !args.force {
        if let Some(taken) = FILES.iter().map(|f| args.out.join(f)).find(|p| p.exists()) {
            return Err(output_error(format!(
                "{} exists: pass --force to replace the certificates and tokens in {}",
                taken.display(),
                args.out.display()
            )));
        }
    }
    let set = make(&hosts, args.days).context("cannot make the certificates")?;
    for (name, content) in &set {
        let secret = name.ends_with(".key") || name.ends_with(".token");
        write(&args.out.join(name), content, secret)?;
    }
    println!(
        "wrote {} (server names: {}; valid {} days)",
        FILES.join(", "),
        hosts.join(", "),
        args.days
    );
    println!(
        "in {}: give servers --tls-cert server.pem --tls-key server.key --tls-ca ca.pem \
         (--tls-client-ca ca.pem for mutual TLS), clients --tls-ca ca.pem",
        args.out.display()
    );
    Ok(())
}

/// The server names: `--hosts` (checked), then the loopback addresses.
fn hosts(given: &[String]) -> Result<Vec<String>> {
    let mut hosts = Vec::new();
    for host in given.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        let valid = host.parse::<std::net::IpAddr>().is_ok()
            || (host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
                }));
        if !valid {
            return Err(usage_error(format!(
                "invalid option --hosts: {host:?} is not a host name or an IP address"
            )));
        }
        if !hosts.iter().any(|h: &String| h.eq_ignore_ascii_case(host)) {
            hosts.push(host.to_string());
        }
    }
    if hosts.is_empty() {
        return Err(usage_error(
            "invalid option --hosts: give the servers' host names, e.g. coordinator,worker,localhost"
                .into(),
        ));
    }
    for ip in LOOPBACK {
        if !hosts.iter().any(|h| h == ip) {
            hosts.push(ip.to_string());
        }
    }
    Ok(hosts)
}

/// Validity from yesterday (clocks differ a little) to `days` from today.
fn validity(params: &mut CertificateParams, days: u32) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i32;
    let date = |day: i32| {
        let (y, m, d) = rfm_core::date::civil_from_days(day);
        rcgen::date_time_ymd(y, m as u8, d as u8)
    };
    params.not_before = date(today - 1);
    params.not_after = date(today + days as i32);
}

/// The file names and contents of a new set.
fn make(hosts: &[String], days: u32) -> Result<Vec<(&'static str, String)>> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "rfm development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca, days);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf = |names: Vec<String>, common_name: &str, usages: Vec<ExtendedKeyUsagePurpose>| {
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, days);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        anyhow::Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = leaf(
        hosts.to_vec(),
        &hosts[0],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    let (client_pem, client_key) = leaf(
        vec!["rfm-client".to_string()],
        "rfm-client",
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    Ok(vec![
        ("ca.pem", ca_cert.pem()),
        ("server.pem", server_pem),
        ("server.key", server_key),
        ("client.pem", client_pem),
        ("client.key", client_key),
        ("client.token", token()?),
        ("worker.token", token()?),
        ("admin.token", token()?),
    ])
}

/// 32 random bytes as hex, with a newline.
fn token() -> Result<String> {
    let mut bits = [0u8; 32];
    getrandom::fill(&mut bits).map_err(|e| anyhow::anyhow!("no random bits: {e}"))?;
    let mut hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
    hex.push('\n');
    Ok(hex)
}

/// Writes `content` atomically; `secret`: readable by its owner only.
fn write(path: &Path, content: &str, secret: bool) -> Result<()> {
    crate::export::write_atomically(path, |file: &mut File| {
        let mode = if secret { 0o600 } else { 0o644 };
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(content.as_bytes())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked_and_get_the_loopback_addresses() {
        let given = |h: &[&str]| hosts(&h.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            given(&["coordinator", " worker", "coordinator"]).unwrap(),
            ["coordinator", "worker", "127.0.0.1", "::1"]
        );
        assert_eq!(
            given(&["10.0.0.7"]).unwrap(),
            ["10.0.0.7", "127.0.0.1", "::1"]
        );
        let e = given(&["bad host"]).unwrap_err().to_string();
        assert!(e.contains("\"bad host\" is not a host name"), "{e}");
        assert!(given(&[""]).is_err());
    }

    /// The files load as the servers and clients load them, and a client
    /// trusting `ca.pem` completes a handshake with a server presenting
    /// `server.pem`, over real TCP.
    #[tokio::test]
    async fn the_certificates_complete_a_handshake() {
        let set = make(&["coordinator".to_string(), "127.0.0.1".to_string()], 30).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in &set {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let p = |n: &str| dir.path().join(n);
        let server =
            rfm_proto::tls::ServerTls::load(&p("server.pem"), &p("server.key"), Some(&p("ca.pem")))
                .unwrap();
        let client = rfm_proto::tls::ClientTls::load(
            "--tls-ca",
            &p("ca.pem"),
            Some(&p("client.pem")),
            Some(&p("client.key")),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tls = server.http_listener(listener).unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(client.rustls().unwrap()));
        let dial = |name: &'static str| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(name).unwrap();
                connector.connect(name, tcp).await
            }
        };
        // A name the certificate lacks: refused, the listener goes on.
        let wrong = dial("localhost").await.unwrap_err();
        let said = rfm_proto::tls::explain(&wrong, "https://localhost:1", "server", None).unwrap();
        assert!(said.contains("not valid for host localhost"), "{said}");
        let (ok, accepted) = tokio::join!(dial("127.0.0.1"), async {
            use axum::serve::Listener as _;
            tls.accept().await
        });
        let client_side = ok.expect("handshake for 127.0.0.1");
        assert_eq!(accepted.1.ip(), addr.ip());
        let presented = client_side.get_ref().1.peer_certificates().unwrap();
        assert_eq!(presented.len(), 1, "the server presents server.pem");
    }
}
