//! Resolving every setting of a command: the flag if given on the command
//! line, else `RFM_*`, else `rfm.toml`, else the built-in default; values
//! from the environment and the file are checked with the flag's own clap
//! parser and added to the command line.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::{ConfigFile, Error, Scope, CONFIG_ARG, CONFIG_ENV, DEFAULT_FILE, PRINT_CONFIG_ARG};

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Given on the command line.
    Flag,
    /// This environment variable.
    Env(String),
    /// This place in the configuration file (`[run] of /path/rfm.toml`).
    File(String),
    /// The built-in default.
    Default,
    /// Not set anywhere (and no default).
    Unset,
}

impl Source {
    /// `flag`, `env`, `file`, `default` or `unset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env(_) => "env",
            Source::File(_) => "file",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }

    /// The variable or file place, if any.
    pub fn origin(&self) -> Option<&str> {
        match self {
            Source::Env(v) => Some(v),
            Source::File(p) => Some(p),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Env(v) => format!("environment variable {v}"),
            Source::File(p) => p.clone(),
            Source::Flag => "the command line".into(),
            Source::Default => "the default".into(),
            Source::Unset => "nowhere".into(),
        }
    }
}

/// One setting's effective value.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The table it is looked up in (`run`, `coordinator`, …).
    pub table: String,
    /// `foo_bar`.
    pub key: String,
    /// `--foo-bar`.
    pub flag: String,
    /// `RFM_FOO_BAR`.
    pub env: String,
    /// The value as text (`None`: unset).
    pub value: Option<String>,
    pub source: Source,
    /// Printed masked.
    pub secret: bool,
    /// The flag's help line.
    pub help: String,
}

/// Every setting of a command, and the command line with the values from
/// the environment and the file added.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// The table of the settings (`None`: no subcommand chosen).
    pub table: Option<String>,
    pub entries: Vec<Entry>,
    /// The command line to parse for real.
    pub argv: Vec<OsString>,
    /// `--print-config` was given.
    pub print: bool,
}

impl Resolved {
    /// The entry of `key`, if the command has that setting.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// The flags of `cmd` that are settings: long, visible, not positional, and
/// not `--help`, `--version`, `--config` or `--print-config`.
pub fn settable_args(cmd: &Command) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_long().is_some() && !a.is_hide_set() && !a.is_positional())
        .filter(|a| {
            !matches!(
                a.get_id().as_str(),
                "help" | "version" | CONFIG_ARG | PRINT_CONFIG_ARG
            )
        })
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .collect()
}

/// The setting key of a flag: `--foo-bar` → `foo_bar`.
pub fn key_of(arg: &Arg) -> String {
    arg.get_long().unwrap_or_default().replace('-', "_")
}

/// The old names of a flag's setting: its long aliases as keys.
fn alias_keys(arg: &Arg) -> Vec<String> {
    arg.get_all_aliases()
        .unwrap_or_default()
        .iter()
        .map(|a| a.replace('-', "_"))
        .collect()
}

/// The environment variable of a key: `foo_bar` → `RFM_FOO_BAR`.
pub fn env_of(key: &str) -> String {
    format!("RFM_{}", key.to_ascii_uppercase())
}

/// The environment variable of a flag: the `RFM_*` one it names itself
/// (`rfm-web --token`: RFM_WEB_TOKEN, not the client token RFM_TOKEN), else
/// [`env_of`] its key (a flag naming `DATABASE_URL` is read from
/// RFM_DATABASE_URL, then DATABASE_URL, like every `--database-url`).
pub fn env_name(arg: &Arg) -> String {
    arg.get_env()
        .map(|e| e.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("RFM_"))
        .unwrap_or_else(|| env_of(&key_of(arg)))
}

fn lenient(cmd: Command) -> Command {
    cmd.subcommand_required(false)
        .arg_required_else_help(false)
        // The environment is read here, not by clap, so that a bad value
        // names its variable.
        .mut_args(|a| a.required(false).env(None))
        .mut_subcommands(lenient)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn raw_value(m: &ArgMatches, id: &str) -> Option<String> {
    let values: Vec<String> = m
        .get_raw(id)?
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    Some(values.join(","))
}

/// clap's reason for refusing a value, without its "error:" prefix and usage.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.find("': ") {
        Some(i) if line.starts_with("invalid value") => line[i + 3..].to_string(),
        _ => line.to_string(),
    }
}

/// Whether `arg` conflicts (either way round) with a flag given on the
/// command line.
fn conflicts_with_a_given_flag(cmd: &Command, matches: &ArgMatches, arg: &Arg) -> bool {
    let given =
        |a: &Arg| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
    cmd.get_arguments().filter(|o| given(o)).any(|o| {
        cmd.get_arg_conflicts_with(arg)
            .iter()
            .any(|c| c.get_id() == o.get_id())
            || cmd
                .get_arg_conflicts_with(o)
                .iter()
                .any(|c| c.get_id() == arg.get_id())
    })
}

