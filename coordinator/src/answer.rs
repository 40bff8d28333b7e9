//! Whether a task's answer is possible before it is merged: a worker's reply
//! and the partial state fetched from it are checked against the task's byte
//! range. A worker cannot make up a line out of nothing: each line it reads
//! is a record of at least one byte, and the records a task owns start at
//! or after its range's start and end by the end of its file (a chunk owns
//! the records from the first record start at or after its start to the
//! first at or after its end; the last chunk of a file, whose end is the
//! file's end, owns no byte outside its range). Every line is counted once:
//! as a purchase, an exclusion or a malformed line; a customer has at least
//! one purchase line, so there are no more customers than purchase lines.
//! A state that folds several tasks is checked against all their ranges.
//! An impossible answer is never merged (see `attempt`).

use rfm_core::ledger::MAX_SAMPLES;
use rfm_core::{Chunk, PartialState};

/// What `RunTask` answered.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub lines_read: u64,
    pub customers: u64,
    /// Where the task's own range ended: its chunk's end, or where a split
    /// cut it.
    pub end: u64,
}

/// A task's byte range and the length of its file.
pub type Range = (Chunk, u64);

/// Checks a task's answer: its `reply` and `state` (what Flight served) for
/// the `ranges` it covers (its chunk's, then those of the tasks folded into
/// it), each with its file's length. The error says what is impossible.
pub fn check(ranges: &[Range], reply: Reply, state: &PartialState) -> Result<(), String> {
    let ledger = &state.ledger;
    if ledger.lines_read != reply.lines_read {
        return Err(format!(
            "its reply says {} lines read, its state's ledger {}",
            reply.lines_read, ledger.lines_read
        ));
    }
    if state.customer_count() as u64 != reply.customers {
        return Err(format!(
            "its reply says {} customers, its state holds {}",
            reply.customers,
            state.customer_count()
        ));
    }
    // The records a task owns lie in [start, end of file); those of a
    // file's last chunk in [start, end).
    let reachable = ranges
        .iter()
        .map(|(chunk, file_len)| file_len.saturating_sub(chunk.start))
        .fold(0u64, u64::saturating_add);
    if ledger.lines_read > reachable {
        let named = ranges
            .iter()
            .map(|(c, _)| format!("{}..{}", c.start, c.end))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "{} lines read from bytes {named}: more lines than the {reachable} bytes from its start \
             to the end of its file",
            ledger.lines_read
        ));
    }
    let counted = ledger
        .purchase_lines
        .checked_add(ledger.excluded.total())
        .and_then(|n| n.checked_add(ledger.malformed));
    if counted != Some(ledger.lines_read) {
        return Err(format!(
            "its ledger counts {} lines read but {} purchase, {} excluded and {} malformed lines",
            ledger.lines_read,
            ledger.purchase_lines,
            ledger.excluded.total(),
            ledger.malformed
        ));
    }
    let customers = state.customer_count() as u64;
    if customers > ledger.purchase_lines {
        return Err(format!(
            "{customers} customers from {} purchase lines",
            ledger.purchase_lines
        ));
    }
    let customers = state.customers();
    if let Some((c, frequency)) = (0..customers.len())
        .map(|slot| (&customers[slot], state.frequency(slot)))
        .find(|&(c, frequency)| {
            frequency == 0 || frequency > ledger.purchase_lines || c.first_ts > c.last_ts
        })
    {
        return Err(format!(
            "a customer with {} invoices (of {} purchase lines) bought first at {} and last at {}",
            frequency, ledger.purchase_lines, c.first_ts, c.last_ts
        ));
    }
    let samples = &ledger.malformed_samples;
    if samples.len() > MAX_SAMPLES || samples.len() as u64 > ledger.malformed {
        return Err(format!(
            "{} malformed samples for {} malformed lines",
            samples.len(),
            ledger.malformed
        ));
    }
    if let Some(s) = samples.iter().find(|s| {
        !ranges.iter().any(|(chunk, file_len)| {
            s.file_index == chunk.file_index && s.offset >= chunk.start && s.offset < *file_len
        })
    }) {
        return Err(format!(
            "a malformed sample at byte {} of file {} outside its range",
            s.offset, s.file_index
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: Chunk = Chunk {
        file_index: 0,
        start: 100,
        end: 200,
    };

    fn state(lines: u64, purchases: u64, malformed: u64) -> PartialState {
        let mut s = PartialState::new();
        s.ledger.lines_read = lines;
        s.ledger.purchase_lines = purchases;
        s.ledger.malformed = malformed;
        s
    }

    fn reply(lines_read: u64) -> Reply {
        Reply {
            end: 0,
            lines_read,
            customers: 0,
        }
    }

    #[test]
    fn a_possible_answer_passes() {
        assert_eq!(check(&[(CHUNK, 1000)], reply(10), &state(10, 7, 3)), Ok(()));
        // The last chunk of a file: at most a line per byte of its range.
        assert_eq!(
            check(&[(CHUNK, 200)], reply(100), &state(100, 100, 0)),
            Ok(())
        );
    }

    #[test]
    fn impossible_answers_are_named() {
        let e = check(&[(CHUNK, 1000)], reply(11), &state(10, 10, 0)).unwrap_err();
        assert!(
            e.contains("reply says 11") && e.contains("ledger 10"),
            "{e}"
        );
        let e = check(
            &[(CHUNK, 1000)],
            Reply {
                lines_read: 10,
                customers: 2,
                end: 0,
            },
            &state(10, 10, 0),
        )
        .unwrap_err();
        assert!(e.contains("2 customers"), "{e}");
        let e = check(&[(CHUNK, 200)], reply(101), &state(101, 101, 0)).unwrap_err();
        assert!(e.contains("more lines than the 100 bytes"), "{e}");
        let e = check(&[(CHUNK, 1000)], reply(10), &state(10, 3, 3)).unwrap_err();
        assert!(e.contains("3 purchase"), "{e}");
        let e = check(
            &[(CHUNK, 1000)],
            reply(u64::MAX),
            &state(u64::MAX, u64::MAX, 1),
        )
        .unwrap_err();
        assert!(e.contains("lines"), "{e}");
    }

    #[test]
    fn a_folded_state_is_checked_against_all_its_ranges() {
        let other = Chunk {
            file_index: 0,
            start: 500,
            end: 600,
        };
        let ranges = [(CHUNK, 600), (other, 600)];
        // 500 bytes reachable from the first range, 100 from the second.
        assert_eq!(check(&ranges, reply(600), &state(600, 600, 0)), Ok(()));
        let e = check(&ranges, reply(601), &state(601, 601, 0)).unwrap_err();
        assert!(e.contains("100..200, 500..600"), "{e}");
        // A malformed sample in either range passes; one before both does not.
        let mut s = state(10, 9, 1);
        s.ledger
            .malformed_samples
            .push(rfm_core::ledger::MalformedSample {
                file_index: 0,
                offset: 550,
                line: None,
                text: "x".into(),
                problem: "y".into(),
            });
        assert_eq!(check(&ranges, reply(10), &s), Ok(()));
        s.ledger.malformed_samples[0].offset = 50;
        let e = check(&ranges, reply(10), &s).unwrap_err();
        assert!(e.contains("outside its range"), "{e}");
    }
}
