//! The Open Inference Protocol (KServe V2) over HTTP, so standard clients
//! (tritonclient, KServe) score kaskad models unchanged.
//!
//! A model's inputs are its raw columns, one tensor each, columnar, shape
//! `[N]` (or `[N, 1]`): FP64 for numeric columns (any V2 number type is
//! accepted, and NaN is a missing value) and BYTES for categorical ones (an
//! empty string is a missing category). An input left out is missing for
//! every row. The outputs are `score` (FP64) and `decision` (BYTES,
//! "approve"/"decline"). Tensors travel as JSON or with the binary tensor
//! data extension (`Inference-Header-Content-Length`), which tritonclient
//! uses by default, in both directions.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaskad_core::{Column, ColumnKind, Frame};
use kaskad_registry::LogEntry;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::ModelLabel;
use crate::rows::shown;
use crate::v1::{decision, parse_json, unix_now};

/// The header that splits a body into its JSON part and binary tensor data.
const HEADER_LENGTH: &str = "inference-header-content-length";

/// `GET /v2`
pub(crate) async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "kaskad",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// `GET /v2/health/live`
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// `GET /v2/health/ready`: ready when the default model's champion loads.
pub(crate) async fn ready(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let name = app.config.default_model.clone();
    app.model(&name).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", e.message),
        )
    })?;
    Ok(Json(json!({"ready": true})))
}

/// `{name}` alone, or `{name}` with a `{version}` path segment.
fn reference(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    }
}

fn bare_name(reference: &str) -> &str {
    reference.split_once('@').map_or(reference, |(n, _)| n)
}

/// `GET /v2/models/{name}` and `.../versions/{version}`
pub(crate) async fn metadata(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    model_metadata(app, reference(&name, None)).await
}

pub(crate) async fn metadata_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    model_metadata(app, reference(&name, Some(&version))).await
}

async fn model_metadata(app: App, reference: String) -> Result<Json<Value>, ApiError> {
    let served = app.model(&reference).await?;
    let name = bare_name(&reference).to_string();
    let owned = name.clone();
    let versions: Vec<String> = app
        .db(move |c| c.versions(Some(&owned)))
        .await?
        .into_iter()
        .map(|v| v.version.to_string())
        .collect();
    let inputs: Vec<Value> = served
        .artifact
        .input_columns()
        .iter()
        .map(|(column, kind)| {
            json!({
                "name": column,
                "datatype": match kind { ColumnKind::Numeric => "FP64", ColumnKind::Categorical => "BYTES" },
                "shape": [-1],
            })
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "versions": versions,
        "platform": "kaskad",
        "inputs": inputs,
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "decision", "datatype": "BYTES", "shape": [-1]},
        ],
    })))
}

/// `GET /v2/models/{name}/ready` and `.../versions/{version}/ready`: 200 when
/// the model resolves and its artifact loads.
pub(crate) async fn model_ready(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.model(&name).await?;
    Ok(Json(json!({"name": bare_name(&name), "ready": true})))
}

pub(crate) async fn model_version_ready(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    app.model(&reference(&name, Some(&version))).await?;
    Ok(Json(json!({"name": name, "ready": true})))
}

/// `POST /v2/models/{name}/infer` and `.../versions/{version}/infer`
pub(crate) async fn infer(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    run_infer(app, reference(&name, None), &headers, body).await
}

pub(crate) async fn infer_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    run_infer(app, reference(&name, Some(&version)), &headers, body).await
}

/// The values of one input tensor, before they meet the model's schema.
enum Tensor {
    Numbers(Vec<f64>),
    Strings(Vec<String>),
}

impl Tensor {
    fn len(&self) -> usize {
        match self {
            Tensor::Numbers(v) => v.len(),
            Tensor::Strings(v) => v.len(),
        }
    }
}

/// Bytes per element of the numeric datatypes.
fn numeric_width(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "FP64" | "INT64" | "UINT64" => 8,
        "FP32" | "INT32" | "UINT32" => 4,
        "INT16" | "UINT16" => 2,
        "INT8" | "UINT8" | "BOOL" => 1,
        _ => return None,
    })
}

