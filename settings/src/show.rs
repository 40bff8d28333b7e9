//! Printing the effective settings: a table for people, JSON for scripts.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::{Entry, Resolved};

/// A setting's value as printed: `***` for tokens and passwords, the
/// passwords inside URLs and connection strings hidden (see [`crate::secret`]).
pub fn mask(entry: &Entry) -> Option<String> {
    let value = entry.value.as_ref()?;
    Some(crate::secret::mask_value(&entry.key, value))
}

/// One setting as a JSON object: value (secrets masked), source, origin,
/// flag and environment variable.
pub fn entry_json(e: &Entry) -> Value {
    json!({
        "value": mask(e),
        "source": e.source.kind(),
        "origin": e.source.origin(),
        "flag": e.flag,
        "env": e.env,
        "help": e.help,
    })
}

/// The settings of one table as a JSON object keyed by setting.
pub fn settings_json(entries: &[Entry]) -> Value {
    let mut map = Map::new();
    for e in entries {
        map.insert(e.key.clone(), entry_json(e));
    }
    Value::Object(map)
}

/// `{"file": PATH|null, "table": NAME, "settings": {KEY: {...}}}` and a newline.
pub fn render_json(r: &Resolved) -> String {
    let v = json!({
        "file": r.file.as_ref().map(|p| p.display().to_string()),
        "table": r.table,
        "settings": settings_json(&r.entries),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The settings of one table as aligned text lines.
pub fn render_entries(out: &mut String, entries: &[Entry]) {
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    for e in entries {
        let value = mask(e).unwrap_or_else(|| "(unset)".into());
        let from = match e.source.origin() {
            Some(o) => format!("{} {o}", e.source.kind()),
            None => e.source.kind().to_string(),
        };
        let _ = writeln!(out, "  {:<width$} = {:<30} {from}", e.key, value);
    }
}

/// The file read and every setting with its source, as text.
pub fn render_text(r: &Resolved) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration file: {}",
        r.file
            .as_ref()
            .map_or("none".to_string(), |p| p.display().to_string())
    );
    if let Some(t) = &r.table {
        let _ = writeln!(out, "[{t}]");
    }
    render_entries(&mut out, &r.entries);
    out
}
