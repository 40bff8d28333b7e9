//! `rfm-dashboard`: parses the command line, opens the source and the live
//! coordinator's poller, sets up the terminal (restored on exit and on panic)
//! and runs the event loop.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};
use rfm_core::exit;
use rfm_dashboard::app::App;
use rfm_dashboard::cli::{self, Args};
use rfm_dashboard::live::{LivePoller, LiveSource, POLL_INTERVAL};
use rfm_dashboard::loader::Loader;
use rfm_dashboard::terminal::{self, Tui};
use rfm_dashboard::{events, source, ui};

/// The coordinator to watch, with its token and TLS; a bad flag is a usage error.
fn live_source(url: &str, args: &Args) -> Result<LiveSource, String> {
    let token = rfm_proto::auth::load::secret(
        "--token",
        args.token.clone(),
        "--token-file",
        args.token_file.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let tls = args.tls.load().map_err(|e| e.to_string())?;
    LiveSource::new(url, token, tls)
}

fn main() -> ExitCode {
    let (args, _) = rfm_settings::parse::<Args>(rfm_settings::Scope::Table("dashboard"));
    let spec = cli::source(&args);
    if spec.is_none() && args.coordinator.is_none() {
        eprintln!(
            "rfm-dashboard: no runs to show; pass --results-root DIR with a folder written by `rfm run --out DIR` (or a folder of such folders), --database-url URL (or set RFM_DATABASE_URL / DATABASE_URL) for runs published to PostgreSQL, or --coordinator URL to watch a running coordinator"
        );
        return exit::code(exit::USAGE);
    }
    let live = match &args.coordinator {
        Some(url) => match live_source(url, &args) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("rfm-dashboard: {e}");
                return exit::code(exit::USAGE);
            }
        },
        None => None,
    };
    let source = match spec.as_ref().map(source::open).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rfm-dashboard: {e}");
            return exit::code(match e {
                source::SourceError::Database(rfm_store::Error::Url { .. }) => exit::USAGE,
                source::SourceError::Database(_) => exit::DATABASE,
                _ => exit::USAGE,
            });
        }
    };
    // https://no-color.org: set and not empty disables colour.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let describe = match (&source, &live) {
        (Some(s), _) => s.describe(),
        (None, Some(l)) => format!("coordinator {}", l.url()),
        (None, None) => String::new(),
    };
    let mut app = App::new(describe, color);
    if let Some(l) = &live {
        app.watch_coordinator(l.url().to_string(), source.is_none());
    }
    let loader = source.map(Loader::spawn);
    let poller = live.map(|l| LivePoller::spawn(l, POLL_INTERVAL));
    for command in app.start() {
        if let Some(loader) = &loader {
            loader.send(command);
        }
    }
    // Installs the panic hook that restores the terminal before a panic prints.
    let mut terminal = match terminal::init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rfm-dashboard: cannot use this terminal: {e}");
            return exit::code(exit::INTERNAL);
        }
    };
    let outcome = run(&mut terminal, &mut app, loader.as_ref(), poller.as_ref());
    terminal::restore();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfm-dashboard: terminal error: {e}");
            exit::code(exit::INTERNAL)
        }
    }
}

/// The event loop: takes in loaded data and live polls, draws when something
/// changed, and waits a short while for a key so loading never blocks the screen.
fn run(
    terminal: &mut Tui,
    app: &mut App,
    loader: Option<&Loader>,
    poller: Option<&LivePoller>,
) -> io::Result<()> {
    let mut dirty = true;
    let send = |command| {
        if let Some(loader) = loader {
            loader.send(command);
        }
    };
    while !app.should_quit {
        for loaded in loader.map(Loader::ready).unwrap_or_default() {
            app.apply(loaded).into_iter().for_each(send);
            dirty = true;
        }
        for update in poller.map(LivePoller::ready).unwrap_or_default() {
            app.apply_live(update);
            dirty = true;
        }
        if dirty {
            terminal.draw(|frame| ui::draw(frame, app))?;
            dirty = false;
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(key) => {
                    events::handle_key(app, key).into_iter().for_each(send);
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(())
}
