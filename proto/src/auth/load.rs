//! Loading secrets: a token from its flag or variable, or from a file
//! (`--token-file`: read and trimmed), and the client credentials of
//! `--clients-file` (one `NAME TOKEN` a line). Every error names the flag
//! and the file; the binaries exit 2 on them.

use std::path::Path;

/// The shortest token a `--clients-file` line may hold.
pub const MIN_CLIENT_TOKEN_CHARS: usize = 16;
/// The longest client name.
const MAX_NAME_CHARS: usize = 64;

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("give {flag} or {file_flag}, not both")]
    Both { flag: String, file_flag: String },
    #[error("cannot read {flag} {path}: {message}")]
    Unreadable {
        flag: String,
        path: String,
        message: String,
    },
    #[error("{flag} {path} is empty: write the token in it")]
    Empty { flag: String, path: String },
    #[error("{path}:{line}: {message} (expected `NAME TOKEN`: a name of letters, digits, `.`, `_` or `-`, at most 64, and a token of at least {MIN_CLIENT_TOKEN_CHARS} characters)")]
    BadLine {
        path: String,
        line: usize,
        message: String,
    },
}

fn read(flag: &str, path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::Unreadable {
        flag: flag.into(),
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The secret of `flag` (its value, from the command line or a variable) or
/// of `file_flag` (a file holding it); `None` when neither is set.
pub fn secret(
    flag: &str,
    value: Option<String>,
    file_flag: &str,
    file: Option<&Path>,
) -> Result<Option<String>, LoadError> {
    let value = value.filter(|v| !v.trim().is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(LoadError::Both {
            flag: flag.into(),
            file_flag: file_flag.into(),
        }),
        (Some(v), None) => Ok(Some(v.trim().to_string())),
        (None, Some(path)) => {
            let text = read(file_flag, path)?;
            let token = text.trim();
            if token.is_empty() {
                return Err(LoadError::Empty {
                    flag: file_flag.into(),
                    path: path.display().to_string(),
                });
            }
            Ok(Some(token.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// The `(NAME, TOKEN)` lines of a `--clients-file` (`#` comments and blank
/// lines skipped).
pub fn clients_file(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let text = read("--clients-file", path)?;
    let bad = |line: usize, message: &str| LoadError::BadLine {
        path: path.display().to_string(),
        line,
        message: message.into(),
    };
    let mut clients = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad(i + 1, "not two words"));
        };
        let name_ok = name.len() <= MAX_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(bad(i + 1, "bad client name"));
        }
        if token.chars().count() < MIN_CLIENT_TOKEN_CHARS {
            return Err(bad(i + 1, "token too short"));
        }
        clients.push((name.to_string(), token.to_string()));
    }
    if clients.is_empty() {
        return Err(LoadError::Empty {
            flag: "--clients-file".into(),
            path: path.display().to_string(),
        });
    }
    Ok(clients)
}

/// The warning printed when `flag`'s secret is given on the command line.
pub fn command_line_warning(flag: &str, env: &str, file_flag: &str) -> String {
    format!(
        "the secret of {flag} is given on the command line, where `ps` shows it to every local \
         user: set {env} or use {file_flag} instead"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_values_or_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "  s3cret-token\n").unwrap();
        let got = secret("--token", None, "--token-file", Some(&file)).unwrap();
        assert_eq!(got.as_deref(), Some("s3cret-token"));
        let got = secret("--token", Some("v".into()), "--token-file", None).unwrap();
        assert_eq!(got.as_deref(), Some("v"));
        assert_eq!(
            secret("--token", Some(String::new()), "--token-file", None).unwrap(),
            None
        );
        let both = secret("--token", Some("v".into()), "--token-file", Some(&file));
        assert!(both.unwrap_err().to_string().contains("not both"));
        std::fs::write(&file, "\n \n").unwrap();
        let empty = secret("--token", None, "--token-file", Some(&file)).unwrap_err();
        assert!(empty.to_string().contains(&file.display().to_string()));
        let missing = dir.path().join("missing");
        let err = secret("--token", None, "--token-file", Some(&missing)).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read --token-file"),
            "{err}"
        );
    }

    #[test]
    fn clients_files_are_checked_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clients");
        std::fs::write(
            &file,
            "# team tokens\n\nalice alice-token-0123456\nbob.b  bob-token-012345678\n",
        )
        .unwrap();
        let clients = clients_file(&file).unwrap();
        assert_eq!(clients.len(), 2);
        assert_eq!(clients[1].0, "bob.b");
        for (text, why) in [
            ("alice short\n", "token too short"),
            ("al/ce alice-token-0123456\n", "bad client name"),
            ("alice\n", "not two words"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = clients_file(&file).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(":1:"), "{err}");
        }
    }
}
