//! TLS of the cluster's ports (rustls, ring): the flags servers and clients
//! share, loading their PEM files (every error names the flag and the path;
//! callers exit 2), the tonic server and client configurations, the URL
//! rules (`https://` when a CA is given), an axum listener serving the HTTP
//! port over TLS ([`TlsListener`]), and plain-words explanations of the TLS
//! failures a client meets ([`explain`]: an untrusted certificate, a wrong
//! host name, a plaintext client against a TLS port).
//!
//! A server (coordinator, worker) with `--tls-cert`/`--tls-key` serves TLS
//! on its gRPC (+ Flight) port and its HTTP port, and presents the same
//! certificate as its client identity when it dials its peers (their CA is
//! `--tls-ca`, by default `--tls-client-ca`). With `--tls-client-ca` the gRPC
//! port asks callers for a certificate signed by that CA: optional on the
//! coordinator (clients without certificates still connect; the worker
//! calls check it), required on a worker.

mod explain;
mod listener;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

pub use explain::explain;
pub use listener::TlsListener;

/// A TLS handshake taking longer than this is dropped (on every port).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS setting that cannot be used: a missing or unreadable file, a file
/// that is not what its flag needs, or flags that do not go together.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file named by a flag.
    #[error("{flag} {}: {reason}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// Flags that do not go together, or a URL that does not fit them.
    #[error("{0}")]
    Usage(String),
}

fn file_error(flag: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File {
        flag,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The ring provider, named explicitly (no process-wide default needed).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The bytes of a PEM file, with the flag and path that named it.
#[derive(Clone, Debug)]
pub struct PemFile {
    pub flag: &'static str,
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

fn read(flag: &'static str, path: &Path) -> Result<PemFile, TlsError> {
    let pem = std::fs::read(path).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ if path.is_dir() => "is a directory, not a PEM file".to_string(),
            _ => format!("cannot read it: {e}"),
        };
        file_error(flag, path, reason)
    })?;
    Ok(PemFile {
        flag,
        path: path.to_path_buf(),
        pem,
    })
}

impl PemFile {
    /// Reads a file of one or more PEM certificates (a chain, or CAs).
    pub fn certificates(flag: &'static str, path: &Path) -> Result<PemFile, TlsError> {
        let file = read(flag, path)?;
        file.parse_certificates()?;
        Ok(file)
    }

    /// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn private_key(flag: &'static str, path: &Path) -> Result<PemFile, TlsError> {
        let file = read(flag, path)?;
        file.parse_key()?;
        Ok(file)
    }

    fn parse_certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&self.pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                file_error(
                    self.flag,
                    &self.path,
                    format!("is not a PEM certificate: {e}"),
                )
            })?;
        if certs.is_empty() {
            return Err(file_error(
                self.flag,
                &self.path,
                "is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)",
            ));
        }
        Ok(certs)
    }

    fn parse_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.pem).map_err(|_| {
            file_error(
                self.flag,
                &self.path,
                "is not a PEM private key (no -----BEGIN PRIVATE KEY----- block)",
            )
        })
    }

    /// The certificates as trust anchors (checks that they can be).
    fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.parse_certificates()? {
            roots.add(cert).map_err(|e| {
                file_error(
                    self.flag,
                    &self.path,
                    format!("is not a usable CA certificate: {e}"),
                )
            })?;
        }
        Ok(roots)
    }
}

/// A server's TLS: its certificate and key, and the CA its callers'
/// certificates must be signed by, if it asks for them.
#[derive(Clone)]
pub struct ServerTls {
    cert: PemFile,
    key: PemFile,
    client_ca: Option<PemFile>,
    /// The rustls configuration of the HTTP port (no client certificates).
    http: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert.path)
            .field("client_ca", &self.client_ca.as_ref().map(|c| &c.path))
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads and checks `--tls-cert`, `--tls-key` and `--tls-client-ca`.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTls, TlsError> {
        let cert = PemFile::certificates("--tls-cert", cert)?;
        let key = PemFile::private_key("--tls-key", key)?;
        let client_ca = client_ca
            .map(|p| PemFile::certificates("--tls-client-ca", p))
            .transpose()?;
        if let Some(ca) = &client_ca {
            ca.roots()?;
        }
        let mut http = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Usage(format!("cannot set up TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(cert.parse_certificates()?, key.parse_key()?)
            .map_err(|e| {
                file_error(
                    "--tls-key",
                    &key.path,
                    format!(
                        "does not fit the certificate of --tls-cert {}: {e}",
                        cert.path.display()
                    ),
                )
            })?;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            cert,
            key,
            client_ca,
            http: Arc::new(http),
        })
    }

    /// Whether the gRPC port asks callers for a certificate (`--tls-client-ca`).
    pub fn checks_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic configuration of the gRPC port. With `--tls-client-ca`, a
    /// caller's certificate must be signed by it; `client_auth_optional`
    /// lets callers without one connect (the service then checks
    /// `Request::peer_certs` where it matters).
    pub fn tonic(&self, client_auth_optional: bool) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(self.identity())
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca {
            Some(ca) => config
                .client_ca_root(Certificate::from_pem(&ca.pem))
                .client_auth_optional(client_auth_optional),
            None => config,
        }
    }

    /// The certificate and key, also presented as client identity when this
    /// server dials its peers.
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert.pem, &self.key.pem)
    }

    /// Serves TLS over `listener` for an axum HTTP port.
    pub fn http_listener(&self, listener: TcpListener) -> std::io::Result<TlsListener> {
        TlsListener::new(listener, self.http.clone())
    }
}

