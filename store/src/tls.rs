//! TLS to PostgreSQL with rustls, honouring libpq's `sslmode` and
//! `sslrootcert` in the database URL.
//!
//! tokio-postgres only knows `sslmode=disable|prefer|require` and no
//! `sslrootcert`, so [`split`] takes both parameters out of the URL (the
//! `postgresql://…?sslmode=…` form and the `key=value` form) and
//! [`Connector::new`] checks the server's certificate as libpq does:
//!
//! | sslmode | without sslrootcert | with sslrootcert |
//! |---|---|---|
//! | `disable` | no TLS | no TLS |
//! | `prefer` (default) | TLS if the server offers it, not verified | TLS if offered, chain checked |
//! | `require` | TLS, not verified (encrypted only) | TLS, chain checked |
//! | `verify-ca` | `~/.postgresql/root.crt` | TLS, chain checked, host name not |
//! | `verify-full` | `~/.postgresql/root.crt` | TLS, chain and host name checked |
//!
//! `sslmode=disable` ignores `sslrootcert`, as libpq does. Unlike libpq,
//! `prefer` and `require` do not look for
//! `~/.postgresql/root.crt` on their own: a CA is checked when the URL names
//! one. No channel binding is offered (SCRAM without `-PLUS`).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::config::SslMode as WireMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{Error, Result};

/// libpq's `sslmode` values (`allow` is not supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::TlsSettings {
                    detail: format!(
                        "sslmode={other:?} is not supported: use disable, prefer, require, \
                         verify-ca or verify-full"
                    ),
                })
            }
        })
    }

    /// The URL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether TLS is off, tried or required.
    pub(crate) fn on_the_wire(self) -> WireMode {
        match self {
            SslMode::Disable => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
        }
    }
}

/// The TLS parameters of a database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    /// `sslrootcert`, as given.
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of `url` (URL or `key=value` form):
/// the rest of the URL, for tokio-postgres, and the parameters.
pub fn split(url: &str) -> Result<(String, TlsParams)> {
    let (rest, found) = if url.contains("://") {
        split_url(url)
    } else {
        split_key_values(url)
    };
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    for (key, value) in found {
        match key.as_str() {
            "sslmode" => mode = SslMode::parse(&value)?,
            _ => root_cert = Some(PathBuf::from(value)),
        }
    }
    Ok((rest, TlsParams { mode, root_cert }))
}

