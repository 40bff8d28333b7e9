//! Terminal set-up and restore. The panic hook restores the terminal before
//! a panic on the UI thread prints; a panic on the loader thread is caught
//! there and shown in the status line instead, so it leaves the screen intact.

use std::io::{self, stdout, Stdout};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

use crate::loader;

pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Raw mode and the alternate screen; the panic hook is installed first.
pub fn init() -> io::Result<Tui> {
    install_panic_hook();
    enable_raw_mode()?;
    if let Err(e) = execute!(stdout(), EnterAlternateScreen) {
        restore();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(stdout())).inspect_err(|_| restore())
}

/// Leaves raw mode and the alternate screen and shows the cursor; never fails.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(loader::THREAD_NAME) {
            // Caught by the loader and reported in the status line.
            return;
        }
        restore();
        previous(info);
    }));
}