/// What a client checks and shows when it dials a TLS port: the CA the
/// server's certificate must be signed by, and its own certificate if the
/// server asks for one.
#[derive(Clone)]
pub struct ClientTls {
    ca: PemFile,
    identity: Option<Identity>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.path)
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Loads `--tls-ca` (`flag` names it in errors) and, when both are
    /// given, the client's `--tls-cert`/`--tls-key`.
    pub fn load(
        flag: &'static str,
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<ClientTls, TlsError> {
        let ca = PemFile::certificates(flag, ca)?;
        ca.roots()?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                let cert = PemFile::certificates("--tls-cert", cert)?;
                let key = PemFile::private_key("--tls-key", key)?;
                Some(Identity::from_pem(&cert.pem, &key.pem))
            }
            (None, None) => None,
            _ => return Err(pair_error()),
        };
        Ok(ClientTls { ca, identity })
    }

    /// The same, presenting `identity` (a server's own certificate).
    pub fn with_identity(mut self, identity: Identity) -> ClientTls {
        self.identity = Some(identity);
        self
    }

    /// The CA file the server's certificate is checked against.
    pub fn ca_path(&self) -> &Path {
        &self.ca.path
    }

    /// The tonic configuration; `domain`: the name the server's certificate
    /// must hold (default: the host of the URL).
    pub fn tonic(&self, domain: Option<&str>) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca.pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(identity) = &self.identity {
            config = config.identity(identity.clone());
        }
        if let Some(domain) = domain {
            config = config.domain_name(domain);
        }
        config
    }

    /// A rustls client configuration (for plain HTTPS clients and tests).
    pub fn rustls(&self) -> Result<rustls::ClientConfig, TlsError> {
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Usage(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(self.ca.roots()?)
            .with_no_client_auth())
    }
}

fn pair_error() -> TlsError {
    TlsError::Usage(
        "--tls-cert and --tls-key go together: give both (the certificate and its private key)"
            .into(),
    )
}

/// TLS flags of a client (`rfm submit`, `jobs`, `job`, `cancel`, `workers`, `health`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientTlsArgs {
    /// CA certificate (PEM) that signed the server's certificate: connect
    /// over TLS (a URL without scheme becomes https://).
    #[arg(long, env = "RFM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM, with --tls-key) for a server that asks for one.
    #[arg(long, env = "RFM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "RFM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// The client's TLS, if `--tls-ca` is given.
    pub fn load(&self) -> Result<Option<ClientTls>, TlsError> {
        match &self.tls_ca {
            Some(ca) => ClientTls::load(
                "--tls-ca",
                ca,
                self.tls_cert.as_deref(),
                self.tls_key.as_deref(),
            )
            .map(Some),
            None if self.tls_cert.is_some() || self.tls_key.is_some() => Err(TlsError::Usage(
                "--tls-cert/--tls-key need --tls-ca (the CA that signed the server's certificate)"
                    .into(),
            )),
            None => Ok(None),
        }
    }
}

/// TLS flags of a server (coordinator, worker).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerTlsArgs {
    /// Certificate (PEM) of this server: its gRPC and HTTP ports serve TLS
    /// (with --tls-key); also presented when it dials its peers.
    #[arg(long, env = "RFM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "RFM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that must sign the certificates of workers calling this port
    /// (mutual TLS; on a worker: of every caller).
    #[arg(long, env = "RFM_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// CA (PEM) that signed the certificates of the peers this server dials
    /// (https; default: --tls-client-ca).
    #[arg(long, env = "RFM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// A server's TLS settings: what it serves, and how it dials its peers.
#[derive(Clone, Debug, Default)]
pub struct ServerTlsSetup {
    /// TLS on its ports (`--tls-cert`/`--tls-key`).
    pub serve: Option<ServerTls>,
    /// TLS when it dials its peers (`--tls-ca`), presenting its own
    /// certificate when it serves TLS.
    pub dial: Option<ClientTls>,
}

