//! `rfm-dashboard`: parses the command line, opens the source, sets up the
//! terminal (restored on exit and on panic) and runs the event loop.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ratatui::crossterm::event::{self, Event};
use rfm_dashboard::app::App;
use rfm_dashboard::cli::Args;
use rfm_dashboard::loader::Loader;
use rfm_dashboard::terminal::{self, Tui};
use rfm_dashboard::{events, source, ui};

/// Exit code for a usage error (no source, a source not in this build).
const USAGE: u8 = 2;
/// Exit code when the terminal cannot be used.
const TERMINAL: u8 = 1;
/// Exit code when the database cannot be reached or used (as `rfm`'s).
const DATABASE: u8 = 6;

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(spec) = args.source() else {
        eprintln!(
            "rfm-dashboard: no runs to show; pass --results DIR with a folder written by `rfm run --out DIR` (or a folder of such folders), or --database-url URL (or set RFM_DATABASE_URL / DATABASE_URL) for runs published to PostgreSQL"
        );
        return ExitCode::from(USAGE);
    };
    let source = match source::open(&spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rfm-dashboard: {e}");
            return ExitCode::from(match e {
                source::SourceError::Database(rfm_store::Error::Url { .. }) => USAGE,
                source::SourceError::Database(_) => DATABASE,
                _ => USAGE,
            });
        }
    };
    // https://no-color.org: set and not empty disables colour.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(source.describe(), color);
    let loader = Loader::spawn(source);
    for command in app.start() {
        loader.send(command);
    }
    // Installs the panic hook that restores the terminal before a panic prints.
    let mut terminal = match terminal::init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rfm-dashboard: cannot use this terminal: {e}");
            return ExitCode::from(TERMINAL);
        }
    };
    let outcome = run(&mut terminal, &mut app, &loader);
    terminal::restore();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfm-dashboard: terminal error: {e}");
            ExitCode::from(TERMINAL)
        }
    }
}

/// The event loop: takes in loaded data, draws when something changed, and
/// waits a short while for a key so loading never blocks the screen.
fn run(terminal: &mut Tui, app: &mut App, loader: &Loader) -> io::Result<()> {
    let mut dirty = true;
    while !app.should_quit {
        for loaded in loader.ready() {
            for command in app.apply(loaded) {
                loader.send(command);
            }
            dirty = true;
        }
        if dirty {
            terminal.draw(|frame| ui::draw(frame, app))?;
            dirty = false;
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(key) => {
                    for command in events::handle_key(app, key) {
                        loader.send(command);
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(())
}
