//! Styles of the dashboard. With `NO_COLOR` set, only bold, reverse and
//! underline are used; meaning never rests on colour alone.

use ratatui::style::{Color, Modifier, Style};
use rfm_core::Segment;

#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn header(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn active_tab(self) -> Style {
        self.selected()
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// A scheduled run that found nothing new: neither an error nor a result.
    pub fn skipped(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::ITALIC)
    }

    /// The style of a run's status where runs are listed.
    pub fn run_status(self, status: rfm_core::RunStatus) -> Style {
        use rfm_core::RunStatus::*;
        match status {
            Failed | Abandoned => self.error(),
            Skipped => self.skipped(),
            Running => self.dim(),
            Succeeded | Published => Style::new(),
        }
    }

    pub fn info(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn emphasis(self) -> Style {
        self.fg(Color::White).add_modifier(Modifier::BOLD)
    }

    /// The colour of a segment's bars and cells.
    pub fn segment(self, segment: Segment) -> Style {
        use Segment::*;
        let c = match segment {
            Champions => Color::Green,
            LoyalCustomers => Color::Cyan,
            PotentialLoyalists => Color::LightGreen,
            NewCustomers => Color::LightBlue,
            Promising => Color::Blue,
            NeedAttention => Color::Yellow,
            AboutToSleep => Color::LightYellow,
            AtRisk => Color::LightRed,
            CantLoseThem => Color::Red,
            Hibernating => Color::Gray,
        };
        self.fg(c)
    }

    /// Background of a heatmap cell holding `fraction` (0–1) of the largest cell.
    pub fn heat(self, fraction: f64) -> Style {
        if !self.color {
            return if fraction >= 0.5 {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
        }
        // 256-colour blue ramp from dark to bright.
        const RAMP: [u8; 6] = [17, 18, 19, 20, 26, 32];
        let i = ((fraction.clamp(0.0, 1.0)) * (RAMP.len() - 1) as f64).round() as usize;
        Style::new().bg(Color::Indexed(RAMP[i])).fg(Color::White)
    }
}
