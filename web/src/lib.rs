//! rfm-web: the segments of finished runs in a browser. An axum server
//! renders every page as HTML with SVG charts drawn on the server, answers a
//! JSON API, and serves its own small script and style sheet from the
//! binary; no CDN, no build step. Runs are read through the read side
//! ([`rfm_runs`]), the same as the `rfm` commands and the terminal
//! dashboard.
//!
//! - [`data`]: the source, the kept runs and the blocking pool;
//! - [`params`], [`select`]: query strings, and the customers a request selects;
//! - [`server`]: routes, security headers, the token check, error pages;
//! - [`api`]: `/api/…` JSON;
//! - [`pages`]: the HTML pages; [`html`] and [`charts`] build them;
//! - [`live`]: a coordinator's jobs and workers for the Live page.

pub mod api;
pub mod charts;
pub mod cli;
pub mod data;
pub mod html;
pub mod live;
pub mod pages;
pub mod params;
pub mod select;
pub mod server;
