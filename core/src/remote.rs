//! Remote inputs: `s3://bucket/key`, `s3://bucket/prefix/*.csv` (a glob on
//! keys), `s3://bucket/dir/` (its `*.csv`) and `http(s)://host/path`, read
//! through the `object_store` crate with range requests.
//!
//! An object's URL is its path everywhere else (an [`crate::InputFile`]'s
//! `path`, the task protocol), so the engine's byte-range planning is the
//! CSV one: the coordinator learns sizes from HEAD (or a listing) and reads a
//! header with one small range GET; a worker fetches its task's range with
//! one GET ([`RemoteObject::fetch`]) and the bytes past the range end that
//! finish its last record with a second small one. The coordinator's ETag
//! travels with every task ([`crate::InputFile::etag`]): each GET asks for
//! that version (`If-Match`) and checks the ETag of the answer, so an object
//! replaced while the job runs fails it ("changed while the job ran")
//! instead of mixing two versions (a server that ignores `If-Match` is
//! caught by the check).
//!
//! Redirects are never followed (an http(s) input names the object itself):
//! a redirect's target would escape the address check below. Under
//! `--remote-inputs public` every connection of an http(s) read, the
//! workers' included, goes only to addresses checked when resolved
//! ([`PublicResolver`]): a host that resolves to a public address when the
//! job is planned and to a private one when a worker connects (DNS
//! rebinding) is refused, and no proxy is used.
//!
//! S3 settings come from the standard environment variables (what
//! `object_store` reads): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL` (an S3-compatible server), `AWS_ALLOW_HTTP` (a
//! plain-http endpoint), `AWS_SKIP_SIGNATURE` (a public bucket), and the
//! web-identity / container credential variables; then from the profile of
//! the shared `~/.aws/credentials` and `~/.aws/config` files
//! ([`crate::aws_profile`]) for what the variables leave unset. Without any
//! credentials a read fails at once naming the bucket (no silent fall-back
//! to an instance metadata endpoint).
//!
//! Reads block the calling thread (the engine is synchronous, on rayon);
//! the requests run on a small runtime of their own, so a caller may itself
//! be a runtime's thread.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::client::{HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::format::Location;

/// Which remote inputs a coordinator reads for the clients that submit jobs
/// (`--remote-inputs`). A local `rfm run` reads every kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemoteInputs {
    /// No remote input: only files (under the data root, when set).
    None,
    /// `s3://` (with the coordinator's own credentials and endpoint) and
    /// `http(s)://` URLs whose host resolves to public addresses only: no
    /// loopback, private, link-local (cloud metadata) or unspecified address.
    #[default]
    Public,
    /// Every `s3://` and `http(s)://` URL, private addresses included.
    All,
}

impl RemoteInputs {
    pub const NAMES: [&'static str; 3] = ["none", "public", "all"];
}

impl FromStr for RemoteInputs {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(RemoteInputs::None),
            "public" => Ok(RemoteInputs::Public),
            "all" => Ok(RemoteInputs::All),
            _ => Err(format!(
                "{text:?} is not a remote-input policy (use one of: {})",
                RemoteInputs::NAMES.join(", ")
            )),
        }
    }
}

/// Whether a path names a remote object (an `s3://` or `http(s)://` URL).
pub fn is_remote(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| Location::of(s) != Location::Local)
}

/// A remote spec taken apart: where, which bucket or `scheme://host[:port]`,
/// and the key (no leading `/`).
#[derive(Debug)]
struct Parts {
    location: Location,
    authority: String,
    key: String,
}

fn remote_error(url: &str, message: impl Into<String>) -> Error {
    Error::Remote {
        url: url.to_string(),
        message: message.into(),
    }
}

fn parse(spec: &str) -> Result<Parts> {
    let location = Location::of(spec);
    let (scheme_len, rest) = match spec.find("://") {
        Some(i) => (i + 3, &spec[i + 3..]),
        None => return Err(remote_error(spec, "not a URL")),
    };
    let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(remote_error(
            spec,
            match location {
                Location::S3 => "no bucket: write s3://BUCKET/KEY",
                _ => "no host: write http(s)://HOST/PATH",
            },
        ));
    }
    if location == Location::Http && spec.contains(['?', '#']) {
        return Err(remote_error(
            spec,
            "a query or fragment in an http(s) input is not supported; give the object's plain URL",
        ));
    }
    let authority = match location {
        Location::S3 => authority.to_string(),
        _ => format!("{}{authority}", spec[..scheme_len].to_ascii_lowercase()),
    };
    Ok(Parts {
        location,
        authority,
        key: key.to_string(),
    })
}

