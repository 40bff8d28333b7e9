//! Reading `rfm.toml` (with the `config` crate): its top-level keys and
//! tables as plain strings, checked against the known tables and keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Config, FileFormat, Value, ValueKind};

use crate::{Error, SHARED_KEYS, TABLES};

/// A parsed configuration file.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    /// The file's path (absolute when it could be made so).
    pub path: PathBuf,
    /// Top-level keys that are not tables.
    pub top: BTreeMap<String, Value>,
    /// Tables by name.
    pub tables: BTreeMap<String, BTreeMap<String, Value>>,
}

impl ConfigFile {
    /// Reads and checks `path`: top-level keys must be [`SHARED_KEYS`] or
    /// tables named in [`TABLES`].
    pub fn read(path: &Path) -> Result<ConfigFile, Error> {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file_error = |message: String| Error::File {
            path: shown.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(file_error(
                "no such file; check --config or RFM_CONFIG".to_string(),
            ));
        }
        let source = config::File::from(path)
            .format(FileFormat::Toml)
            .required(true);
        let map: BTreeMap<String, Value> = Config::builder()
            .add_source(source)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| file_error(e.to_string()))?;
        let mut file = ConfigFile {
            path: shown,
            ..Default::default()
        };
        for (key, value) in map {
            match value.kind {
                ValueKind::Table(table) => {
                    if !TABLES.contains(&key.as_str()) {
                        return Err(Error::UnknownKey {
                            place: format!("{}", file.path.display()),
                            key: format!("[{key}]"),
                            hint: format!("known tables: {}", TABLES.join(", ")),
                        });
                    }
                    file.tables.insert(key, table.into_iter().collect());
                }
                _ => {
                    if !SHARED_KEYS.contains(&key.as_str()) {
                        return Err(Error::UnknownKey {
                            place: format!("the top level of {}", file.path.display()),
                            key,
                            hint: format!(
                                "only {} may stand outside a table; put other settings in their table, e.g. [run]",
                                SHARED_KEYS.join(", ")
                            ),
                        });
                    }
                    file.top.insert(key, value);
                }
            }
        }
        Ok(file)
    }

    /// Checks that every key of `table` is one of `known`.
    pub fn check_table(&self, table: &str, known: &[String]) -> Result<(), Error> {
        let Some(keys) = self.tables.get(table) else {
            return Ok(());
        };
        for key in keys.keys() {
            if !known.iter().any(|k| k == key) {
                return Err(Error::UnknownKey {
                    key: key.clone(),
                    place: format!("[{table}] of {}", self.path.display()),
                    hint: format!("known settings of [{table}]: {}", known.join(", ")),
                });
            }
        }
        Ok(())
    }

    /// The value of `key` for `table`: the table's own, else a shared
    /// top-level one. Returns the value as text and where it was found.
    pub fn lookup(&self, table: &str, key: &str) -> Result<Option<(String, String)>, Error> {
        let (value, place) = if let Some(v) = self.tables.get(table).and_then(|t| t.get(key)) {
            (v, format!("[{table}] of {}", self.path.display()))
        } else if let Some(v) = self.top.get(key) {
            (v, format!("the top level of {}", self.path.display()))
        } else {
            return Ok(None);
        };
        let text = match &value.kind {
            ValueKind::String(s) => s.clone(),
            ValueKind::Boolean(b) => b.to_string(),
            ValueKind::I64(n) => n.to_string(),
            ValueKind::I128(n) => n.to_string(),
            ValueKind::U64(n) => n.to_string(),
            ValueKind::U128(n) => n.to_string(),
            ValueKind::Float(f) => f.to_string(),
            ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => {
                return Err(Error::NotAValue {
                    key: key.to_string(),
                    origin: place,
                })
            }
        };
        Ok(Some((text, place)))
    }
}
