//! Applications in JSON → the cells a model's scoring plan reads (one per
//! raw column), every rejected value named by its JSON path.
//!
//! Numeric columns take JSON numbers or strings that parse as finite numbers;
//! categorical columns take strings. `null` is a missing value, and so is a
//! column the application leaves out (the model imputes it as it would an
//! empty CSV cell); an empty string is a missing category, as in a CSV file.
//! A key the model does not read is an error, so a misspelt column is not
//! silently scored as missing.

use kaskad_core::ColumnKind;
use kaskad_prepare::Cell;
use kaskad_registry::Servable;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// One application: its JSON path (`$` or `$.applications[3]`) and fields.
pub(crate) type Application<'a> = (String, &'a Map<String, Value>);

/// The applications in a request body: one object, or
/// `{"applications": [...]}`; `true` for the list form.
pub(crate) fn applications(body: &Value) -> Result<(Vec<Application<'_>>, bool), ApiError> {
    let Value::Object(object) = body else {
        return Err(ApiError::invalid(
            "$",
            format!(
                "expected an application (a JSON object) or {{\"applications\": [...]}}, got {}",
                shown(body)
            ),
        ));
    };
    let Some(list) = object.get("applications") else {
        return Ok((vec![("$".to_string(), object)], false));
    };
    let Value::Array(items) = list else {
        return Err(ApiError::invalid(
            "$.applications",
            format!("expected a list of applications, got {}", shown(list)),
        ));
    };
    let rows = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("$.applications[{i}]");
            match item {
                Value::Object(fields) => Ok((path, fields)),
                other => Err(ApiError::invalid(
                    path,
                    format!(
                        "expected an application (a JSON object), got {}",
                        shown(other)
                    ),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, true))
}

/// The cells `model` reads from `rows`: one per input column and row,
/// row-major, borrowing the strings of the JSON body.
pub(crate) fn cells<'a>(
    rows: &[Application<'a>],
    model: &Servable,
) -> Result<Vec<Cell<'a>>, ApiError> {
    let inputs = model.input_columns();
    let width = inputs.len();
    let mut cells: Vec<Cell<'a>> = Vec::with_capacity(rows.len() * width);
    let mut unknown: Vec<(&str, String)> = Vec::new();
    for (path, fields) in rows {
        let start = cells.len();
        cells.extend(inputs.iter().map(|(_, kind)| Cell::missing(*kind)));
        for (key, value) in fields.iter() {
            let Some(j) = model.input_position(key) else {
                if !unknown.iter().any(|(k, _)| k == key) {
                    unknown.push((key, member(path, key)));
                }
                continue;
            };
            let at = || member(path, key);
            cells[start + j] = match inputs[j].1 {
                ColumnKind::Numeric => {
                    Cell::Number(number(value).map_err(|m| ApiError::invalid(at(), m))?)
                }
                ColumnKind::Categorical => {
                    Cell::Level(level(value).map_err(|m| ApiError::invalid(at(), m))?)
                }
            };
        }
    }
    if let Some((_, first)) = unknown.first() {
        let names: Vec<&str> = unknown.iter().map(|(k, _)| *k).collect();
        let known: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ApiError::invalid(
            first.clone(),
            format!(
                "unknown column{} {} (the model reads {})",
                if names.len() > 1 { "s" } else { "" },
                names.join(", "),
                known.join(", ")
            ),
        ));
    }
    Ok(cells)
}

/// A numeric cell: a number, a string holding one, or null (missing).
pub(crate) fn number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Null => Ok(f64::NAN),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number, got {}", shown(value))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("expected a number, got {}", shown(value))),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(format!("expected a number, got {}", shown(value)))
        }
    }
}

/// A categorical cell: a string, or null or "" (missing).
pub(crate) fn level(value: &Value) -> Result<Option<&str>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(format!(
            "expected a category (a string), got {}",
            shown(value)
        )),
    }
}

/// The JSON path of `key` inside the object at `base`.
pub(crate) fn member(base: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", Value::String(key.to_string()))
    }
}