impl Parts {
    fn url_of(&self, key: &str) -> String {
        match self.location {
            Location::S3 => format!("s3://{}/{key}", self.authority),
            _ => format!("{}/{key}", self.authority),
        }
    }
}

/// The runtime the requests run on (two threads; built on first use).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rfm-remote")
            .enable_all()
            .build()
            .expect("cannot start the runtime for remote inputs")
    })
}

/// Runs `fut` on the remote runtime and waits for it on this thread.
fn block_on<T: Send + 'static>(
    url: &str,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T> {
    let handle = runtime().spawn(fut);
    futures::executor::block_on(handle)
        .map_err(|e| remote_error(url, format!("the request's task failed: {e}")))
}

/// Whether S3 credentials (or an explicit unsigned access) are configured.
fn s3_credentials_configured() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || std::env::var("AWS_SKIP_SIGNATURE").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
}

/// A host that is, or resolves to, an address `--remote-inputs public`
/// does not connect to.
#[derive(Debug)]
pub struct NotPublic {
    host: String,
    address: IpAddr,
}

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused: the host {:?} resolves to {}, a loopback, private, link-local or other \
             non-public address, which this coordinator does not fetch for its clients \
             (--remote-inputs public); upload the file with rfm submit --upload, or ask the \
             operator for --remote-inputs all",
            self.host, self.address
        )
    }
}

impl std::error::Error for NotPublic {}

/// A DNS resolver that answers only public addresses: a name with any
/// non-public address is refused ([`NotPublic`]), so the address a request
/// connects to is always one checked (no DNS rebinding between a check and
/// the connection).
#[derive(Debug)]
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = host.clone();
            let addrs: Vec<std::net::SocketAddr> = tokio::task::spawn_blocking(move || {
                (lookup.as_str(), 0)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            })
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??;
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(NotPublic {
                    host,
                    address: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of http(s) inputs: no redirects, no compression (sizes
/// are byte counts), and under `--remote-inputs public` only public
/// addresses ([`PublicResolver`]) and no proxy.
#[derive(Debug)]
struct GuardedConnector {
    public_only: bool,
}

impl HttpConnector for GuardedConnector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("rfm/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate();
        if self.public_only {
            builder = builder.dns_resolver(Arc::new(PublicResolver)).no_proxy();
        }
        let client = builder.build().map_err(|e| object_store::Error::Generic {
            store: "HTTP",
            source: Box::new(e),
        })?;
        Ok(HttpClient::new(client))
    }
}

/// The address of an origin whose host is an IP literal (never resolved,
/// so checked here).
fn literal_ip(origin: &str) -> Option<IpAddr> {
    let host_port = origin.split_once("://").map_or(origin, |(_, h)| h);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host_port.split(':').next().unwrap_or(host_port),
    };
    host.parse().ok()
}

/// The store of a bucket or HTTP origin (built once per process and policy).
fn store(parts: &Parts, public_only: bool) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let public_only = public_only && parts.location == Location::Http;
    if public_only {
        if let Some(ip) = literal_ip(&parts.authority).filter(|ip| !is_public(*ip)) {
            return Err(remote_error(
                &parts.authority,
                NotPublic {
                    host: ip.to_string(),
                    address: ip,
                }
                .to_string(),
            ));
        }
    }
    let cache_key = format!("{:?} {} {public_only}", parts.location, parts.authority);
    let stores = STORES.get_or_init(Mutex::default);
    if let Some(s) = stores
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cache_key)
    {
        return Ok(s.clone());
    }
    let built: Arc<dyn ObjectStore> = match parts.location {
        Location::S3 => {
            let bucket_url = format!("s3://{}/", parts.authority);
            let profile = crate::aws_profile::load().map_err(|e| remote_error(&bucket_url, e))?;
            let from_env = s3_credentials_configured();
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(&parts.authority)
                .with_retry(retry());
            let mut allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true");
            let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
            let mut region_set = env_set("AWS_REGION") || env_set("AWS_DEFAULT_REGION");
            match &profile {
                Some(p) if !from_env => {
                    let (Some(id), Some(secret)) = (&p.access_key_id, &p.secret_access_key) else {
                        return Err(remote_error(
                            &bucket_url,
                            format!(
                                "the {} has no aws_access_key_id and aws_secret_access_key (role, \
                                 SSO and process credentials are not read): add them, or set \
                                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                                p.source
                            ),
                        ));
                    };
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                    if let Some(token) = &p.session_token {
                        builder = builder.with_token(token);
                    }
                }
                None if !from_env => {
                    return Err(remote_error(
                        &bucket_url,
                        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                         AWS_SESSION_TOKEN for temporary ones), or a [default] profile (or \
                         AWS_PROFILE's) in ~/.aws/credentials, or AWS_SKIP_SIGNATURE=true for a \
                         public bucket; the coordinator and every worker need them",
                    ));
                }
                _ => {}
            }
            if let Some(p) = &profile {
                if let Some(region) = p.region.as_deref().filter(|_| !region_set) {
                    builder = builder.with_region(region);
                    region_set = true;
                }
                if let Some(endpoint) = p
                    .endpoint_url
                    .as_deref()
                    .filter(|_| !env_set("AWS_ENDPOINT_URL") && !env_set("AWS_ENDPOINT"))
                {
                    // A plain-http endpoint written in the file is meant.
                    allow_http |= endpoint.starts_with("http://");
                    builder = builder.with_endpoint(endpoint);
                }
            }
            builder = builder.with_client_options(client_options(allow_http));
            if !region_set {
                builder = builder.with_region("us-east-1");
            }
            Arc::new(
                builder
                    .build()
                    .map_err(|e| remote_error(&bucket_url, format!("bad S3 settings: {e}")))?,
            )
        }
        _ => Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(&parts.authority)
                .with_retry(retry())
                .with_client_options(client_options(true))
                .with_http_connector(GuardedConnector { public_only })
                .build()
                .map_err(|e| remote_error(&parts.authority, format!("bad URL: {e}")))?,
        ),
    };
    stores
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cache_key, built.clone());
    Ok(built)
}