fn is_tls_key(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

/// `postgresql://…?a=b&sslmode=…`: the query without the TLS parameters.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some(q) = url.find('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for pair in url[q + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = rfm_core::percent::decode(key);
        if is_tls_key(&key) {
            found.push((key, rfm_core::percent::decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let mut rest = url[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, found)
}

/// `host=h sslmode=verify-full sslrootcert='/a b/ca.pem'`: the string without
/// the TLS parameters. Values follow libpq's quoting (`'…'`, `\` escapes).
fn split_key_values(text: &str) -> (String, Vec<(String, String)>) {
    let mut rest = String::new();
    let mut found = Vec::new();
    for (span, key, value) in key_values(text) {
        if is_tls_key(&key) {
            found.push((key, value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&text[span]);
        }
    }
    (rest, found)
}

/// Every `key = value` of a libpq connection string: its span, key and
/// unquoted value. A malformed tail is kept whole (tokio-postgres reports it).
fn key_values(text: &str) -> Vec<(std::ops::Range<usize>, String, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_spaces(i);
        if i >= bytes.len() {
            return out;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[start..i].to_string();
        i = skip_spaces(i);
        if bytes.get(i) != Some(&b'=') {
            out.push((start..text.len(), key, String::new()));
            return out;
        }
        i = skip_spaces(i + 1);
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        out.push((start..i, key, String::from_utf8_lossy(&value).into_owned()));
    }
}

/// libpq's default CA file, `~/.postgresql/root.crt`.
fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt"))
}

/// The CA file to check the server against, if any; `default` is libpq's
/// default file, used by `verify-*` when the URL names none.
fn root_cert_path(params: &TlsParams, default: Option<PathBuf>) -> Result<Option<PathBuf>> {
    if params.mode == SslMode::Disable {
        return Ok(None);
    }
    if let Some(p) = &params.root_cert {
        return Ok(Some(p.clone()));
    }
    if !matches!(params.mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        return Ok(None);
    }
    match default {
        Some(p) if p.is_file() => Ok(Some(p)),
        missing => Err(Error::TlsSettings {
            detail: format!(
                "sslmode={} checks the server's certificate but no CA was given: add \
                 sslrootcert=PATH (the CA that signed the server's certificate, PEM) to \
                 --database-url / DATABASE_URL{}",
                params.mode.as_str(),
                missing.map_or(String::new(), |p| format!(
                    " (libpq's default {} does not exist)",
                    p.display()
                ))
            ),
        }),
    }
}

fn load_roots(path: &Path) -> Result<RootCertStore> {
    let bad = |detail: String| Error::TlsSettings {
        detail: format!("sslrootcert={}: {detail}", path.display()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read it: {e}")))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM, BEGIN CERTIFICATE)".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Makes the TLS session of each connection, per the URL's parameters.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
}

impl Connector {
    /// Reads the CA file (if any) and sets up the certificate check for
    /// `params`.
    pub fn new(params: &TlsParams) -> Result<Connector> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = root_cert_path(params, default_root_cert())?
            .map(|p| load_roots(&p).map(Arc::new))
            .transpose()?;
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match (params.mode, roots) {
            (SslMode::VerifyFull, Some(roots)) => {
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| Error::TlsSettings {
                        detail: format!("the CA of sslrootcert cannot be used: {e}"),
                    })?
            }
            (_, roots) => Arc::new(WithoutHostName { roots, algorithms }),
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsSettings {
                detail: format!("TLS setup: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Connector {
            config: Arc::new(config),
        })
    }
}

/// The checks `sslmode` asks for short of `verify-full` (the handshake
/// signature is always checked):
/// - no CA (`require`, as libpq): the session is encrypted, the server's
///   certificate is not checked;
/// - a CA (`verify-ca`, or a CA given with `prefer`/`require`): the
///   certificate must chain to the CA; the host name is not checked.
#[derive(Debug)]
struct WithoutHostName {
    roots: Option<Arc<RootCertStore>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for WithoutHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = OneConnection;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<OneConnection> {
        // A Unix socket or a bare hostaddr has no name: the error waits for
        // a handshake that needs one (the server may not offer TLS at all).
        let server_name = ServerName::try_from(host.to_string()).map_err(|_| {
            format!("{host:?} is not a host name or IP address usable for TLS (set host=)")
        });
        Ok(OneConnection {
            config: self.config.clone(),
            server_name,
        })
    }
}

/// The TLS handshake of one connection.
pub struct OneConnection {
    config: Arc<ClientConfig>,
    server_name: std::result::Result<ServerName<'static>, String>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

impl<S> TlsConnect<S> for OneConnection
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Box::pin(async move {
            let name = self
                .server_name
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let session = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(Stream(session))
        })
    }
}

/// A TLS session to the server.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// The rustls error behind a failed handshake, if that is what failed.
pub(crate) fn rustls_cause(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = c
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_both_url_forms() {
        let (rest, p) = split(
            "postgresql://u:p@h:5/db?connect_timeout=2&sslmode=verify-full&sslrootcert=%2Fa%20b%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p@h:5/db?connect_timeout=2&application_name=x"
        );
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert, Some(PathBuf::from("/a b/ca.pem")));

        let (rest, p) = split("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgresql://h/db", SslMode::Require)
        );
        assert_eq!(p.root_cert, None);

        let (rest, p) =
            split("host=h sslmode = verify-ca  sslrootcert='/x y/c\\'a.pem' dbname=d").unwrap();
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(p.mode, SslMode::VerifyCa);
        assert_eq!(p.root_cert, Some(PathBuf::from("/x y/c'a.pem")));

        let (rest, p) = split("postgresql://h/db").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgresql://h/db", SslMode::Prefer)
        );
    }

    #[test]
    fn unknown_modes_and_missing_cas_are_named() {
        let e = split("postgresql://h/db?sslmode=allow")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslmode=\"allow\"") && e.contains("verify-full"),
            "{e}"
        );
        let e = Connector::new(&TlsParams {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
        assert!(Connector::new(&TlsParams {
            mode: SslMode::Require,
            root_cert: None,
        })
        .is_ok());
        let verify = |mode| TlsParams {
            mode,
            root_cert: None,
        };
        let missing = Some(PathBuf::from("/nonexistent/.postgresql/root.crt"));
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let e = root_cert_path(&verify(mode), missing.clone())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("sslmode={}", mode.as_str()))
                    && e.contains("add sslrootcert=PATH")
                    && e.contains("/nonexistent/.postgresql/root.crt does not exist"),
                "{e}"
            );
        }
        assert_eq!(
            root_cert_path(&verify(SslMode::Require), missing).unwrap(),
            None
        );
    }
}
