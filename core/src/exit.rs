//! Exit codes of every rfm binary (`rfm`, `rfm-coordinator`, `rfm-worker`,
//! `rfm-dashboard`), one per class of failure, so scripts can tell a typo
//! from bad data from a broken cluster (README "Exit codes"). The numbers
//! are part of the interface: they never change.

use std::process::ExitCode;

use crate::ErrorKind;

/// Success.
pub const SUCCESS: i32 = 0;
/// An unexpected internal failure (a bug: please report it), or a terminal
/// or runtime the process cannot use.
pub const INTERNAL: i32 = 1;
/// A usage error: unknown flag, bad option or setting value (also clap's own code).
pub const USAGE: i32 = 2;
/// The input cannot be read or is not usable data (missing column, too many
/// malformed lines, as-of too early, unknown run).
pub const INPUT: i32 = 3;
/// Results could not be written.
pub const OUTPUT: i32 = 4;
/// The cluster failed: coordinator unreachable or unable to serve, no live
/// worker, job cancelled.
pub const CLUSTER: i32 = 5;
/// The database is unreachable, refuses the login, or failed during the load.
pub const DATABASE: i32 = 6;
/// Stopped by SIGINT (Ctrl-C; 128 + 2, as shells report it).
pub const SIGINT: i32 = 130;
/// Stopped by SIGTERM (128 + 15, as shells report it).
pub const SIGTERM: i32 = 143;

/// The exit code of an engine error.
pub fn of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Usage => USAGE,
        ErrorKind::Input => INPUT,
        ErrorKind::Output => OUTPUT,
    }
}

/// `code` as the value `main` returns (codes outside 0..=255 become [`INTERNAL`]).
pub fn code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(INTERNAL as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numbers_of_the_readme() {
        assert_eq!(
            [SUCCESS, INTERNAL, USAGE, INPUT, OUTPUT, CLUSTER, DATABASE, SIGINT, SIGTERM],
            [0, 1, 2, 3, 4, 5, 6, 130, 143]
        );
        assert_eq!(of(ErrorKind::Usage), 2);
        assert_eq!(of(ErrorKind::Input), 3);
        assert_eq!(of(ErrorKind::Output), 4);
        assert_eq!(code(CLUSTER), ExitCode::from(5));
        assert_eq!(code(-1), ExitCode::from(1));
    }
}