/// Says what an `object_store` error means for the object at `url`.
fn explain(parts: &Parts, url: &str, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let s3 = parts.location == Location::S3;
    if let Some(refused) = refused_in_chain(&e) {
        return remote_error(url, refused);
    }
    let text = e.to_string();
    if let Some(status) = ["301", "302", "303", "307", "308"]
        .into_iter()
        .find(|code| text.contains(&format!("status code: {code}")))
    {
        return remote_error(
            url,
            format!(
                "the server answered with a redirect (HTTP {status}); redirects are not \
                 followed (their target would escape the --remote-inputs check): give the \
                 object's final URL"
            ),
        );
    }
    let message = match &e {
        E::NotFound { .. } if s3 => {
            let text = e.to_string();
            if text.contains("NoSuchBucket") {
                format!(
                    "no such bucket {:?}; check the bucket name and AWS_ENDPOINT_URL / AWS_REGION",
                    parts.authority
                )
            } else {
                format!(
                    "no such object (key {:?} in bucket {:?}); check the key, or list the bucket",
                    url.trim_start_matches("s3://")
                        .split_once('/')
                        .map(|(_, k)| k)
                        .unwrap_or(""),
                    parts.authority
                )
            }
        }
        E::NotFound { .. } => "no such object (HTTP 404); check the URL".to_string(),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } if s3 => format!(
            "access denied to bucket {:?}: the credentials (AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) are wrong or do not grant reading it ({e})",
            parts.authority
        ),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            format!("access denied by the server ({e})")
        }
        E::Precondition { .. } => changed_message(None),
        E::NotSupported { .. } | E::Generic { .. }
            if e.to_string().contains("Range request not supported")
                || e.to_string().contains("non-partial response") =>
        {
            "the server does not answer range requests (it sent the whole object for a byte \
             range); serve the file from a server with Range support, or download it and give \
             the local path"
                .to_string()
        }
        _ => e.to_string(),
    };
    remote_error(url, message)
}

/// The error of type `T` in `e`'s chain of sources, if any.
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        at = err.source();
    }
    None
}

/// The [`NotPublic`] refusal in `e`'s chain of sources, if any (found by
/// type, or by its text where a layer boxed it again).
fn refused_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(found) = find_in_chain::<NotPublic>(e) {
        return Some(found.to_string());
    }
    let mut at = Some(e);
    while let Some(err) = at {
        let text = err.to_string();
        if text.starts_with("refused: the host ") && text.contains("(--remote-inputs public)") {
            return Some(text);
        }
        at = err.source();
    }
    None
}

