//! A minimal xlsx writer (an xlsx is a zip of a few XML files): sheets of
//! typed cells (numbers, date serials with a date format, inline text),
//! streamed row by row. [`csv_to_xlsx`] writes a CSV file of the UCI layout
//! as a workbook with typed cells, for `rfm gen --format xlsx` and tests.

use std::fmt::Write as _;
use std::io::{Seek, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::date;
use crate::input::ColumnMap;

/// Most rows an xlsx sheet holds.
pub const MAX_SHEET_ROWS: u64 = 1_048_576;

/// A cell to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Number(f64),
    /// A date serial, shown with a date-and-time format.
    Date(f64),
    Text(&'a str),
}

/// A workbook being written: sheets one after the other, each row by row.
pub struct XlsxWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    sheets: Vec<String>,
    date1904: bool,
    /// Rows written to the open sheet.
    row: u64,
    open: bool,
    line: String,
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
}

/// Escapes text for XML; control characters other than tab and line
/// breaks (not allowed in XML) as OOXML's `_xHHHH_`.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "_x{:04X}_", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The column letters of a 0-based column (`A`, …, `Z`, `AA`, …).
pub fn column_name(mut col: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

type IoResult<T> = std::io::Result<T>;

fn zip_err(e: zip::result::ZipError) -> std::io::Error {
    std::io::Error::other(e)
}

impl<W: Write + Seek> XlsxWriter<W> {
    /// A workbook in the 1900 date system (or 1904 with `date1904`).
    pub fn new(out: W, date1904: bool) -> XlsxWriter<W> {
        XlsxWriter {
            zip: ZipWriter::new(out),
            sheets: Vec::new(),
            date1904,
            row: 0,
            open: false,
            line: String::new(),
        }
    }

    /// Starts a sheet; `dimension` (rows, columns), when known, is declared
    /// so that readers can plan without reading the rows.
    pub fn start_sheet(&mut self, name: &str, dimension: Option<(u64, u32)>) -> IoResult<()> {
        self.end_sheet()?;
        self.sheets.push(name.to_string());
        let path = format!("xl/worksheets/sheet{}.xml", self.sheets.len());
        self.zip.start_file(path, options()).map_err(zip_err)?;
        let mut head = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
        );
        if let Some((rows, cols)) = dimension {
            let _ = write!(
                head,
                "<dimension ref=\"A1:{}{}\"/>",
                column_name(cols.max(1) - 1),
                rows.max(1)
            );
        }
        head.push_str("<sheetData>");
        self.zip.write_all(head.as_bytes())?;
        self.row = 0;
        self.open = true;
        Ok(())
    }

    /// Writes the next row of the open sheet.
    pub fn row(&mut self, cells: &[Cell]) -> IoResult<()> {
        self.row += 1;
        let r = self.row;
        let line = &mut self.line;
        line.clear();
        let _ = write!(line, "<row r=\"{r}\">");
        for (i, c) in cells.iter().enumerate() {
            let col = column_name(i as u32);
            match c {
                Cell::Empty => {}
                Cell::Number(v) => {
                    let _ = write!(line, "<c r=\"{col}{r}\"><v>{v}</v></c>");
                }
                Cell::Date(v) => {
                    let _ = write!(line, "<c r=\"{col}{r}\" s=\"1\"><v>{v}</v></c>");
                }
                Cell::Text(t) => {
                    let _ = write!(
                        line,
                        "<c r=\"{col}{r}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">"
                    );
                    escape(t, line);
                    line.push_str("</t></is></c>");
                }
            }
        }
        line.push_str("</row>");
        self.zip.write_all(line.as_bytes())
    }

    fn end_sheet(&mut self) -> IoResult<()> {
        if self.open {
            self.zip.write_all(b"</sheetData></worksheet>")?;
            self.open = false;
        }
        Ok(())
    }

    /// Writes the workbook's parts and closes the zip.
    pub fn finish(mut self) -> IoResult<W> {
        self.end_sheet()?;
        let n = self.sheets.len();
        let mut types = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
        );
        let mut sheets = String::new();
        let mut rels = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
        );
        for (i, name) in self.sheets.iter().enumerate() {
            let k = i + 1;
            let _ = write!(types, "<Override PartName=\"/xl/worksheets/sheet{k}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>");
            sheets.push_str("<sheet name=\"");
            escape(name, &mut sheets);
            let _ = write!(sheets, "\" sheetId=\"{k}\" r:id=\"rId{k}\"/>");
            let _ = write!(rels, "<Relationship Id=\"rId{k}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet{k}.xml\"/>");
        }
        types.push_str("</Types>");
        let _ = write!(rels, "<Relationship Id=\"rId{}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/></Relationships>", n + 1);
        let workbook = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><workbookPr{}/><sheets>{sheets}</sheets></workbook>",
            if self.date1904 { " date1904=\"1\"" } else { "" }
        );
        // Style 1: built-in number format 22 (m/d/yy h:mm), a date and time.
        let styles = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><fonts count=\"1\"><font><sz val=\"11\"/><name val=\"Calibri\"/></font></fonts><fills count=\"1\"><fill><patternFill patternType=\"none\"/></fill></fills><borders count=\"1\"><border/></borders><cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs><cellXfs count=\"2\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/><xf numFmtId=\"22\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyNumberFormat=\"1\"/></cellXfs></styleSheet>";
        let root_rels = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>";
        for (path, text) in [
            ("[Content_Types].xml", types.as_str()),
            ("_rels/.rels", root_rels),
            ("xl/workbook.xml", workbook.as_str()),
            ("xl/_rels/workbook.xml.rels", rels.as_str()),
            ("xl/styles.xml", styles),
        ] {
            self.zip.start_file(path, options()).map_err(zip_err)?;
            self.zip.write_all(text.as_bytes())?;
        }
        self.zip.finish().map_err(zip_err)
    }
}

