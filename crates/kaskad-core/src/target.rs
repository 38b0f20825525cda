//! The binary target: which rows defaulted.

use crate::{Column, ColumnData, CoreError};

/// Turns the target column into 0/1 labels, 1 where the value equals
/// `positive`. Missing targets are an error: a row without an outcome cannot
/// train or validate a model, and dropping it silently would hide a data fault.
pub fn binary_target(column: &Column, positive: &str) -> Result<Vec<u8>, CoreError> {
    let error = |message: String| CoreError::Target {
        column: column.name.clone(),
        message,
    };
    let labels: Vec<u8> = match &column.data {
        ColumnData::Categorical(values) => values
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(v) => Ok(u8::from(v == positive)),
                None => Err(error(format!("row {} has no value", row + 1))),
            })
            .collect::<Result<_, _>>()?,
        ColumnData::Numeric(values) => {
            let positive: f64 = positive.parse().map_err(|_| {
                error(format!(
                    "is numeric, but the positive value `{positive}` is not a number"
                ))
            })?;
            values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    if v.is_nan() {
                        Err(error(format!("row {} has no value", row + 1)))
                    } else {
                        Ok(u8::from(*v == positive))
                    }
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_categorical_and_numeric_targets() {
        let c = Column::categorical("s", vec![Some("bad".into()), Some("good".into())]);
        assert_eq!(binary_target(&c, "bad").unwrap(), vec![1, 0]);
        let n = Column::numeric("s", vec![1.0, 0.0]);
        assert_eq!(binary_target(&n, "1").unwrap(), vec![1, 0]);
        assert!(binary_target(&n, "bad").is_err());
        let m = Column::categorical("s", vec![None]);
        assert!(binary_target(&m, "bad").is_err());
    }
}
