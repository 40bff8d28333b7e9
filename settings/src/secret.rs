//! Which settings are secrets, and how they are printed: tokens and
//! passwords as `***`; in any value, the password of a URL's userinfo and
//! the `password=` / `sslpassword=` parameters of a URL or of a libpq
//! `key=value` connection string (any case). Paths of secret files
//! (`*_file`) are not secrets and are shown.

/// Shown in place of a secret.
pub const MASK: &str = "***";

/// True for a setting that holds a secret: a token (`token`,
/// `worker_token`, anything ending in `_token`), a password, or a database
/// URL (which may hold one).
pub fn is_secret_key(key: &str) -> bool {
    if key.ends_with("_file") {
        return false;
    }
    key == "token"
        || key.ends_with("_token")
        || key.contains("password")
        || key.ends_with("database_url")
}

/// True when the whole value is a secret (a token or a password).
fn is_whole_secret(key: &str) -> bool {
    is_secret_key(key) && !key.ends_with("database_url")
}

/// `value` of setting `key` as it may be printed.
pub fn mask_value(key: &str, value: &str) -> String {
    let connection_like = value.contains("://") || value.contains('=');
    if is_whole_secret(key) || (is_secret_key(key) && !connection_like) {
        return MASK.to_string();
    }
    mask_connection_secrets(value)
}

fn is_password_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "password" || key == "sslpassword"
}

/// `value` with the passwords of a URL (userinfo, `password=` query
/// parameters) or of a `key=value` connection string replaced by `***`.
pub fn mask_connection_secrets(value: &str) -> String {
    if let Some(scheme_end) = value.find("://") {
        mask_url(value, scheme_end + 3)
    } else if value.contains('=') {
        mask_key_values(value)
    } else {
        value.to_string()
    }
}

fn mask_url(value: &str, authority: usize) -> String {
    let mut out = value[..authority].to_string();
    let mut rest = &value[authority..];
    // Userinfo: everything up to the last `@`; its password after the first `:`.
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.find(':') {
            Some(colon) => {
                out.push_str(&userinfo[..colon]);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    let Some(q) = rest.find('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(&rest[..=q]);
    let params: Vec<String> = rest[q + 1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_password_key(&rfm_core::percent::decode(k)) => format!("{k}={MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    out.push_str(&params.join("&"));
    out
}

/// `host=h password='a b' dbname=d` → `host=h password=*** dbname=d`,
/// following libpq's quoting (`'…'` with `\` escapes). A tail that does not
/// parse is masked whole.
fn mask_key_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        let start = spaces(i);
        out.push_str(&text[i..start]);
        i = start;
        if i >= bytes.len() {
            return out;
        }
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &text[start..i];
        let eq = spaces(i);
        if bytes.get(eq) != Some(&b'=') {
            out.push_str(MASK);
            return out;
        }
        let value_start = spaces(eq + 1);
        let mut j = value_start;
        if bytes.get(j) == Some(&b'\'') {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = j.min(bytes.len());
        }
        out.push_str(&text[start..value_start]);
        if is_password_key(key) {
            out.push_str(MASK);
        } else {
            out.push_str(&text[value_start..j]);
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_settings_are_secrets_and_their_files_are_not() {
        for key in [
            "token",
            "worker_token",
            "admin_token",
            "client_token",
            "database_url",
            "db_password",
        ] {
            assert!(is_secret_key(key), "{key}");
            assert_eq!(
                mask_value(key, "postgresql://u:pw@h/db?password=pw"),
                if key == "database_url" {
                    "postgresql://u:***@h/db?password=***"
                } else {
                    "***"
                }
            );
        }
        for key in [
            "token_file",
            "worker_token_file",
            "admin_token_file",
            "tls_key",
            "listen",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert_eq!(mask_value("token_file", "/run/t"), "/run/t");
    }

    #[test]
    fn passwords_are_masked_in_every_connection_form() {
        for (given, shown) in [
            ("postgresql://u:pw@h:5/db", "postgresql://u:***@h:5/db"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            (
                "postgresql://u@h/db?sslmode=require&PassWord=pw&x=1",
                "postgresql://u@h/db?sslmode=require&PassWord=***&x=1",
            ),
            (
                "postgresql://h/db?pass%77ord=pw&sslpassword=kp",
                "postgresql://h/db?pass%77ord=***&sslpassword=***",
            ),
            (
                "host=h password=pw dbname=d",
                "host=h password=*** dbname=d",
            ),
            (
                "host=h PASSWORD = 'p w\\' x' sslpassword=kp",
                "host=h PASSWORD = *** sslpassword=***",
            ),
            ("host=h broken", "host=h ***"),
            ("http://coordinator:50051", "http://coordinator:50051"),
            ("plain", "plain"),
        ] {
            let masked = mask_connection_secrets(given);
            assert_eq!(masked, shown, "{given}");
            for secret in ["pw", "p w", "kp"] {
                if shown.contains("***") {
                    assert!(
                        !masked.split(['=', ':', '@', '&', ' ']).any(|p| p == secret),
                        "{masked}"
                    );
                }
            }
        }
    }
}