/// A value as JSON, shortened so an error message stays readable.
pub(crate) fn shown(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        text
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kaskad_core::config::{Encoding, PrepareOptions};
    use kaskad_core::{Column, Frame};
    use kaskad_prepare::Preprocessor;
    use kaskad_registry::{ModelArtifact, ScoringPlan};
    use kaskad_train::{Hyperparams, LogisticRegression, Model, TrainMode};
    use serde_json::json;

    use super::*;

    /// A model reading `Income` (numeric) and `Home` (categorical).
    fn model() -> Servable {
        let frame = Frame::new(vec![
            Column::numeric("Income", vec![1.0, 2.0, 3.0, 4.0]),
            Column::categorical(
                "Home",
                ["rent", "own", "rent", "own"]
                    .iter()
                    .map(|l| Some(l.to_string()))
                    .collect(),
            ),
        ])
        .unwrap();
        let options = PrepareOptions::default();
        let preprocessor = Preprocessor::fit(&frame, Encoding::OneHot, None, &options).unwrap();
        let x = preprocessor.transform(&frame).unwrap();
        let model = Model::Lr(LogisticRegression::fit(&x, &[0, 1, 1, 0], 1.0).unwrap());
        Servable::Trained(ScoringPlan::new(Arc::new(ModelArtifact {
            format: kaskad_registry::FORMAT.into(),
            format_version: kaskad_registry::FORMAT_VERSION,
            name: "m".into(),
            version: 1,
            target: "y".into(),
            positive: vec!["1".into()],
            threshold: 0.5,
            params: Hyperparams::Lr { c: 1.0 },
            preprocessor,
            model,
            trained_on: vec![],
            train_rows: 4,
            mode: TrainMode::Full,
        })))
    }

    #[test]
    fn numbers_strings_nulls_and_absent_columns() {
        let body = json!({"applications": [
            {"Income": 120.5, "Home": "rent"},
            {"Income": " 99 ", "Home": null},
            {"Home": ""}
        ]});
        let (rows, list) = applications(&body).unwrap();
        assert!(list);
        let c = cells(&rows, &model()).unwrap();
        assert_eq!(
            c[..4],
            [
                Cell::Number(120.5),
                Cell::Level(Some("rent")),
                Cell::Number(99.0),
                Cell::Level(None)
            ]
        );
        assert!(c[4].is_missing() && c[5] == Cell::Level(None));
    }

    #[test]
    fn wrong_types_name_their_path() {
        let body = json!({"applications": [{"Income": 1}, {"Income": 2}, {"Income": 3}, {"Income": "abc"}]});
        let (rows, _) = applications(&body).unwrap();
        let e = cells(&rows, &model()).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("$.applications[3].Income"));
        assert_eq!(e.message, r#"expected a number, got "abc""#);
        for bad in [json!("NaN"), json!("inf"), json!(true), json!([1])] {
            assert!(number(&bad).is_err(), "{bad}");
        }
        let e = cells(
            &[("$".into(), json!({"Home": 3}).as_object().unwrap())],
            &model(),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("$.Home"));
    }

    #[test]
    fn unknown_columns_are_listed() {
        let body = json!({"Income": 1, "Incme": 2, "my col": 3});
        let (rows, list) = applications(&body).unwrap();
        assert!(!list);
        let e = cells(&rows, &model()).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(
            e.message.starts_with("unknown columns Incme, my col"),
            "{}",
            e.message
        );
        assert_eq!(e.path.as_deref(), Some("$.Incme"));
        assert_eq!(member("$", "my col"), r#"$["my col"]"#);
    }

    #[test]
    fn bodies_of_the_wrong_shape() {
        assert_eq!(
            applications(&json!([1])).unwrap_err().path.as_deref(),
            Some("$")
        );
        assert_eq!(
            applications(&json!({"applications": {}}))
                .unwrap_err()
                .path
                .as_deref(),
            Some("$.applications")
        );
        assert_eq!(
            applications(&json!({"applications": [{}, 5]}))
                .unwrap_err()
                .path
                .as_deref(),
            Some("$.applications[1]")
        );
    }
}