/// What an object replaced since planning means (`etags`: planned, now).
fn changed_message(etags: Option<(&str, &str)>) -> String {
    let seen = etags.map_or(String::new(), |(planned, now)| {
        format!(" (ETag {planned} when the job was planned, {now} now)")
    });
    format!(
        "the object changed while the job ran{seen}; nothing was written: run again once it is \
         stable"
    )
}

/// The objects a remote spec names, as URLs, sorted: one object, the objects
/// of an S3 glob (`*`, `?`, `[...]` on keys; `*` stays within a `/` level),
/// or the `*.csv` objects right under an S3 "directory" ending in `/`.
pub fn resolve(spec: &str, cancel: &Cancel) -> Result<Vec<PathBuf>> {
    let parts = parse(spec)?;
    let wildcard = crate::input::has_wildcard(&parts.key);
    let dir = parts.key.is_empty() || parts.key.ends_with('/');
    if !wildcard && !dir {
        return Ok(vec![PathBuf::from(parts.url_of(&parts.key))]);
    }
    if parts.location != Location::S3 {
        return Err(remote_error(
            spec,
            "an http(s) input names one object: globs and directories need s3://",
        ));
    }
    let pattern_text = if dir {
        format!("{}*.csv", parts.key)
    } else {
        parts.key.clone()
    };
    let pattern = glob::Pattern::new(&pattern_text)
        .map_err(|e| Error::invalid_option("INPUT", format!("bad glob {spec:?}: {e}")))?;
    let literal_end = pattern_text
        .find(['*', '?', '['])
        .unwrap_or(pattern_text.len());
    let prefix = pattern_text[..literal_end]
        .rfind('/')
        .map(|i| pattern_text[..i].to_string());
    let store = store(&parts, false)?;
    cancel.check()?;
    let listed = block_on(spec, async move {
        let prefix = prefix.map(ObjectPath::from);
        store.list(prefix.as_ref()).try_collect::<Vec<_>>().await
    })?
    .map_err(|e| explain(&parts, spec, e))?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let mut urls: Vec<String> = listed
        .iter()
        .map(|m| m.location.to_string())
        .filter(|k| pattern.matches_with(k, options))
        .map(|k| parts.url_of(&k))
        .collect();
    urls.sort();
    if urls.is_empty() {
        return Err(Error::NoInput {
            spec: spec.to_string(),
        });
    }
    Ok(urls.into_iter().map(PathBuf::from).collect())
}

/// Refuses a remote spec the policy does not allow, before any request.
pub fn admit(spec: &str, policy: RemoteInputs) -> Result<()> {
    let parts = parse(spec)?;
    match (policy, parts.location) {
        (RemoteInputs::All, _) | (RemoteInputs::Public, Location::S3) => Ok(()),
        (RemoteInputs::None, _) => Err(remote_error(
            spec,
            "this coordinator does not read remote inputs; ask its operator to start it with \
             --remote-inputs public (or all), or upload the file with rfm submit --upload",
        )),
        (RemoteInputs::Public, _) => check_public_host(spec, &parts.authority),
    }
}

/// Whether an address is one a public URL may lead to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64) // 100.64/10, shared (CGNAT)
                || (o[0] == 198 && (o[1] & 0xFE) == 18) // 198.18/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 of any v4
                || (s[0] == 0x2001 && s[1] == 0xdb8)) // documentation
        }
    }
}

/// Refuses an http(s) origin whose host is, or resolves to, a non-public
/// address (server-side request forgery: a submitter must not make the
/// coordinator fetch from its own network).
fn check_public_host(spec: &str, origin: &str) -> Result<()> {
    let (scheme, host_port) = origin.split_once("://").unwrap_or(("http", origin));
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let target = if host_port.starts_with('[') {
        match host_port.rsplit_once("]:") {
            Some((h, p)) => format!("{h}]:{p}"),
            None => format!("{host_port}:{default_port}"),
        }
    } else if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    };
    let addrs: Vec<IpAddr> = target
        .to_socket_addrs()
        .map_err(|e| remote_error(spec, format!("cannot resolve the host: {e}")))?
        .map(|a| a.ip())
        .collect();
    match addrs.iter().find(|ip| !is_public(**ip)) {
        Some(bad) => {
            let host = target.rsplit_once(':').map_or(target.as_str(), |(h, _)| h);
            Err(remote_error(
                spec,
                NotPublic {
                    host: host.trim_matches(['[', ']']).to_string(),
                    address: *bad,
                }
                .to_string(),
            ))
        }
        None if addrs.is_empty() => Err(remote_error(spec, "the host has no address")),
        None => Ok(()),
    }
}

