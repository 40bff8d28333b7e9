//! Command line of `rfm-web`, defined in [`rfm_settings::web`] (the `[web]`
//! table of `rfm.toml`, listed by `rfm config`).

pub use rfm_settings::web::Args;
