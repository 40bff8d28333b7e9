//! Safe defaults of the servers: a coordinator or worker listening beyond
//! loopback needs its credentials and a data root, or `--insecure`, which it
//! then says loudly; credentials without TLS there travel in cleartext.

use std::net::SocketAddr;

/// The addresses of `listen` that are not loopback (0.0.0.0, ::, a LAN address).
pub fn beyond_loopback(listen: &[SocketAddr]) -> Vec<SocketAddr> {
    listen
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .copied()
        .collect()
}

/// What a server listening beyond loopback lacks: the flags not set among
/// `required` (`(flag, set)`).
///
/// `Err` (exit 2) when something is missing without `insecure`; `Ok(warnings)`
/// otherwise, the lines to log as WARN at start.
pub fn check(
    program: &str,
    listen: &[SocketAddr],
    required: &[(&str, bool)],
    insecure: bool,
    tls: bool,
) -> Result<Vec<String>, String> {
    let exposed = beyond_loopback(listen);
    let mut warnings = Vec::new();
    if insecure {
        warnings.push(format!(
            "{program}: INSECURE: started with --insecure: no credential or data root is required \
             of anyone who can reach its ports; never use it on a network you do not control"
        ));
    }
    let Some(first) = exposed.first() else {
        return Ok(warnings);
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, set)| !set)
        .map(|(flag, _)| *flag)
        .collect();
    if !missing.is_empty() && !insecure {
        let needed: Vec<&str> = required.iter().map(|(flag, _)| *flag).collect();
        return Err(format!(
            "refusing to listen on {first}, beyond loopback, without {}: a server reachable from \
             the network needs {}; set them, listen on 127.0.0.1, or pass --insecure to run it \
             open anyway",
            missing.join(", "),
            needed.join(" and ")
        ));
    }
    if missing.len() < required.len() && !tls {
        warnings.push(format!(
            "{program}: listening on {first} without TLS: its tokens travel in cleartext; use \
             --tls-cert and --tls-key"
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_needs_nothing() {
        let listen = [addr("127.0.0.1:50051"), addr("[::1]:9090")];
        assert!(check("c", &listen, &[("--token", false)], false, false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn beyond_loopback_needs_the_flags_or_insecure() {
        let listen = [addr("127.0.0.1:1"), addr("0.0.0.0:50051")];
        let required = [("--worker-token", true), ("--data-root", false)];
        let err = check("w", &listen, &required, false, false).unwrap_err();
        assert!(err.contains("0.0.0.0:50051") && err.contains("without --data-root"));
        assert!(err.contains("--worker-token and --data-root") && err.contains("--insecure"));
        let warnings = check("w", &listen, &required, true, false).unwrap();
        assert!(warnings[0].contains("INSECURE"));
        let all = [("--worker-token", true), ("--data-root", true)];
        let warnings = check("w", &listen, &all, false, false).unwrap();
        assert!(warnings[0].contains("cleartext") && warnings[0].contains("--tls-cert"));
        assert!(check("w", &listen, &all, false, true).unwrap().is_empty());
    }
}
