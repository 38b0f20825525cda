//! A small columnar frame: numeric columns as `f64` with NaN for missing,
//! categorical columns as optional strings.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Whether a column holds numbers or categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

/// The values of one column. Missing numbers are NaN; missing categories `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnData {
    Numeric(Vec<f64>),
    Categorical(Vec<Option<String>>),
}

/// A named column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

impl Column {
    pub fn numeric(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            data: ColumnData::Numeric(values),
        }
    }

    pub fn categorical(name: impl Into<String>, values: Vec<Option<String>>) -> Self {
        Self {
            name: name.into(),
            data: ColumnData::Categorical(values),
        }
    }

    pub fn kind(&self) -> ColumnKind {
        match self.data {
            ColumnData::Numeric(_) => ColumnKind::Numeric,
            ColumnData::Categorical(_) => ColumnKind::Categorical,
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match &self.data {
            ColumnData::Numeric(v) => v[row].is_nan(),
            ColumnData::Categorical(v) => v[row].is_none(),
        }
    }

    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.is_missing(i)).count()
    }

    /// The numeric values, if this column is numeric.
    pub fn as_numeric(&self) -> Option<&[f64]> {
        match &self.data {
            ColumnData::Numeric(v) => Some(v),
            ColumnData::Categorical(_) => None,
        }
    }

    /// The categorical values, if this column is categorical.
    pub fn as_categorical(&self) -> Option<&[Option<String>]> {
        match &self.data {
            ColumnData::Categorical(v) => Some(v),
            ColumnData::Numeric(_) => None,
        }
    }

    /// The value of one row as text, as it would appear in a CSV file ("" when missing).
    pub fn display_value(&self, row: usize) -> String {
        match &self.data {
            ColumnData::Numeric(v) if v[row].is_nan() => String::new(),
            ColumnData::Numeric(v) => v[row].to_string(),
            ColumnData::Categorical(v) => v[row].clone().unwrap_or_default(),
        }
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Column {
        let data = match &self.data {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Categorical(v) => {
                ColumnData::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        };
        Column {
            name: self.name.clone(),
            data,
        }
    }
}

/// Equal-length named columns: one batch of applications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    columns: Vec<Column>,
}

impl Frame {
    /// Builds a frame, checking that names are unique and lengths agree.
    pub fn new(columns: Vec<Column>) -> Result<Self, CoreError> {
        let expected = columns.first().map_or(0, Column::len);
        let mut seen = std::collections::HashSet::new();
        for column in &columns {
            if !seen.insert(column.name.as_str()) {
                return Err(CoreError::DuplicateColumn {
                    column: column.name.clone(),
                });
            }
            if column.len() != expected {
                return Err(CoreError::RaggedColumn {
                    column: column.name.clone(),
                    found: column.len(),
                    expected,
                });
            }
        }
        Ok(Self { columns })
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn into_columns(self) -> Vec<Column> {
        self.columns
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column called `name`, or an error listing the known columns.
    pub fn require(&self, name: &str) -> Result<&Column, CoreError> {
        self.column(name).ok_or_else(|| CoreError::UnknownColumn {
            column: name.to_string(),
            known: self.names().join(", "),
        })
    }

    /// Removes and returns the column called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let at = self.columns.iter().position(|c| c.name == name)?;
        Some(self.columns.remove(at))
    }

    /// Adds a column at the end; it must have as many rows as the frame.
    pub fn push(&mut self, column: Column) -> Result<(), CoreError> {
        let mut columns = std::mem::take(&mut self.columns);
        columns.push(column);
        *self = Frame::new(columns)?;
        Ok(())
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Frame {
        Frame {
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
        }
    }

    /// Stacks frames row-wise, matching columns by name. A column missing from
    /// one frame is filled with missing values there; a column that is
    /// numeric in one frame and categorical in another is an error.
    pub fn vstack(frames: &[Frame]) -> Result<Frame, CoreError> {
        let mut order: Vec<(String, ColumnKind)> = Vec::new();
        for frame in frames {
            for column in &frame.columns {
                match order.iter().find(|(n, _)| *n == column.name) {
                    Some((_, kind)) if *kind != column.kind() => {
                        return Err(CoreError::KindMismatch {
                            column: column.name.clone(),
                        });
                    }
                    Some(_) => {}
                    None => order.push((column.name.clone(), column.kind())),
                }
            }
        }
        let columns = order
            .into_iter()
            .map(|(name, kind)| {
                let data = match kind {
                    ColumnKind::Numeric => ColumnData::Numeric(
                        frames
                            .iter()
                            .flat_map(|f| match f.column(&name) {
                                Some(c) => c.as_numeric().unwrap_or_default().to_vec(),
                                None => vec![f64::NAN; f.n_rows()],
                            })
                            .collect(),
                    ),
                    ColumnKind::Categorical => ColumnData::Categorical(
                        frames
                            .iter()
                            .flat_map(|f| match f.column(&name) {
                                Some(c) => c.as_categorical().unwrap_or_default().to_vec(),
                                None => vec![None; f.n_rows()],
                            })
                            .collect(),
                    ),
                };
                Column { name, data }
            })
            .collect();
        Frame::new(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_ragged_and_duplicate_columns() {
        let ragged = Frame::new(vec![
            Column::numeric("a", vec![1.0]),
            Column::numeric("b", vec![1.0, 2.0]),
        ]);
        assert!(matches!(ragged, Err(CoreError::RaggedColumn { .. })));
        let dup = Frame::new(vec![
            Column::numeric("a", vec![1.0]),
            Column::numeric("a", vec![1.0]),
        ]);
        assert!(matches!(dup, Err(CoreError::DuplicateColumn { .. })));
    }

    #[test]
    fn vstack_fills_absent_columns_and_rejects_kind_mismatch() {
        let a = Frame::new(vec![Column::numeric("x", vec![1.0])]).unwrap();
        let b = Frame::new(vec![
            Column::numeric("x", vec![2.0]),
            Column::categorical("c", vec![Some("k".into())]),
        ])
        .unwrap();
        let s = Frame::vstack(&[a.clone(), b]).unwrap();
        assert_eq!(s.n_rows(), 2);
        assert_eq!(s.column("c").unwrap().missing_count(), 1);
        let c = Frame::new(vec![Column::categorical("x", vec![None])]).unwrap();
        assert!(matches!(
            Frame::vstack(&[a, c]),
            Err(CoreError::KindMismatch { .. })
        ));
    }
}
