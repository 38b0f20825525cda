//! Applications in JSON → a [`Frame`] with the model's raw columns, every
//! rejected value named by its JSON path.
//!
//! Numeric columns take JSON numbers or strings that parse as finite numbers;
//! categorical columns take strings. `null` is a missing value, and so is a
//! column the application leaves out (the model imputes it as it would an
//! empty CSV cell); an empty string is a missing category, as in a CSV file.
//! A key the model does not read is an error, so a misspelt column is not
//! silently scored as missing.

use std::collections::HashMap;

use kaskad_core::{Column, ColumnKind, Frame};
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

/// Builds the frame the model reads from `rows`.
pub(crate) fn frame(
    rows: &[Application<'_>],
    inputs: &[(String, ColumnKind)],
) -> Result<Frame, ApiError> {
    let index: HashMap<&str, usize> = inputs
        .iter()
        .enumerate()
        .map(|(j, (name, _))| (name.as_str(), j))
        .collect();
    let mut numbers: Vec<Vec<f64>> = Vec::new();
    let mut categories: Vec<Vec<Option<String>>> = Vec::new();
    // Where each input's values live: its slot in `numbers` or `categories`.
    let slots: Vec<usize> = inputs
        .iter()
        .map(|(_, kind)| match kind {
            ColumnKind::Numeric => {
                numbers.push(vec![f64::NAN; rows.len()]);
                numbers.len() - 1
            }
            ColumnKind::Categorical => {
                categories.push(vec![None; rows.len()]);
                categories.len() - 1
            }
        })
        .collect();
    let mut unknown: Vec<(&str, String)> = Vec::new();
    for (i, (path, fields)) in rows.iter().enumerate() {
        for (key, value) in fields.iter() {
            let Some(&j) = index.get(key.as_str()) else {
                if !unknown.iter().any(|(k, _)| k == key) {
                    unknown.push((key, member(path, key)));
                }
                continue;
            };
            match inputs[j].1 {
                ColumnKind::Numeric => {
                    numbers[slots[j]][i] =
                        number(value).map_err(|m| ApiError::invalid(member(path, key), m))?;
                }
                ColumnKind::Categorical => {
                    categories[slots[j]][i] =
                        category(value).map_err(|m| ApiError::invalid(member(path, key), m))?;
                }
            }
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
    let mut numbers = numbers.into_iter();
    let mut categories = categories.into_iter();
    let columns = inputs
        .iter()
        .map(|(name, kind)| match kind {
            ColumnKind::Numeric => {
                Column::numeric(name.clone(), numbers.next().unwrap_or_default())
            }
            ColumnKind::Categorical => {
                Column::categorical(name.clone(), categories.next().unwrap_or_default())
            }
        })
        .collect();
    Frame::new(columns).map_err(ApiError::internal)
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
pub(crate) fn category(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
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
    use super::*;
    use serde_json::json;

    fn inputs() -> Vec<(String, ColumnKind)> {
        vec![
            ("Income".into(), ColumnKind::Numeric),
            ("Home".into(), ColumnKind::Categorical),
        ]
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
        let f = frame(&rows, &inputs()).unwrap();
        let income = f.column("Income").unwrap().as_numeric().unwrap();
        assert_eq!(income[..2], [120.5, 99.0]);
        assert!(income[2].is_nan());
        assert_eq!(
            f.column("Home").unwrap().as_categorical().unwrap(),
            [Some("rent".to_string()), None, None]
        );
    }

    #[test]
    fn wrong_types_name_their_path() {
        let body = json!({"applications": [{"Income": 1}, {"Income": 2}, {"Income": 3}, {"Income": "abc"}]});
        let (rows, _) = applications(&body).unwrap();
        let e = frame(&rows, &inputs()).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("$.applications[3].Income"));
        assert_eq!(e.message, r#"expected a number, got "abc""#);
        for bad in [json!("NaN"), json!("inf"), json!(true), json!([1])] {
            assert!(number(&bad).is_err(), "{bad}");
        }
        let e = frame(
            &[("$".into(), json!({"Home": 3}).as_object().unwrap())],
            &inputs(),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("$.Home"));
    }

    #[test]
    fn unknown_columns_are_listed() {
        let body = json!({"Income": 1, "Incme": 2, "my col": 3});
        let (rows, list) = applications(&body).unwrap();
        assert!(!list);
        let e = frame(&rows, &inputs()).unwrap_err();
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
