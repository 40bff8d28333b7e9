//! Compressed CSV (`.csv.gz`, `.csv.zst`): the file is decompressed as a
//! stream and its records go through the same splitter and classifier as a
//! plain CSV file ([`crate::parse::parse_range`]), so the ledger, the
//! malformed samples and their line numbers are the uncompressed file's.
//!
//! A compressed file cannot be split into byte ranges read independently:
//! it is one task, `[0, len)` of the compressed bytes. Gzip files of several
//! members (`cat a.gz b.gz`) and zstd files of several frames are read whole.
//! A file cut short, or bytes that are not of its format, fail the run with
//! [`Error::BadInput`] naming the file.
//!
//! The stream is parsed in blocks of about [`crate::engine::SUB_RANGE_SIZE`]
//! decompressed bytes, each cut at a record start found with the whole record
//! in view (three record-size cells past the cut are buffered first), so a
//! record is read exactly as in the uncompressed file.

use std::io::{BufRead, BufReader, Read};

use crate::cancel::Cancel;
use crate::engine::{InputFile, InputReader, SUB_RANGE_SIZE};
use crate::error::{Error, Result};
use crate::format::InputFormat;
use crate::input::{header_prefix_len, read_layout, FileLayout, ParseOptions};
use crate::parse::{parse_range_into, RangeSpec};
use crate::partial::PartialState;
use crate::scan::{RecordSplitter, MAX_RECORD_LIMIT};

/// Reads a file from its start through an [`InputReader`]'s positioned reads.
struct Sequential<'a> {
    reader: &'a InputReader,
    at: u64,
    buf: Vec<u8>,
}

impl Read for Sequential<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let end = (self.at + out.len() as u64).min(self.reader.size());
        if end <= self.at {
            return Ok(0);
        }
        self.reader
            .read(self.at, end, &mut self.buf)
            .map_err(std::io::Error::other)?;
        let n = self.buf.len();
        out[..n].copy_from_slice(&self.buf);
        self.at += n as u64;
        Ok(n)
    }
}

type Source<'a> = BufReader<Sequential<'a>>;

/// A zstd stream of one or more frames.
struct Zstd<'a> {
    frame: Option<ruzstd::decoding::StreamingDecoder<Source<'a>, ruzstd::decoding::FrameDecoder>>,
}

impl Read for Zstd<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            // This frame is done: another may follow.
            let mut source = self.frame.take().expect("a frame").into_inner();
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(
                ruzstd::decoding::StreamingDecoder::new(source).map_err(std::io::Error::other)?,
            );
        }
    }
}

/// The decompressed stream of a compressed file.
fn decoder<'a>(reader: &'a InputReader, format: InputFormat) -> Result<Box<dyn Read + 'a>> {
    let source = BufReader::with_capacity(
        1 << 20,
        Sequential {
            reader,
            at: 0,
            buf: Vec::new(),
        },
    );
    Ok(match format {
        InputFormat::CsvGzip => Box::new(flate2::bufread::MultiGzDecoder::new(source)),
        InputFormat::CsvZstd => {
            let frame = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| bad(reader, format, &e.to_string()))?;
            Box::new(Zstd { frame: Some(frame) })
        }
        other => unreachable!("{other} is not a compressed CSV format"),
    })
}

fn bad(reader: &InputReader, format: InputFormat, message: &str) -> Error {
    Error::BadInput {
        path: reader.path().to_path_buf(),
        format: format.name(),
        message: message.to_string(),
    }
}

/// Reads decompressed bytes onto `buf` until it holds `want` bytes or the
/// stream ends; returns whether it ended.
fn fill(
    stream: &mut dyn Read,
    buf: &mut Vec<u8>,
    want: usize,
    reader: &InputReader,
    format: InputFormat,
) -> Result<bool> {
    const STEP: usize = 1 << 20;
    while buf.len() < want {
        let at = buf.len();
        buf.resize(at + STEP, 0);
        let n = loop {
            match stream.read(&mut buf[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(at);
                    // A positioned read's own error (the file changed) comes
                    // through as is; anything else is the data.
                    let text = e.to_string();
                    return Err(match e.into_inner() {
                        Some(inner) => match inner.downcast::<Error>() {
                            Ok(engine) => *engine,
                            Err(_) => bad(reader, format, &text),
                        },
                        None => bad(reader, format, &text),
                    });
                }
            }
        };
        buf.truncate(at + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The layout of a compressed file: its header read from the decompressed
/// head. `data_start` is 0 and `len` the compressed size: the one task is the
/// whole file.
pub fn read_compressed_layout(
    reader: &InputReader,
    format: InputFormat,
    parse: &ParseOptions,
) -> Result<FileLayout> {
    let mut stream = decoder(reader, format)?;
    let want = header_prefix_len(parse) as usize;
    let mut head = Vec::new();
    let ended = fill(&mut *stream, &mut head, want, reader, format)?;
    let shown = if ended { head.len() as u64 } else { u64::MAX };
    let mut layout = read_layout(reader.path(), &head, shown, parse)?;
    layout.data_start = 0;
    layout.len = reader.size();
    Ok(layout)
}

/// The partial state of a whole compressed file (its one task).
pub fn compute_compressed(
    reader: &InputReader,
    input: &InputFile,
    file_index: u32,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<PartialState> {
    let format = input.format;
    let mut stream = decoder(reader, format)?;
    let cell = parse.max_record_size.clamp(1, MAX_RECORD_LIMIT) as usize;
    // Past a cut, the bytes a record starting before it can need.
    let margin = 3 * cell + 4;
    let mut buf = Vec::new();
    let mut ended = fill(
        &mut *stream,
        &mut buf,
        header_prefix_len(parse) as usize,
        reader,
        format,
    )?;
    let shown = if ended { buf.len() as u64 } else { u64::MAX };
    let data_start = read_layout(reader.path(), &buf, shown, parse)?.data_start as usize;
    // Decompressed offset of buf[0], and line breaks before it.
    let mut lines_before = memchr::memchr_iter(b'\n', &buf[..data_start]).count() as u64;
    buf.drain(..data_start);
    let mut base = data_start as u64;
    let mut state = PartialState::new();
    let mut splitter = RecordSplitter::new(parse.delimiter, parse.max_record_size);
    loop {
        cancel.check()?;
        if !ended {
            ended = fill(
                &mut *stream,
                &mut buf,
                SUB_RANGE_SIZE + margin,
                reader,
                format,
            )?;
        }
        if buf.is_empty() {
            break;
        }
        let cut = if ended {
            buf.len()
        } else {
            // Whole records up to `limit`, each split with all it may need in view.
            let limit = buf.len() - margin;
            let mut pos = 0;
            while splitter.next_record(&buf, base, &mut pos, limit).is_some() {}
            pos
        };
        let block = &buf[..cut];
        let range = RangeSpec { file_index, base };
        let mut ledger = parse_range_into(block, range, &input.layout.columns, parse, &mut state);
        for s in ledger.malformed_samples.iter_mut() {
            if s.line.is_none() {
                let upto = (s.offset - base) as usize;
                let breaks = memchr::memchr_iter(b'\n', &block[..upto]).count() as u64;
                s.line = Some(lines_before + breaks + 1);
            }
        }
        state.ledger.merge(ledger);
        lines_before += memchr::memchr_iter(b'\n', block).count() as u64;
        base += cut as u64;
        buf.drain(..cut);
        if ended && buf.is_empty() {
            break;
        }
    }
    reader.check_unchanged()?;
    state.seal();
    Ok(state)
}
