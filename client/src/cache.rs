//! `rfm cache ls|prune|clear`: the state cache of `rfm run` (see
//! [`rfm_core::cache`]) listed, pruned of entries whose file is gone or
//! changed and of the least recently used beyond its size bound, or cleared.
//! Paths in the output are escaped for the terminal.

use std::time::SystemTime;

use anyhow::{Context, Result};
use rfm_core::cache::{still_current, Cache};
use rfm_core::text::escape_for_terminal;

use crate::cli::{CacheAction, CacheCommandArgs};

pub fn cache(args: CacheCommandArgs) -> Result<()> {
    let cache = args.cache.cache(&args.results_root);
    match args.action {
        CacheAction::Ls => ls(&cache),
        CacheAction::Prune => prune(&cache),
        CacheAction::Clear => {
            let n = cache
                .clear()
                .with_context(|| format!("cannot clear {}", cache.dir().display()))?;
            println!(
                "{}",
                escape_for_terminal(&format!(
                    "removed {n} entries from {}",
                    cache.dir().display()
                ))
            );
            Ok(())
        }
    }
}

fn age(used: SystemTime) -> String {
    let s = SystemTime::now()
        .duration_since(used)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn ls(cache: &Cache) -> Result<()> {
    let entries = cache
        .entries()
        .with_context(|| format!("cannot list {}", cache.dir().display()))?;
    let mut out = format!(
        "{:>14} {:>6} {:>12}  FILE\n",
        "FILE BYTES", "AGE", "ENTRY BYTES"
    );
    let mut total = 0;
    for e in entries.iter().rev() {
        total += e.bytes;
        let (file, size) = match &e.header {
            Ok(h) => match h.keys.as_slice() {
                [key] => (key.file.path.clone(), key.file.size.to_string()),
                keys => (
                    format!(
                        "set of {} files: {}",
                        keys.len(),
                        keys.iter()
                            .map(|k| k.file.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    keys.iter().map(|k| k.file.size).sum::<u64>().to_string(),
                ),
            },
            Err(why) => (
                format!("{} (unusable: {why})", e.entry.display()),
                "-".into(),
            ),
        };
        out.push_str(&format!(
            "{size:>14} {:>6} {:>12}  {file}\n",
            age(e.used),
            e.bytes
        ));
    }
    out.push_str(&format!(
        "{} entries, {total} bytes in {} (bound {} bytes)",
        entries.len(),
        cache.dir().display(),
        cache.max_size()
    ));
    println!("{}", escape_for_terminal(&out));
    Ok(())
}

fn prune(cache: &Cache) -> Result<()> {
    let entries = cache
        .entries()
        .with_context(|| format!("cannot list {}", cache.dir().display()))?;
    let mut stale = 0;
    for e in &entries {
        let current = e
            .header
            .as_ref()
            .is_ok_and(|h| !h.keys.is_empty() && h.keys.iter().all(still_current));
        if !current {
            match std::fs::remove_file(&e.entry) {
                Ok(()) => stale += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot remove {}", e.entry.display()))
                }
            }
        }
    }
    let over = cache
        .enforce_size(None)
        .with_context(|| format!("cannot prune {}", cache.dir().display()))?;
    println!(
        "{}",
        escape_for_terminal(&format!(
            "removed {stale} entries of files gone or changed and {over} beyond {} bytes from {}",
            cache.max_size(),
            cache.dir().display()
        ))
    );
    Ok(())
}