fn decode_numbers(datatype: &str, bytes: &[u8]) -> Vec<f64> {
    let width = numeric_width(datatype).unwrap_or(8);
    bytes
        .chunks_exact(width)
        .map(|c| {
            let mut b8 = [0u8; 8];
            b8[..width].copy_from_slice(c);
            match datatype {
                "FP64" => f64::from_le_bytes(b8),
                "FP32" => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                "INT64" => i64::from_le_bytes(b8) as f64,
                "UINT64" => u64::from_le_bytes(b8) as f64,
                "INT32" => f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                "UINT32" => f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                "INT16" => f64::from(i16::from_le_bytes([c[0], c[1]])),
                "UINT16" => f64::from(u16::from_le_bytes([c[0], c[1]])),
                "INT8" => f64::from(c[0] as i8),
                _ => f64::from(c[0]),
            }
        })
        .collect()
}

/// BYTES in binary form: each element a little-endian u32 length, then bytes.
fn decode_strings(bytes: &[u8], path: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let truncated = || ApiError::invalid(path, "BYTES tensor data ends inside an element");
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_le_bytes(*len) as usize;
        let element = tail.get(..len).ok_or_else(truncated)?;
        out.push(
            String::from_utf8(element.to_vec()).map_err(|_| {
                ApiError::invalid(path, format!("element {} is not UTF-8", out.len()))
            })?,
        );
        rest = &tail[len..];
    }
    Ok(out)
}

fn encode_strings<'a>(values: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Flattens JSON tensor data (row-major nested lists are allowed).
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

