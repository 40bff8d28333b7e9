//! Who may call the coordinator: its credentials loaded from the flags
//! (`--token`, `--clients-file`, `--admin-token`, `--worker-token` and their
//! files), the warnings about secrets given on the command line, and the
//! rule that a coordinator listening beyond loopback needs credentials and a
//! data root, or `--insecure`.

use std::net::SocketAddr;

use rfm_proto::auth::{exposure, load, Credentials, Identity};
use rfm_settings::{Resolved, Source};

use crate::cli::{Args, AuthArgs};

/// The credentials the flags give (errors name the flag and file: exit 2).
pub fn credentials(a: &AuthArgs) -> Result<Credentials, String> {
    let mut credentials = Credentials::default();
    let client = load::secret(
        "--token",
        a.token.clone(),
        "--token-file",
        a.token_file.as_deref(),
    );
    let admin = load::secret(
        "--admin-token",
        a.admin_token.clone(),
        "--admin-token-file",
        a.admin_token_file.as_deref(),
    );
    let worker = load::secret(
        "--worker-token",
        a.worker_token.clone(),
        "--worker-token-file",
        a.worker_token_file.as_deref(),
    );
    let mut add = |identity: Identity, token: Option<String>| match token {
        Some(t) => credentials.add(identity, &t).map_err(|e| e.to_string()),
        None => Ok(()),
    };
    add(
        Identity::Client("client".into()),
        client.map_err(|e| e.to_string())?,
    )?;
    if let Some(path) = &a.clients_file {
        for (name, token) in load::clients_file(path).map_err(|e| e.to_string())? {
            add(Identity::Client(name), Some(token))?;
        }
    }
    add(Identity::Admin, admin.map_err(|e| e.to_string())?)?;
    add(Identity::Worker, worker.map_err(|e| e.to_string())?)?;
    Ok(credentials)
}

/// Warnings for the secrets given as flag values on the command line.
pub fn command_line_warnings(resolved: &Resolved) -> Vec<String> {
    [
        ("token", "--token", "RFM_TOKEN", "--token-file"),
        (
            "admin_token",
            "--admin-token",
            "RFM_ADMIN_TOKEN",
            "--admin-token-file",
        ),
        (
            "worker_token",
            "--worker-token",
            "RFM_WORKER_TOKEN",
            "--worker-token-file",
        ),
    ]
    .iter()
    .filter(|(key, ..)| {
        resolved
            .get(key)
            .is_some_and(|e| e.source == Source::Flag && e.value.is_some())
    })
    .map(|(_, flag, env, file)| {
        format!(
            "rfm-coordinator: {}",
            load::command_line_warning(flag, env, file)
        )
    })
    .collect()
}

/// The non-loopback rule: `Err` (exit 2) when the coordinator would listen
/// beyond loopback without its credentials and data root (and without
/// `--insecure`); else the warnings to log at start.
pub fn check_exposure(
    args: &Args,
    credentials: &Credentials,
    tls: bool,
) -> Result<Vec<String>, String> {
    let listen: Vec<SocketAddr> = std::iter::once(args.listen)
        .chain(args.http_listen)
        .collect();
    let mut warnings = exposure::check(
        "rfm-coordinator",
        &listen,
        &[
            ("--token", credentials.has_client()),
            ("--worker-token", credentials.has_worker()),
            ("--data-root", args.data_root.is_some()),
        ],
        args.insecure,
        tls,
    )?;
    if !credentials.is_open() && !credentials.has_worker() {
        warnings.push(
            "rfm-coordinator: no --worker-token: no worker can register with this coordinator"
                .into(),
        );
    }
    Ok(warnings)
}
