//! S3 settings from the AWS shared files, for remote inputs
//! ([`crate::remote`]): `~/.aws/credentials` and `~/.aws/config` (or the
//! files `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name), profile
//! `AWS_PROFILE` (default `default`).
//!
//! Read from a profile: `aws_access_key_id`, `aws_secret_access_key`,
//! `aws_session_token`, `region` and `endpoint_url`; the credentials file's
//! `[NAME]` section first, then the config file's `[profile NAME]` (or
//! `[default]`, or `[NAME]`). Environment variables take precedence, setting
//! by setting (the key pair as a whole). Role, SSO and process credentials
//! are not supported. A profile named by `AWS_PROFILE` that neither file has
//! is an error naming both files and the profile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The settings of one profile (`None`: not in either file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// Where the settings were found, for messages.
    pub source: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// The sections of an INI file: name → key → value (keys lowercased;
/// indented lines, nested settings such as `s3 =`'s, are skipped).
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    sections
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// A shared file's path: the variable's, else `~/.aws/NAME`.
fn file_path(variable: &str, name: &str) -> Option<PathBuf> {
    env(variable)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".aws").join(name)))
}

/// A file's sections; none for a missing file, an error for one that
/// exists but cannot be read.
fn read_sections(path: Option<&Path>) -> Result<HashMap<String, HashMap<String, String>>, String> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn shown(path: Option<&Path>) -> String {
    path.map_or("(no HOME)".to_string(), |p| p.display().to_string())
}

/// The profile of the environment (`AWS_PROFILE`, default `default`) from
/// the shared files: `Ok(None)` when neither file has the default profile,
/// an error when an `AWS_PROFILE` named is in neither.
pub fn load() -> Result<Option<Profile>, String> {
    let explicit = env("AWS_PROFILE");
    let name = explicit.clone().unwrap_or_else(|| "default".to_string());
    let credentials_path = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = file_path("AWS_CONFIG_FILE", "config");
    let credentials = read_sections(credentials_path.as_deref())?;
    let config = read_sections(config_path.as_deref())?;
    let from_credentials = credentials.get(&name);
    let from_config = config
        .get(&format!("profile {name}"))
        .or_else(|| config.get(&name));
    if from_credentials.is_none() && from_config.is_none() {
        return match explicit {
            Some(_) => Err(format!(
                "the AWS profile {name:?} (AWS_PROFILE) is in neither {} nor {}; add a [{name}] \
                 section with aws_access_key_id and aws_secret_access_key, or set AWS_PROFILE to \
                 a profile these files have",
                shown(credentials_path.as_deref()),
                shown(config_path.as_deref())
            )),
            None => Ok(None),
        };
    }
    let get = |key: &str| {
        from_credentials
            .and_then(|s| s.get(key))
            .or_else(|| from_config.and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let source = [
        from_credentials.map(|_| shown(credentials_path.as_deref())),
        from_config.map(|_| shown(config_path.as_deref())),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    Ok(Some(Profile {
        source: format!("profile {name:?} of {source}"),
        name,
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_keys_and_comments() {
        let text = "# comment\n[default]\naws_access_key_id = AKIA1\nAWS_Secret_Access_Key=s/+3\n\
                    ; other\n[profile  ci]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n\
                    endpoint_url = http://127.0.0.1:9000\n";
        let s = parse_ini(text);
        assert_eq!(s["default"]["aws_access_key_id"], "AKIA1");
        assert_eq!(s["default"]["aws_secret_access_key"], "s/+3");
        assert_eq!(s["profile ci"]["region"], "eu-west-1");
        assert_eq!(s["profile ci"]["endpoint_url"], "http://127.0.0.1:9000");
        assert!(!s["profile ci"].contains_key("addressing_style"));
    }
}