/// The date serial of a timestamp in the 1900 (or 1904) date system.
pub fn timestamp_serial(ts: date::Timestamp, date1904: bool) -> f64 {
    let epoch = if date1904 {
        date::days_from_civil(1904, 1, 1)
    } else {
        date::days_from_civil(1899, 12, 30)
    } as i64;
    (ts - epoch * 86_400) as f64 / 86_400.0
}

/// Text of CSV bytes: UTF-8, else read as ISO-8859-1 (as the spec reads ids).
fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => bytes.iter().map(|&b| b as char).collect::<String>().into(),
    }
}

/// How a CSV column is typed in the workbook.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Digits only: a number (the invoice, the quantity).
    Integer,
    /// A decimal without exponent: a number (price, customer id).
    Decimal,
    /// A date the spec reads: a date serial.
    Date,
    Text,
}

fn typed<'a>(kind: Kind, text: &'a str, date1904: bool) -> Cell<'a> {
    let t = text.trim();
    if t.is_empty() {
        return Cell::Empty;
    }
    let plain = |t: &str| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    match kind {
        Kind::Integer if plain(t) && !t.contains('.') => {
            t.parse().map_or(Cell::Text(text), Cell::Number)
        }
        Kind::Decimal if plain(t) => t.parse().map_or(Cell::Text(text), Cell::Number),
        Kind::Date => match date::parse_auto(t.as_bytes()) {
            Some(ts) => Cell::Date(timestamp_serial(ts, date1904)),
            None => Cell::Text(text),
        },
        _ => Cell::Text(text),
    }
}

