//! An input file and its layout ([`rfm_core::InputFile`]) to and from its
//! wire form: the coordinator sends it with each task as protobuf fields.
//! A layout from the wire is checked (every role's field within the record)
//! before a worker reads by it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rfm_core::excel::SheetLayout;
use rfm_core::input::{ColumnMap, FileLayout};
use rfm_core::InputFile;

use crate::v1;

/// The wire form of an input file.
pub fn to_proto(f: &InputFile) -> v1::InputFile {
    let c = &f.layout.columns;
    let field = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    v1::InputFile {
        path: f.path.as_os_str().as_bytes().to_vec(),
        data_start: f.layout.data_start,
        len: f.layout.len,
        header: f.layout.header.clone(),
        columns: Some(v1::ColumnMap {
            invoice: field(c.invoice),
            quantity: field(c.quantity),
            date: field(c.date),
            price: field(c.price),
            customer: field(c.customer),
            country: c.country.map(field),
            field_count: field(c.field_count),
            names: c
                .names
                .iter()
                .map(|(role, name)| v1::ColumnName {
                    role: role.clone(),
                    name: name.clone(),
                })
                .collect(),
        }),
        format: f.format.name().to_string(),
        etag: f.etag.clone(),
        public_only: f.public_only,
        sheets: f
            .layout
            .sheets
            .iter()
            .map(|s| v1::SheetLayout {
                index: s.index,
                name: s.name.clone(),
                header_row: s.header_row,
                end_row: s.end_row,
            })
            .collect(),
    }
}

/// An input file from the wire; a column beyond the record is an error.
pub fn from_proto(f: &v1::InputFile) -> Result<InputFile, String> {
    let c = f.columns.as_ref().ok_or("the input file has no columns")?;
    let within = |i: u32, role: &str| {
        if i < c.field_count {
            Ok(i as usize)
        } else {
            Err(format!(
                "the {role} column {i} is beyond the record's {} fields",
                c.field_count
            ))
        }
    };
    if f.data_start > f.len {
        return Err(format!(
            "the data starts at byte {} of a file of {} bytes",
            f.data_start, f.len
        ));
    }
    let format = if f.format.is_empty() {
        rfm_core::format::InputFormat::Csv
    } else {
        f.format.parse()?
    };
    Ok(InputFile {
        format,
        etag: f.etag.clone(),
        public_only: f.public_only,
        path: PathBuf::from(OsStr::from_bytes(&f.path)),
        layout: FileLayout {
            data_start: f.data_start,
            len: f.len,
            header: f.header.clone(),
            columns: ColumnMap {
                invoice: within(c.invoice, "invoice")?,
                quantity: within(c.quantity, "quantity")?,
                date: within(c.date, "date")?,
                price: within(c.price, "price")?,
                customer: within(c.customer, "customer")?,
                country: c.country.map(|i| within(i, "country")).transpose()?,
                field_count: c.field_count as usize,
                names: c
                    .names
                    .iter()
                    .map(|n| (n.role.clone(), n.name.clone()))
                    .collect(),
            },
            sheets: f
                .sheets
                .iter()
                .map(|s| SheetLayout {
                    index: s.index,
                    name: s.name.clone(),
                    header_row: s.header_row,
                    end_row: s.end_row,
                })
                .collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> InputFile {
        InputFile {
            path: PathBuf::from(OsStr::from_bytes(b"/data/caf\xe9.csv")),
            layout: FileLayout {
                data_start: 10,
                len: 100,
                header: vec!["InvoiceNo".into(), "Quantity".into()],
                columns: ColumnMap {
                    invoice: 0,
                    quantity: 1,
                    date: 2,
                    price: 3,
                    customer: 4,
                    country: Some(5),
                    field_count: 6,
                    names: vec![("invoice".into(), "InvoiceNo".into())],
                },
                sheets: vec![SheetLayout {
                    index: 2,
                    name: "Year 2010-2011".into(),
                    header_row: 0,
                    end_row: 541_910,
                }],
            },
            format: rfm_core::format::InputFormat::CsvZstd,
            etag: Some("\"9b2cf535\"".into()),
            public_only: true,
        }
    }

    #[test]
    fn an_input_file_round_trips_and_a_column_beyond_the_record_is_refused() {
        let f = file();
        let back = from_proto(&to_proto(&f)).unwrap();
        assert_eq!(back.path, f.path);
        assert_eq!(back.format, f.format);
        assert_eq!((&back.etag, back.public_only), (&f.etag, true));
        assert_eq!(back.layout.columns, f.layout.columns);
        assert_eq!(back.layout.sheets, f.layout.sheets);
        assert_eq!(
            (back.layout.data_start, back.layout.len, &back.layout.header),
            (10, 100, &f.layout.header)
        );
        let mut wire = to_proto(&f);
        if let Some(c) = wire.columns.as_mut() {
            c.country = Some(6);
        }
        let err = from_proto(&wire).unwrap_err();
        assert!(err.contains("country column 6"), "{err}");
        wire.columns = None;
        assert!(from_proto(&wire).is_err());
    }
}