/// An object opened for positioned reads: its size and ETag at open, and
/// optionally a block of it already fetched.
#[derive(Clone)]
pub struct RemoteObject {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    parts: Arc<Parts>,
    url: String,
    size: u64,
    etag: Option<String>,
    block: Option<(u64, Bytes)>,
}

/// Bytes fetched from remote objects by this process.
static FETCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes fetched from remote objects by this process so far.
pub fn bytes_fetched() -> u64 {
    FETCHED.load(std::sync::atomic::Ordering::Relaxed)
}

impl RemoteObject {
    /// Opens the object at `url` (a HEAD request); `public_only`: an http(s)
    /// object only over connections to public addresses.
    pub fn open(url: &str, public_only: bool) -> Result<RemoteObject> {
        let parts = Arc::new(parse(url)?);
        let store = store(&parts, public_only)?;
        let key = ObjectPath::from(parts.key.as_str());
        let (s, k) = (store.clone(), key.clone());
        let meta = block_on(url, async move {
            match s.head(&k).await {
                // A missing object or a missing bucket? A listing tells.
                Err(e @ object_store::Error::NotFound { .. }) => {
                    let bucket = s.list_with_delimiter(None).await;
                    let no_bucket = bucket.is_err_and(|b| {
                        matches!(b, object_store::Error::NotFound { .. })
                            || b.to_string().contains("NoSuchBucket")
                    });
                    Err((e, no_bucket))
                }
                other => other.map_err(|e| (e, false)),
            }
        })?
        .map_err(
            |(e, no_bucket)| match no_bucket && parts.location == Location::S3 {
                true => remote_error(
                    url,
                    format!(
                    "no such bucket {:?}; check the bucket name and AWS_ENDPOINT_URL / AWS_REGION",
                    parts.authority
                ),
                ),
                false => explain(&parts, url, e),
            },
        )?;
        Ok(RemoteObject {
            store,
            key,
            parts,
            url: url.to_string(),
            size: meta.size,
            etag: meta.e_tag,
            block: None,
        })
    }