/// Reads input `i` (at `path`) from its JSON and, when it says so, from the
/// binary data after the JSON header.
fn read_tensor(
    input: &Map<String, Value>,
    path: &str,
    binary: &mut &[u8],
) -> Result<Tensor, ApiError> {
    let datatype = input
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::invalid(
                format!("{path}.datatype"),
                "missing: a V2 datatype such as FP64 or BYTES",
            )
        })?;
    let shape = input
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::invalid(format!("{path}.shape"), "missing: a list of dimensions")
        })?;
    let mut elements: usize = 1;
    for (d, dim) in shape.iter().enumerate() {
        let dim = dim.as_u64().ok_or_else(|| {
            ApiError::invalid(
                format!("{path}.shape[{d}]"),
                format!("expected a dimension, got {}", shown(dim)),
            )
        })?;
        elements = elements.saturating_mul(dim as usize);
    }
    let binary_size = input
        .get("parameters")
        .and_then(|p| p.get("binary_data_size"))
        .map(|v| {
            v.as_u64().map(|n| n as usize).ok_or_else(|| {
                ApiError::invalid(
                    format!("{path}.parameters.binary_data_size"),
                    format!("expected a byte count, got {}", shown(v)),
                )
            })
        })
        .transpose()?;
    let tensor = if let Some(size) = binary_size {
        if size > binary.len() {
            return Err(ApiError::invalid(
                format!("{path}.parameters.binary_data_size"),
                format!("{size} bytes announced, {} left in the body", binary.len()),
            ));
        }
        let (bytes, rest) = binary.split_at(size);
        *binary = rest;
        if datatype == "BYTES" {
            Tensor::Strings(decode_strings(bytes, path)?)
        } else if let Some(width) = numeric_width(datatype) {
            if size != elements * width {
                return Err(ApiError::invalid(
                    format!("{path}.parameters.binary_data_size"),
                    format!("{size} bytes do not hold {elements} {datatype} values"),
                ));
            }
            Tensor::Numbers(decode_numbers(datatype, bytes))
        } else {
            return Err(unknown_datatype(path, datatype));
        }
    } else {
        let data = input.get("data").ok_or_else(|| {
            ApiError::invalid(format!("{path}.data"), "missing: the tensor's values")
        })?;
        let mut flat = Vec::new();
        flatten(data, &mut flat);
        if datatype == "BYTES" {
            let strings = flat
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ApiError::invalid(
                        format!("{path}.data[{k}]"),
                        format!("expected a string, got {}", shown(other)),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Tensor::Strings(strings)
        } else if numeric_width(datatype).is_some() {
            let numbers = flat
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::Null => Ok(f64::NAN),
                    Value::Bool(b) if datatype == "BOOL" => Ok(if *b { 1.0 } else { 0.0 }),
                    Value::Number(n) => n.as_f64().ok_or_else(|| {
                        ApiError::invalid(format!("{path}.data[{k}]"), "out of range")
                    }),
                    other => Err(ApiError::invalid(
                        format!("{path}.data[{k}]"),
                        format!("expected a number, got {}", shown(other)),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Tensor::Numbers(numbers)
        } else {
            return Err(unknown_datatype(path, datatype));
        }
    };
    if tensor.len() != elements {
        return Err(ApiError::invalid(
            format!("{path}.shape"),
            format!(
                "the shape holds {elements} values but the data has {}",
                tensor.len()
            ),
        ));
    }
    Ok(tensor)
}

fn unknown_datatype(path: &str, datatype: &str) -> ApiError {
    ApiError::invalid(
        format!("{path}.datatype"),
        format!(
            "unsupported datatype {datatype:?} (expected FP64 or another number type, or BYTES)"
        ),
    )
}

/// Which outputs the client asked for, and whether each goes in binary.
fn requested_outputs(request: &Map<String, Value>) -> Result<Vec<(&'static str, bool)>, ApiError> {
    let binary_default = request
        .get("parameters")
        .and_then(|p| p.get("binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(outputs) = request.get("outputs") else {
        return Ok(vec![
            ("score", binary_default),
            ("decision", binary_default),
        ]);
    };
    let Value::Array(outputs) = outputs else {
        return Err(ApiError::invalid(
            "$.outputs",
            format!("expected a list, got {}", shown(outputs)),
        ));
    };
    outputs
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let name = match o.get("name").and_then(Value::as_str) {
                Some("score") => "score",
                Some("decision") => "decision",
                other => {
                    return Err(ApiError::invalid(
                        format!("$.outputs[{k}].name"),
                        format!(
                            "unknown output {other:?}; the outputs are \"score\" and \"decision\""
                        ),
                    ));
                }
            };
            let binary = o
                .get("parameters")
                .and_then(|p| p.get("binary_data"))
                .and_then(Value::as_bool)
                .unwrap_or(binary_default);
            Ok((name, binary))
        })
        .collect()
}

async fn run_infer(
    app: App,
    reference: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let at_unix = unix_now();
    let json_length = headers
        .get(HEADER_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|&n| n <= body.len())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Inference-Header-Content-Length is not a length within the body",
                    )
                })
        })
        .transpose()?
        .unwrap_or(body.len());
    let (head, mut binary) = body.split_at(json_length);
    let request = parse_json(&non_finite_as_null(head))?;
    let Value::Object(request) = request else {
        return Err(ApiError::invalid(
            "$",
            "expected an inference request (a JSON object)",
        ));
    };
    let served = app.model(&reference).await?;
    let outputs = requested_outputs(&request)?;
    let inputs = match request.get("inputs") {
        Some(Value::Array(inputs)) => inputs,
        Some(other) => {
            return Err(ApiError::invalid(
                "$.inputs",
                format!("expected a list of tensors, got {}", shown(other)),
            ));
        }
        None => return Err(ApiError::invalid("$.inputs", "missing: the input tensors")),
    };
    let schema = served.artifact.input_columns();
    let mut columns: Vec<Option<Column>> = vec![None; schema.len()];
    let mut rows: Option<(usize, String)> = None;
    let mut unknown = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let path = format!("$.inputs[{i}]");
        let Value::Object(input) = input else {
            return Err(ApiError::invalid(path, "expected a tensor (a JSON object)"));
        };
        let name = input.get("name").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid(
                format!("{path}.name"),
                "missing: the column this tensor holds",
            )
        })?;
        let tensor = read_tensor(input, &path, &mut binary)?;
        let Some(j) = schema.iter().position(|(c, _)| c == name) else {
            unknown.push(name.to_string());
            continue;
        };
        match &rows {
            Some((n, first)) if *n != tensor.len() => {
                return Err(ApiError::invalid(
                    format!("{path}.shape"),
                    format!("{} rows, but {first} has {n}", tensor.len()),
                ));
            }
            Some(_) => {}
            None => rows = Some((tensor.len(), path.clone())),
        }
        columns[j] = Some(to_column(name, schema[j].1, tensor, &path)?);
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = schema.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ApiError::invalid(
            "$.inputs",
            format!(
                "unknown input{} {} (the model reads {})",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    let n = rows.map_or(0, |(n, _)| n);
    let columns = columns
        .into_iter()
        .zip(schema)
        .map(|(column, (name, kind))| {
            column.unwrap_or_else(|| match kind {
                ColumnKind::Numeric => Column::numeric(name.clone(), vec![f64::NAN; n]),
                ColumnKind::Categorical => Column::categorical(name.clone(), vec![None; n]),
            })
        })
        .collect();
    let frame = Frame::new(columns).map_err(ApiError::internal)?;
    let scores = if n == 0 {
        Vec::new()
    } else {
        served.artifact.score(&frame)?
    };
    app.metrics.observe_scores(&served.label, &scores);
    let threshold = served.artifact.threshold();
    let decisions: Vec<&str> = scores.iter().map(|&s| decision(s, threshold)).collect();

    let id = match request.get("id") {
        Some(Value::String(id)) => id.clone(),
        _ => uuid::Uuid::now_v7().to_string(),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    for (row, (score, decision)) in scores.iter().zip(&decisions).enumerate() {
        let input: Map<String, Value> = frame
            .columns()
            .iter()
            .map(|c| {
                let value = match (c.as_numeric(), c.as_categorical()) {
                    (Some(v), _) if v[row].is_nan() => Value::Null,
                    (Some(v), _) => json!(v[row]),
                    (_, Some(v)) => json!(v[row]),
                    (None, None) => Value::Null,
                };
                (c.name.clone(), value)
            })
            .collect();
        // Rows are logged as `ID:ROW`, so outcomes can refer to each.
        app.log.push(&LogEntry {
            request_id: &format!("{id}:{row}"),
            at_unix,
            route: "/v2/models/{name}/infer",
            model: &served.label,
            input: &Value::Object(input).to_string(),
            output: &json!({"score": score, "decision": decision}).to_string(),
            latency_ms,
        });
    }

    let mut tensors = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, binary) in &outputs {
        let (datatype, bytes, values) = match *name {
            "score" => (
                "FP64",
                scores
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect::<Vec<u8>>(),
                json!(scores),
            ),
            _ => (
                "BYTES",
                encode_strings(decisions.iter().copied()),
                json!(decisions),
            ),
        };
        let mut tensor = json!({"name": name, "datatype": datatype, "shape": [n]});
        if *binary {
            tensor["parameters"] = json!({"binary_data_size": bytes.len()});
            data.extend_from_slice(&bytes);
        } else {
            tensor["data"] = values;
        }
        tensors.push(tensor);
    }
    let head = json!({
        "model_name": bare_name(&reference),
        "model_version": served.label.rsplit_once('@').map_or("", |(_, v)| v),
        "id": id,
        "outputs": tensors,
    });
    let mut response = if outputs.iter().any(|(_, binary)| *binary) {
        let mut bytes = head.to_string().into_bytes();
        let header_length = bytes.len();
        bytes.extend_from_slice(&data);
        let mut response = Response::new(Body::from(bytes));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(HEADER_LENGTH, HeaderValue::from(header_length));
        response
    } else {
        Json(head).into_response()
    };
    response.extensions_mut().insert(ModelLabel(served.label));
    Ok(response)
}

/// Python's `json` module, and so tritonclient, writes a missing number
/// (NaN) as the bare word `NaN`, which is not JSON; outside strings, `NaN`,
/// `Infinity` and `-Infinity` become `null` (a missing value) so that such
/// requests parse. Bodies without them are returned as they are.
fn non_finite_as_null(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !json.iter().any(|&b| b == b'N' || b == b'I') {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let word = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|w| json[i..].starts_with(w));
        match word {
            Some(w) => {
                out.extend_from_slice(b"null");
                i += w.len();
            }
            None => {
                in_string = b == b'"';
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Checks a tensor against the column's kind and makes the column.
fn to_column(name: &str, kind: ColumnKind, tensor: Tensor, path: &str) -> Result<Column, ApiError> {
    match (kind, tensor) {
        (ColumnKind::Numeric, Tensor::Numbers(values)) => Ok(Column::numeric(
            name,
            values
                .into_iter()
                .map(|v| if v.is_finite() { v } else { f64::NAN })
                .collect(),
        )),
        // Clients that hold mixed data (pandas object columns) send numbers as text.
        (ColumnKind::Numeric, Tensor::Strings(values)) => values
            .iter()
            .enumerate()
            .map(|(k, s)| {
                if s.is_empty() {
                    return Ok(f64::NAN);
                }
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            format!("{path}.data[{k}]"),
                            format!("expected a number, got {}", shown(&json!(s))),
                        )
                    })
            })
            .collect::<Result<Vec<f64>, _>>()
            .map(|v| Column::numeric(name, v)),
        (ColumnKind::Categorical, Tensor::Strings(values)) => Ok(Column::categorical(
            name,
            values
                .into_iter()
                .map(|s| (!s.is_empty()).then_some(s))
                .collect(),
        )),
        (ColumnKind::Categorical, Tensor::Numbers(_)) => Err(ApiError::invalid(
            format!("{path}.datatype"),
            format!("column {name} is categorical: send it as BYTES"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_tensors_round_trip() {
        let strings = encode_strings(["approve", "", "décliné"].into_iter());
        assert_eq!(
            decode_strings(&strings, "$").unwrap(),
            ["approve", "", "décliné"]
        );
        assert!(decode_strings(&strings[..strings.len() - 1], "$").is_err());
        let bytes: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(decode_numbers("FP64", &bytes), [1.5, -2.0]);
        let bytes: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode_numbers("INT32", &bytes), [7.0, -1.0]);
        assert_eq!(decode_numbers("INT8", &[255]), [-1.0]);
    }

    #[test]
    fn python_nan_reads_as_missing_outside_strings() {
        let text = br#"{"data":[1.0,NaN,-Infinity,Infinity],"s":"NaN \" NaN"}"#;
        let fixed = non_finite_as_null(text);
        let value: Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(
            value,
            json!({"data": [1.0, null, null, null], "s": "NaN \" NaN"})
        );
        assert!(matches!(
            non_finite_as_null(b"[1]"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_tensors_check_shape_and_type() {
        let mut none: &[u8] = &[];
        let input =
            json!({"name": "x", "datatype": "FP64", "shape": [2, 1], "data": [[1.0], [null]]});
        let Tensor::Numbers(v) =
            read_tensor(input.as_object().unwrap(), "$.inputs[0]", &mut none).unwrap()
        else {
            panic!("numbers expected");
        };
        assert!(v[0] == 1.0 && v[1].is_nan());
        let input = json!({"name": "x", "datatype": "FP64", "shape": [3], "data": [1.0, 2.0]});
        let e = read_tensor(input.as_object().unwrap(), "$.inputs[0]", &mut none)
            .err()
            .unwrap();
        assert_eq!(e.path.as_deref(), Some("$.inputs[0].shape"));
        let input = json!({"name": "x", "datatype": "FP64", "shape": [1], "data": ["a"]});
        let e = read_tensor(input.as_object().unwrap(), "$.inputs[0]", &mut none)
            .err()
            .unwrap();
        assert_eq!(e.path.as_deref(), Some("$.inputs[0].data[0]"));
        let e = to_column(
            "Home",
            ColumnKind::Categorical,
            Tensor::Numbers(vec![1.0]),
            "$.inputs[1]",
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("$.inputs[1].datatype"));
    }
}
