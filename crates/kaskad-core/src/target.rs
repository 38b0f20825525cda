//! The binary target: which rows defaulted.

use crate::{Column, ColumnData, CoreError};

/// Turns the target column into 0/1 labels, 1 where the value is one of
/// `positive`. Missing targets are an error: a row without an outcome cannot
/// train or validate a model, and dropping it silently would hide a data fault.
pub fn binary_target(column: &Column, positive: &[String]) -> Result<Vec<u8>, CoreError> {
    let error = |message: String| CoreError::Target {
        column: column.name.clone(),
        message,
    };
    let labels: Vec<u8> = match &column.data {
        ColumnData::Categorical(values) => values
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(v) => Ok(u8::from(positive.contains(v))),
                None => Err(error(format!("row {} has no value", row + 1))),
            })
            .collect::<Result<_, _>>()?,
        ColumnData::Numeric(values) => {
            let positive: Vec<f64> = positive
                .iter()
                .map(|p| {
                    p.parse().map_err(|_| {
                        error(format!(
                            "is numeric, but the positive value `{p}` is not a number"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    if v.is_nan() {
                        Err(error(format!("row {} has no value", row + 1)))
                    } else {
                        Ok(u8::from(positive.contains(v)))
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
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(binary_target(&c, &p(&["bad"])).unwrap(), vec![1, 0]);
        assert_eq!(binary_target(&c, &p(&["bad", "good"])).unwrap(), vec![1, 1]);
        let n = Column::numeric("s", vec![1.0, 0.0]);
        assert_eq!(binary_target(&n, &p(&["1"])).unwrap(), vec![1, 0]);
        assert!(binary_target(&n, &p(&["bad"])).is_err());
        let m = Column::categorical("s", vec![None]);
        assert!(binary_target(&m, &p(&["bad"])).is_err());
    }
}