    /// The object as the coordinator planned it: its size and ETag then,
    /// without a request (every read asks for that version). Without an
    /// ETag (a server that sends none) it is opened anew ([`Self::open`]).
    pub fn planned(
        url: &str,
        public_only: bool,
        size: u64,
        etag: Option<&str>,
    ) -> Result<RemoteObject> {
        let Some(etag) = etag else {
            return RemoteObject::open(url, public_only);
        };
        let parts = Arc::new(parse(url)?);
        let store = store(&parts, public_only)?;
        Ok(RemoteObject {
            store,
            key: ObjectPath::from(parts.key.as_str()),
            parts,
            url: url.to_string(),
            size,
            etag: Some(etag.to_string()),
            block: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's ETag when opened or planned (`None`: the server sends none).
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches `[start, end)` with one GET (If-Match the ETag seen at open
    /// or planned, and the answer's ETag checked against it).
    fn get(&self, start: u64, end: u64) -> Result<Bytes> {
        let options = GetOptions {
            if_match: self.etag.clone(),
            range: Some(GetRange::Bounded(start..end)),
            ..GetOptions::default()
        };
        let (store, key) = (self.store.clone(), self.key.clone());
        let (etag, bytes) = block_on(&self.url, async move {
            let answer = store.get_opts(&key, options).await?;
            let etag = answer.meta.e_tag.clone();
            answer.bytes().await.map(|bytes| (etag, bytes))
        })?
        .map_err(|e| explain(&self.parts, &self.url, e))?;
        if let (Some(planned), Some(now)) = (&self.etag, &etag) {
            if planned != now {
                return Err(remote_error(
                    &self.url,
                    changed_message(Some((planned, now))),
                ));
            }
        }
        if bytes.len() as u64 != end - start {
            return Err(remote_error(
                &self.url,
                format!(
                    "asked for bytes {start}..{end} and got {} bytes (the object had {} bytes \
                     when the job was planned): {}",
                    bytes.len(),
                    self.size,
                    changed_message(None)
                ),
            ));
        }
        FETCHED.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes)
    }

    /// Copies `[start, start + out.len())` into `out`: from the fetched block
    /// when it holds the bytes, else with a GET of exactly them.
    pub fn read_into(&self, start: u64, out: &mut [u8]) -> Result<()> {
        let end = start + out.len() as u64;
        if out.is_empty() {
            return Ok(());
        }
        if let Some((at, block)) = &self.block {
            let block_end = at + block.len() as u64;
            if start >= *at && start < block_end {
                // The block's part from memory; only the rest (the bytes
                // past a chunk's end that finish its last record) fetched.
                let from = (start - at) as usize;
                let held = (block_end.min(end) - start) as usize;
                out[..held].copy_from_slice(&block[from..from + held]);
                if end > block_end {
                    let bytes = self.get(block_end, end)?;
                    out[held..].copy_from_slice(&bytes);
                }
                return Ok(());
            }
        }
        let bytes = self.get(start, end)?;
        out.copy_from_slice(&bytes);
        Ok(())
    }

    /// The object with `[start, end)` (cut at its size) fetched in one GET.
    pub fn fetch(&self, start: u64, end: u64) -> Result<RemoteObject> {
        let end = end.min(self.size);
        let block = if start < end {
            self.get(start, end)?
        } else {
            Bytes::new()
        };
        Ok(RemoteObject {
            block: Some((start, block)),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_into_bucket_or_origin_and_key() {
        let p = parse("s3://bkt/a/b.csv").unwrap();
        assert_eq!((p.authority.as_str(), p.key.as_str()), ("bkt", "a/b.csv"));
        assert_eq!(p.url_of("x.csv"), "s3://bkt/x.csv");
        let p = parse("HTTP://h:81/d/f.csv").unwrap();
        assert_eq!(
            (p.authority.as_str(), p.key.as_str()),
            ("http://h:81", "d/f.csv")
        );
        assert!(parse("s3:///k").is_err());
        let err = parse("https://h/f.csv?sig=1").unwrap_err().to_string();
        assert!(err.contains("query"), "{err}");
    }

    #[test]
    fn private_and_loopback_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_public_policy_refuses_urls_to_the_coordinators_own_network() {
        for url in [
            "http://127.0.0.1:9000/x.csv",
            "http://localhost/x.csv",
            "https://169.254.169.254/latest/meta-data",
            "http://[::1]:80/x.csv",
            "http://user@10.0.0.1/x.csv",
        ] {
            let err = admit(url, RemoteInputs::Public).unwrap_err().to_string();
            assert!(err.contains("refused"), "{url}: {err}");
            assert!(admit(url, RemoteInputs::All).is_ok());
        }
        assert!(admit("s3://bkt/k.csv", RemoteInputs::Public).is_ok());
        let err = admit("s3://bkt/k.csv", RemoteInputs::None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--remote-inputs"), "{err}");
        let err = admit("http://localhost:9/x.csv", RemoteInputs::Public)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"localhost\" resolves to"), "{err}");
        assert!(err.contains("--remote-inputs public"), "{err}");
        assert_eq!("public".parse(), Ok(RemoteInputs::Public));
        assert!("maybe".parse::<RemoteInputs>().is_err());
    }

    /// What a worker meets when a name planned as public resolves to a
    /// private address by the time it connects (DNS rebinding): the
    /// connection itself is refused, whatever the planning saw.
    #[test]
    fn a_public_only_read_connects_to_no_loopback_address_however_named() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        for url in [
            format!("http://localhost:{port}/x.csv"),
            format!("http://127.0.0.1:{port}/x.csv"),
        ] {
            let err = match RemoteObject::open(&url, true) {
                Ok(_) => panic!("{url} opened"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("refused"), "{url}: {err}");
            assert!(err.contains("--remote-inputs public"), "{url}: {err}");
        }
        assert!(listener.accept().is_err(), "a connection was made");

        // Without the restriction the same URL is connected to.
        listener.set_nonblocking(false).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        });
        let err = match RemoteObject::open(&format!("http://localhost:{port}/x.csv"), false) {
            Ok(_) => panic!("a missing object opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no such object"), "{err}");
        server.join().unwrap();
    }
}