impl ServerTlsArgs {
    /// Loads and checks the flags: `--tls-cert` and `--tls-key` go together,
    /// `--tls-client-ca` needs them, and a server with TLS needs a CA for
    /// its peers (`--tls-ca`, by default `--tls-client-ca`).
    pub fn load(&self) -> Result<ServerTlsSetup, TlsError> {
        let serve =
            match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(ServerTls::load(cert, key, self.tls_client_ca.as_deref())?)
                }
                (None, None) if self.tls_client_ca.is_some() => return Err(TlsError::Usage(
                    "--tls-client-ca needs --tls-cert and --tls-key (the port serves TLS to check \
                     its callers' certificates)"
                        .into(),
                )),
                (None, None) => None,
                _ => return Err(pair_error()),
            };
        let ca = self
            .tls_ca
            .as_ref()
            .map(|p| ("--tls-ca", p))
            .or_else(|| self.tls_client_ca.as_ref().map(|p| ("--tls-client-ca", p)));
        let dial =
            match (ca, &serve) {
                (Some((flag, ca)), Some(serve)) => {
                    Some(ClientTls::load(flag, ca, None, None)?.with_identity(serve.identity()))
                }
                (Some((flag, ca)), None) => Some(ClientTls::load(flag, ca, None, None)?),
                (None, Some(_)) => return Err(TlsError::Usage(
                    "--tls-cert: a server with TLS dials its peers over TLS too: give --tls-ca \
                     CA.pem (the CA that signed their certificates; `rfm certs` writes ca.pem)"
                        .into(),
                )),
                (None, None) => None,
            };
        Ok(ServerTlsSetup { serve, dial })
    }
}

/// The URL to dial: `host:port` gets `https://` when TLS is on, `http://`
/// otherwise; `http://` with TLS and `https://` without are usage errors
/// (`flag` names the URL's option).
pub fn normalise_url(url: &str, flag: &str, tls: bool) -> Result<String, TlsError> {
    let url = url.trim();
    let full = match url.split_once("://") {
        None if tls => format!("https://{url}"),
        None => format!("http://{url}"),
        Some(("http", _)) if tls => {
            return Err(TlsError::Usage(format!(
                "{flag} {url}: --tls-ca is given, so the connection uses TLS: use https:// \
                 (or a URL without scheme)"
            )))
        }
        Some(("https", _)) if !tls => {
            return Err(TlsError::Usage(format!(
                "{flag} {url}: https:// needs --tls-ca CA.pem (the CA that signed the server's \
                 certificate)"
            )))
        }
        Some(("http" | "https", _)) => url.to_string(),
        Some((scheme, _)) => {
            return Err(TlsError::Usage(format!(
                "{flag} {url}: unknown scheme {scheme:?}: use http:// or https://"
            )))
        }
    };
    Endpoint::from_shared(full.clone())
        .map_err(|e| TlsError::Usage(format!("{flag} {url}: not a valid URL: {e}")))?;
    Ok(full)
}

/// The endpoint of a normalised URL, with TLS when `tls` is given
/// (`domain`: the name the server's certificate must hold; default: the
/// URL's host).
pub fn endpoint(
    url: &str,
    tls: Option<&ClientTls>,
    domain: Option<&str>,
) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_string())?;
    match tls {
        Some(tls) => endpoint.tls_config(tls.tonic(domain)),
        None => Ok(endpoint),
    }
}

/// The host part of a `host:port` dial address (brackets of IPv6 removed).
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_scheme_of_their_tls() {
        assert_eq!(
            normalise_url("h:1", "--coordinator", true).unwrap(),
            "https://h:1"
        );
        assert_eq!(
            normalise_url("h:1", "--coordinator", false).unwrap(),
            "http://h:1"
        );
        assert_eq!(
            normalise_url("https://h:1", "--coordinator", true).unwrap(),
            "https://h:1"
        );
        let e = normalise_url("http://h:1", "--coordinator", true).unwrap_err();
        assert!(e.to_string().contains("use https://"), "{e}");
        let e = normalise_url("https://h:1", "--coordinator", false).unwrap_err();
        assert!(e.to_string().contains("needs --tls-ca"), "{e}");
    }

    #[test]
    fn file_errors_name_the_flag_and_the_path() {
        let dir = std::env::temp_dir().join(format!("rfm-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = PemFile::certificates("--tls-cert", &missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("--tls-cert {}: no such file", missing.display())
        );
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let e = PemFile::certificates("--tls-ca", &junk).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "--tls-ca {}: is not a PEM certificate",
                junk.display()
            )),
            "{e}"
        );
        let e = PemFile::private_key("--tls-key", &junk).unwrap_err();
        assert!(e.to_string().contains("is not a PEM private key"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hosts_of_dial_addresses() {
        assert_eq!(host_of("10.0.0.7:50052"), "10.0.0.7");
        assert_eq!(host_of("[::1]:50052"), "::1");
        assert_eq!(host_of("worker-1:50052"), "worker-1");
    }
}