/// Resolves the settings of `cmd` (already [`crate::augment`]ed) for `argv`.
/// `env` reads an environment variable (a parameter for tests).
pub fn resolve(
    cmd: &Command,
    argv: &[OsString],
    scope: Scope<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, Error> {
    let loose = lenient(cmd.clone());
    let root = match loose.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        // --help, --version or a bad command line: clap's own message, with
        // the real usage (required arguments shown as required).
        Err(e) => {
            return Err(cmd
                .clone()
                .try_get_matches_from(argv)
                .err()
                .unwrap_or(e)
                .into())
        }
    };
    let (table, target, matches, prefix): (String, &Command, &ArgMatches, Vec<OsString>) =
        match scope {
            Scope::Table(t) => (
                t.to_string(),
                cmd,
                &root,
                argv[..1.min(argv.len())].to_vec(),
            ),
            Scope::Subcommand => {
                let Some((name, sub)) = root.subcommand() else {
                    return Ok(Resolved {
                        argv: argv.to_vec(),
                        ..Default::default()
                    });
                };
                let Some(target) = cmd.find_subcommand(name) else {
                    return Ok(Resolved {
                        argv: argv.to_vec(),
                        ..Default::default()
                    });
                };
                let mut prefix = argv[..1.min(argv.len())].to_vec();
                prefix.push(name.into());
                (name.to_string(), target, sub, prefix)
            }
        };

    let flag_path = matches
        .get_one::<PathBuf>(CONFIG_ARG)
        .or_else(|| root.get_one::<PathBuf>(CONFIG_ARG))
        .cloned();
    let print = matches.get_flag(PRINT_CONFIG_ARG) || root.get_flag(PRINT_CONFIG_ARG);
    let path = flag_path
        .or_else(|| env(CONFIG_ENV).filter(|p| !p.is_empty()).map(PathBuf::from))
        .or_else(|| {
            let p = PathBuf::from(DEFAULT_FILE);
            p.is_file().then_some(p)
        });
    let file = path.as_deref().map(ConfigFile::read).transpose()?;

    let args = settable_args(target);
    // A flag's long aliases are old names of its setting, accepted too.
    let keys: Vec<String> = args
        .iter()
        .flat_map(|a| std::iter::once(key_of(a)).chain(alias_keys(a)))
        .collect();
    if let Some(f) = &file {
        f.check_table(&table, &keys)?;
    }

    let mut entries = Vec::new();
    let mut added: Vec<OsString> = Vec::new();
    for arg in args {
        let id = arg.get_id().as_str();
        let key = key_of(arg);
        let long = format!("--{}", arg.get_long().unwrap_or_default());
        let env_name = env_name(arg);
        let from_flag = matches.value_source(id) == Some(ValueSource::CommandLine);
        // A flag given on the command line silences the lower layers of the
        // settings it conflicts with (`--results DIR` beats `DATABASE_URL`).
        let overruled = !from_flag && conflicts_with_a_given_flag(target, matches, arg);
        let mut found: Option<(String, Source)> = None;
        if !from_flag && !overruled {
            let mut names = vec![env_name.clone()];
            if key == "database_url" {
                names.push("DATABASE_URL".into());
            }
            names.extend(alias_keys(arg).iter().map(|k| env_of(k)));
            found = names.iter().find_map(|n| {
                env(n)
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, Source::Env(n.clone())))
            });
            if found.is_none() {
                if let Some(f) = &file {
                    for k in std::iter::once(key.clone()).chain(alias_keys(arg)) {
                        found = f
                            .lookup(&table, &k)?
                            .map(|(v, place)| (v, Source::File(place)));
                        if found.is_some() {
                            break;
                        }
                    }
                }
            }
        }
        let (value, source) = match found {
            Some((text, source)) => {
                let bad = |message: String| Error::BadValue {
                    key: key.clone(),
                    value: crate::secret::mask_value(&key, &text),
                    origin: source.describe(),
                    message,
                };
                if matches!(arg.get_action(), ArgAction::SetTrue) {
                    let on =
                        parse_bool(&text).ok_or_else(|| bad("expected true or false".into()))?;
                    if on {
                        added.push(long.clone().into());
                    }
                    (Some(on.to_string()), source)
                } else {
                    let mut probe = prefix.clone();
                    probe.push(format!("{long}={text}").into());
                    if let Err(e) = loose.clone().try_get_matches_from(probe) {
                        return Err(bad(clap_reason(&e)));
                    }
                    added.push(format!("{long}={text}").into());
                    (Some(text), source)
                }
            }
            None if from_flag => (raw_value(matches, id), Source::Flag),
            None => match matches.value_source(id) {
                Some(ValueSource::DefaultValue) => (raw_value(matches, id), Source::Default),
                _ => (None, Source::Unset),
            },
        };
        entries.push(Entry {
            table: table.clone(),
            secret: crate::secret::is_secret_key(&key),
            key,
            flag: long,
            env: env_name,
            value,
            source,
            help: arg
                .get_help()
                .map(|h| crate::help_without_env(&h.to_string()).to_string())
                .unwrap_or_default(),
        });
    }

    let mut full = argv.to_vec();
    let at = full.iter().position(|a| a == "--").unwrap_or(full.len());
    full.splice(at..at, added);
    Ok(Resolved {
        file: file.map(|f| f.path),
        table: Some(table),
        entries,
        argv: full,
        print,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        crate::augment(
            Command::new("t")
                .arg(
                    Arg::new("threads")
                        .long("threads")
                        .value_parser(clap::value_parser!(u32)),
                )
                .arg(Arg::new("listen").long("listen").default_value("0.0.0.0:1"))
                .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue)),
        )
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("t")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn environment_fills_what_flags_leave() {
        let env = |n: &str| match n {
            "RFM_THREADS" => Some("4".to_string()),
            "RFM_QUIET" => Some("yes".to_string()),
            "RFM_LISTEN" => Some("1.2.3.4:5".to_string()),
            _ => None,
        };
        let r = resolve(
            &cmd(),
            &argv(&["--listen", "9.9.9.9:9"]),
            Scope::Table("t"),
            &env,
        )
        .unwrap();
        assert_eq!(
            r.get("threads").unwrap().source,
            Source::Env("RFM_THREADS".into())
        );
        assert_eq!(r.get("listen").unwrap().source, Source::Flag);
        assert_eq!(r.get("listen").unwrap().value.as_deref(), Some("9.9.9.9:9"));
        assert_eq!(r.get("quiet").unwrap().value.as_deref(), Some("true"));
        let m = cmd().try_get_matches_from(r.argv).unwrap();
        assert_eq!(m.get_one::<u32>("threads"), Some(&4));
        assert!(m.get_flag("quiet"));
        assert_eq!(m.get_one::<String>("listen").unwrap(), "9.9.9.9:9");
    }

    #[test]
    fn a_flag_that_names_its_variable_is_read_from_that_one_only() {
        let cmd = crate::augment(
            Command::new("t").arg(Arg::new("token").long("token").env("RFM_WEB_TOKEN")),
        );
        let env = |n: &str| match n {
            "RFM_TOKEN" => Some("client".to_string()),
            "RFM_WEB_TOKEN" => Some("browser".to_string()),
            _ => None,
        };
        let r = resolve(&cmd, &argv(&[]), Scope::Table("t"), &env).unwrap();
        let token = r.get("token").unwrap();
        assert_eq!(token.source, Source::Env("RFM_WEB_TOKEN".into()));
        assert_eq!(token.env, "RFM_WEB_TOKEN");
        let only_generic = |n: &str| (n == "RFM_TOKEN").then(|| "client".to_string());
        let r = resolve(&cmd, &argv(&[]), Scope::Table("t"), &only_generic).unwrap();
        assert_eq!(r.get("token").unwrap().source, Source::Unset);
    }

    #[test]
    fn a_flag_silences_the_settings_it_conflicts_with() {
        let cmd = crate::augment(
            Command::new("t")
                .arg(Arg::new("results").long("results"))
                .arg(
                    Arg::new("database_url")
                        .long("database-url")
                        .conflicts_with("results"),
                ),
        );
        let env = |n: &str| (n == "DATABASE_URL").then(|| "postgresql://h/db".to_string());
        let r = resolve(&cmd, &argv(&["--results", "out"]), Scope::Table("t"), &env).unwrap();
        assert_eq!(r.get("database_url").unwrap().source, Source::Unset);
        cmd.clone().try_get_matches_from(&r.argv).unwrap();
        let r = resolve(&cmd, &argv(&[]), Scope::Table("t"), &env).unwrap();
        assert_eq!(
            r.get("database_url").unwrap().source,
            Source::Env("DATABASE_URL".into())
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let env = |n: &str| (n == "RFM_THREADS").then(|| "-3".to_string());
        let e = resolve(&cmd(), &argv(&[]), Scope::Table("t"), &env).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`threads`") && text.contains("RFM_THREADS"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_masked() {
        let mut e = Entry {
            table: "run".into(),
            key: "database_url".into(),
            flag: "--database-url".into(),
            env: "RFM_DATABASE_URL".into(),
            value: Some("postgresql://u:pw@h:5432/db".into()),
            source: Source::Default,
            secret: true,
            help: String::new(),
        };
        assert_eq!(crate::mask(&e).unwrap(), "postgresql://u:***@h:5432/db");
        e.value = Some("t0ken".into());
        assert_eq!(crate::mask(&e).unwrap(), "***");
    }
}
