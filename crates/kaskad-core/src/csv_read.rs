//! Reading a CSV file into a [`Frame`], inferring each column's kind.
//!
//! A column is numeric when its non-missing values parse as finite numbers.
//! Empty cells and the usual markers (`NA`, `N/A`, `NaN`, `null`, `?`) are
//! missing. A column that is almost entirely numeric but holds a stray word
//! is refused with the line of the first offender rather than silently
//! turned into a category, and infinities are refused outright: both are the
//! kind of input error a lender wants to hear about before scoring.

use std::io::Read;
use std::path::Path;

use crate::{Column, ColumnData, ColumnKind, CoreError, Frame};

const MISSING_MARKERS: [&str; 8] = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "?"];
/// Share of numeric cells above which a non-numeric cell is treated as an error.
const NUMERIC_MAJORITY: f64 = 0.95;

fn is_missing(cell: &str) -> bool {
    MISSING_MARKERS.contains(&cell.trim())
}

/// Reads a CSV file with a header row.
pub fn read_csv(path: &Path) -> Result<Frame, CoreError> {
    let file = std::fs::File::open(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_csv_reader(file, path, None)
}

/// Reads CSV from `reader`; `path` only names the source in errors. With
/// `expected`, columns listed there get that kind (a cell that does not fit
/// is an error naming its line) instead of an inferred one.
pub fn read_csv_reader(
    reader: impl Read,
    path: &Path,
    expected: Option<&[(String, ColumnKind)]>,
) -> Result<Frame, CoreError> {
    let csv_error = |line: u64, message: String| CoreError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(CoreError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if let Some(blank) = headers.iter().position(String::is_empty) {
        return Err(csv_error(
            1,
            format!("column {} has an empty name", blank + 1),
        ));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    let mut lines: Vec<u64> = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("expected {expected_len} fields, found {len}"),
                csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
                _ => e.to_string(),
            };
            csv_error(line, message)
        })?;
        lines.push(record.position().map_or(0, csv::Position::line));
        for (column, cell) in cells.iter_mut().zip(record.iter()) {
            column.push(cell.trim().to_string());
        }
    }
    if lines.is_empty() {
        return Err(CoreError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut columns = Vec::with_capacity(headers.len());
    for (name, raw) in headers.into_iter().zip(cells) {
        let wanted = expected.and_then(|e| e.iter().find(|(n, _)| *n == name).map(|(_, k)| *k));
        let column =
            parse_column(name, raw, &lines, wanted).map_err(|(line, m)| csv_error(line, m))?;
        columns.push(column);
    }
    Frame::new(columns)
}

fn parse_column(
    name: String,
    raw: Vec<String>,
    lines: &[u64],
    wanted: Option<ColumnKind>,
) -> Result<Column, (u64, String)> {
    let mut numbers = Vec::with_capacity(raw.len());
    let mut first_word: Option<usize> = None;
    let mut present = 0usize;
    for (row, cell) in raw.iter().enumerate() {
        if is_missing(cell) {
            numbers.push(f64::NAN);
            continue;
        }
        present += 1;
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => numbers.push(v),
            Ok(_) => {
                return Err((
                    lines[row],
                    format!("column `{name}`: infinite value `{cell}` is not allowed"),
                ));
            }
            Err(_) => {
                first_word.get_or_insert(row);
                numbers.push(f64::NAN);
            }
        }
    }
    let words = raw
        .iter()
        .enumerate()
        .filter(|(r, c)| !is_missing(c) && numbers[*r].is_nan())
        .count();
    let numeric = match wanted {
        Some(ColumnKind::Numeric) => {
            if let Some(row) = first_word {
                return Err((
                    lines[row],
                    format!("column `{name}` is numeric, but found `{}`", raw[row]),
                ));
            }
            true
        }
        Some(ColumnKind::Categorical) => false,
        None => {
            if words == 0 && present > 0 {
                true
            } else if present > 0 && (present - words) as f64 / present as f64 >= NUMERIC_MAJORITY {
                let row = first_word.unwrap_or(0);
                return Err((
                    lines[row],
                    format!(
                        "column `{name}` is {:.1}% numeric, but found `{}`; fix the value or leave it empty",
                        100.0 * (present - words) as f64 / present as f64,
                        raw[row]
                    ),
                ));
            } else {
                false
            }
        }
    };
    let data = if numeric {
        ColumnData::Numeric(numbers)
    } else {
        ColumnData::Categorical(
            raw.into_iter()
                .map(|c| if is_missing(&c) { None } else { Some(c) })
                .collect(),
        )
    };
    Ok(Column { name, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Frame, CoreError> {
        read_csv_reader(text.as_bytes(), Path::new("t.csv"), None)
    }

    #[test]
    fn infers_kinds_and_missing_values() {
        let f = read("a,b\n1,x\nNA,y\n3.5,\n").unwrap();
        assert_eq!(f.column("a").unwrap().kind(), ColumnKind::Numeric);
        assert_eq!(f.column("a").unwrap().missing_count(), 1);
        assert_eq!(f.column("b").unwrap().kind(), ColumnKind::Categorical);
        assert_eq!(f.column("b").unwrap().missing_count(), 1);
    }

    #[test]
    fn ragged_row_names_file_and_line() {
        let err = read("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(err.starts_with("t.csv:3:"), "{err}");
        assert!(err.contains("expected 2 fields, found 1"), "{err}");
    }

    #[test]
    fn infinity_and_stray_word_are_refused_with_line() {
        let err = read("a\n1\ninf\n").unwrap_err().to_string();
        assert!(
            err.starts_with("t.csv:3:") && err.contains("infinite"),
            "{err}"
        );
        let mut text = String::from("a\n");
        for i in 0..40 {
            text.push_str(&format!("{i}\n"));
        }
        text.push_str("oops\n");
        let err = read(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("t.csv:42:") && err.contains("oops"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(matches!(read(""), Err(CoreError::EmptyFile { .. })));
        assert!(matches!(read("a,b\n"), Err(CoreError::EmptyFile { .. })));
    }

    #[test]
    fn expected_numeric_kind_rejects_words() {
        let expected = vec![("a".to_string(), ColumnKind::Numeric)];
        let err = read_csv_reader("a\n1\nx\n".as_bytes(), Path::new("t.csv"), Some(&expected))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.csv:3:"), "{err}");
    }
}
