//! The HTTP server: the routes, the headers every answer carries (a strict
//! Content-Security-Policy: scripts and styles only from this server, none
//! inline), the token check when a token is configured (an
//! `Authorization: Bearer` header, or the cookie `/login` sets), the
//! embedded assets, and the error answers (a 404 page, a 503 page with a
//! banner that reloads until the source is back).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rfm_proto::auth::Token;

use crate::data::{Data, DataError};
use crate::html::{self, Frame};
use crate::select::BadParam;
use crate::{api, pages};

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The name of the cookie holding the token after `/login`.
const COOKIE: &str = "rfm_web_token";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub data: Arc<Data>,
    /// The token a caller must present (`--token`); none: open (loopback).
    pub token: Option<Token>,
    /// Served over TLS: the login cookie is `Secure`.
    pub tls: bool,
    /// The coordinator of the Live page (`--coordinator`).
    pub live: Option<Arc<crate::live::Watched>>,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/heatmap", get(pages::heatmap::page))
        .route("/distributions", get(pages::distributions::page))
        .route("/customers", get(pages::customers::page))
        .route("/customers.csv", get(pages::customers::csv))
        .route("/customers/{id}", get(pages::customer::page))
        .route("/runs", get(pages::runs::page))
        .route("/movement", get(pages::runs::movement))
        .route("/live", get(pages::live::page))
        .route("/live/events", get(pages::live::events))
        .route("/api/live", get(pages::live::api))
        .route("/api/runs", get(api::runs))
        .route("/api/segments", get(api::segments))
        .route("/api/customers", get(api::customers))
        .route("/api/customers/{id}", get(api::customer))
        .route("/api/movement", get(api::movement))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/login", get(login_form).post(login))
        .fallback(not_found_route)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every answer; the token check when one is set; the
/// time the server spent, as `Server-Timing: app;dur=MS` (for the browser's
/// developer tools and the benchmark in docs/WEB.md).
async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let path = req.uri().path().to_string();
    let open = path == "/login" || path.starts_with("/assets/") || path == "/healthz";
    let mut res = if s.token.is_some() && !open && !authorized(&s, req.headers()) {
        if path.starts_with("/api/") {
            api::error(
                StatusCode::UNAUTHORIZED,
                "this server needs a token: send `Authorization: Bearer TOKEN`",
            )
        } else if req.method() == Method::GET {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/login"));
            r
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        }
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    res
}

fn authorized(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &s.token else { return true };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| token.matches(b)) {
        return true;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && token.matches(&rfm_core::percent::decode(v)))
}

async fn login_form(State(s): State<AppState>) -> Response {
    let body = "<h1>Sign in</h1><form method=\"post\" action=\"/login\" class=\"login\">\
        <label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\
        <button type=\"submit\">Sign in</button></form>";
    page_response(StatusCode::OK, &frame(&s, "Sign in", ""), body)
}

/// `token=…` (a form post): sets the cookie and goes to the overview.
async fn login(State(s): State<AppState>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let given = text
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| rfm_core::percent::decode(&v.replace('+', " ")))
        .unwrap_or_default();
    match &s.token {
        Some(t) if t.matches(given.trim()) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            let secure = if s.tls { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
                crate::params::component(given.trim())
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            r
        }
        Some(_) => page_response(
            StatusCode::UNAUTHORIZED,
            &frame(&s, "Sign in", ""),
            "<h1>Sign in</h1><p class=\"error\">That token is not this server's token.</p>\
             <p><a href=\"/login\">Try again</a></p>",
        ),
        None => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            r
        }
    }
}

async fn not_found_route(State(s): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/") {
        return api::error(StatusCode::NOT_FOUND, &format!("no API route {path}"));
    }
    error_page(
        &s,
        DataError::NotFound(format!("there is no page {path} here")),
        None,
    )
}

/// A frame for the pages of this server.
pub fn frame<'a>(s: &'a AppState, title: &'a str, current: &'a str) -> Frame<'a> {
    Frame {
        title,
        current,
        run: None,
        source: s.data.describe(),
        banner: None,
        refresh: None,
    }
}

/// An HTML answer.
pub fn page_response(status: StatusCode, frame: &Frame, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html::layout(frame, body),
    )
        .into_response()
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    Data(DataError),
    Bad(BadParam),
}

impl From<DataError> for PageError {
    fn from(e: DataError) -> Self {
        PageError::Data(e)
    }
}

impl From<BadParam> for PageError {
    fn from(e: BadParam) -> Self {
        PageError::Bad(e)
    }
}

/// The page of an error: 404 (unknown run, customer or page), 400 (a bad
/// parameter), or 503 with a banner that reloads every 5 s while the
/// source cannot be read.
pub fn error_page(s: &AppState, e: impl Into<PageError>, run: Option<&str>) -> Response {
    let mut f = frame(s, "", "");
    f.run = run;
    match e.into() {
        PageError::Data(DataError::NotFound(m)) => {
            f.title = "Not found";
            let body = format!(
                "<h1>Not found</h1><p class=\"error\" id=\"not-found\">{}</p><p><a href=\"/runs\">All runs</a> · <a href=\"/\">Latest run</a></p>",
                html::esc(&m)
            );
            page_response(StatusCode::NOT_FOUND, &f, &body)
        }
        PageError::Bad(BadParam(m)) => {
            f.title = "Bad request";
            let body = format!(
                "<h1>Bad request</h1><p class=\"error\">{}</p>",
                html::esc(&m)
            );
            page_response(StatusCode::BAD_REQUEST, &f, &body)
        }
        PageError::Data(DataError::Unavailable(m)) => {
            f.title = "Source unavailable";
            let banner = format!(
                "The runs cannot be read right now: {m}. This page reloads every 5 seconds and shows the runs again as soon as they can be read."
            );
            f.banner = Some(&banner);
            f.refresh = Some(5);
            page_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &f,
                "<h1>Source unavailable</h1><p>Waiting for the source to come back…</p>",
            )
        }
    }
}

/// A body of raw bytes with a content type and an attachment name.
pub fn download(kind: &'static str, name: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