/// Writes a CSV file (`,`-separated, with a header holding the spec's
/// columns) as a workbook: its data rows split evenly over sheets named
/// `sheets`, each with the header; invoice and quantity digits, prices and
/// customer ids as numbers, dates as date serials with a date format,
/// everything else as text.
pub fn csv_to_xlsx(
    csv: &Path,
    out: impl Write + Seek,
    sheets: &[String],
    date1904: bool,
) -> IoResult<()> {
    let reader = || -> IoResult<csv::Reader<std::fs::File>> {
        Ok(csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(std::fs::File::open(csv)?))
    };
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    let mut counting = reader()?;
    while counting
        .read_byte_record(&mut record)
        .map_err(std::io::Error::other)?
    {
        rows += 1;
    }
    let mut input = reader()?;
    let header: Vec<String> = input
        .byte_headers()
        .map_err(std::io::Error::other)?
        .iter()
        .map(|h| text_of(h).trim().to_string())
        .collect();
    let columns = ColumnMap::resolve(csv, &header, b',').map_err(std::io::Error::other)?;
    let mut kinds = vec![Kind::Text; header.len()];
    kinds[columns.invoice] = Kind::Integer;
    kinds[columns.quantity] = Kind::Integer;
    kinds[columns.price] = Kind::Decimal;
    kinds[columns.customer] = Kind::Decimal;
    kinds[columns.date] = Kind::Date;
    let names: Vec<String> = if sheets.is_empty() {
        vec!["Sheet1".to_string()]
    } else {
        sheets.to_vec()
    };
    let per_sheet = rows.div_ceil(names.len() as u64).max(1);
    if per_sheet + 1 > MAX_SHEET_ROWS {
        return Err(std::io::Error::other(format!(
            "{} rows in {} sheets exceed {MAX_SHEET_ROWS} rows a sheet",
            rows,
            names.len()
        )));
    }
    let mut book = XlsxWriter::new(std::io::BufWriter::with_capacity(1 << 20, out), date1904);
    let header_cells: Vec<Cell> = header.iter().map(|h| Cell::Text(h)).collect();
    let mut left = rows;
    for name in &names {
        let here = left.min(per_sheet);
        left -= here;
        book.start_sheet(name, Some((here + 1, header.len() as u32)))?;
        book.row(&header_cells)?;
        for _ in 0..here {
            if !input
                .read_byte_record(&mut record)
                .map_err(std::io::Error::other)?
            {
                break;
            }
            let texts: Vec<std::borrow::Cow<str>> = record.iter().map(text_of).collect();
            let cells: Vec<Cell> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| typed(kinds.get(i).copied().unwrap_or(Kind::Text), t, date1904))
                .collect();
            book.row(&cells)?;
        }
    }
    let mut file = book.finish()?;
    file.flush()
}

/// Writes `rows` generated lines ([`crate::gen`]) as a workbook: as many
/// sheets (`Sheet1`, `Sheet2`, …) as the rows need. The CSV text is made in
/// a temporary file in `scratch` (a directory), removed at the end.
pub fn generate_xlsx(
    rows: u64,
    seed: u64,
    options: crate::gen::GenOptions,
    scratch: &Path,
    out: impl Write + Seek,
) -> IoResult<()> {
    let tmp = scratch.join(format!(".rfm-gen-{}.csv", std::process::id()));
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _remove = Remove(&tmp);
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        crate::gen::generate_with(rows, seed, options, &mut w)?;
        w.flush()?;
    }
    let sheets = rows.div_ceil(MAX_SHEET_ROWS - 1).max(1);
    let names: Vec<String> = (1..=sheets).map(|i| format!("Sheet{i}")).collect();
    csv_to_xlsx(&tmp, out, &names, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(27), "AB");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
    }

    #[test]
    fn serials_round_trip_through_the_reader_conversion() {
        let ts = date::timestamp(2010, 12, 1, 8, 26, 0).unwrap();
        for date1904 in [false, true] {
            let serial = timestamp_serial(ts, date1904);
            assert_eq!(
                super::super::cell::serial_timestamp(serial, date1904),
                Some(ts)
            );
        }
        assert_eq!(timestamp_serial(ts, false), 40513.0 + 506.0 / 1440.0);
    }
}
