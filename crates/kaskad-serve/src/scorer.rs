//! How a cascade module is scored: a registry model in this process, or a
//! remote model over the Open Inference Protocol (KServe V2).
//!
//! A registry module returns `{"score", "decision", "reasons", "model"}`,
//! as `/v1/models/{name}/score` does for one application. A remote module
//! returns its output tensors by name (one value each); `score` must be
//! among them.
//!
//! A module's sources may be shared with modules of other models (an
//! `applicant` object read by a bureau model and by a final model), so a
//! module passes on only the fields its model reads: registry models say
//! which through their artifact, remote ones through their V2 metadata
//! (`GET {url}/v2/models/{model}`, asked again in the background every
//! minute). A cascade that
//! wants misspelt fields rejected says so with an `input_rule`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kaskad_cascade::{ModuleScorer, ModuleSpec, ModuleTarget};
use serde_json::{Map, Value, json};

use crate::error::ServeError;
use crate::models::ModelStore;
use crate::refreshing::{Known, Refreshing};
use crate::rows::{self, shown};
use crate::v1::{REASONS, decision};

/// Longest a remote model's input list is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(60);

/// A remote model's inputs: name and V2 datatype, in its metadata's order.
type RemoteInputs = Arc<Vec<(String, String)>>;

/// The [`ModuleScorer`] of `kaskad serve` and `kaskad cascades run`.
pub struct CascadeScorer {
    models: Arc<ModelStore>,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` to remote modules. Only admins store
    /// cascades, so only they choose the URLs it goes to.
    remote_key: Option<String>,
    /// A remote model's metadata URL → its inputs.
    remote_inputs: Arc<Refreshing<RemoteInputs>>,
}

impl CascadeScorer {
    /// Remote modules are called over plain HTTP: this build has no TLS.
    pub fn new(
        models: Arc<ModelStore>,
        remote_key: Option<String>,
    ) -> Result<CascadeScorer, ServeError> {
        let http = reqwest::Client::builder().build()?;
        Ok(CascadeScorer {
            models,
            http,
            remote_key,
            remote_inputs: Arc::new(Refreshing::new(METADATA_TTL)),
        })
    }

    async fn local(
        &self,
        reference: &str,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let served = self.models.model(reference).await.map_err(|e| e.message)?;
        let fields: Map<String, Value> = input
            .into_iter()
            .filter(|(key, _)| served.artifact.input_position(key).is_some())
            .collect();
        let cells = rows::cells(&[("$".to_string(), &fields)], &served.artifact).map_err(|e| {
            let field = e.path.as_deref().and_then(|p| p.strip_prefix("$."));
            match field {
                Some(field) => format!("input `{field}`: {}", e.message),
                None => e.message,
            }
        })?;
        let score = served
            .artifact
            .score_row(&cells)
            .map_err(|e| e.to_string())?;
        let reasons = served
            .artifact
            .explain_row(&cells, REASONS)
            .map_err(|e| e.to_string())?;
        let result = json!({
            "score": score,
            "decision": decision(score, served.artifact.threshold()),
            "reasons": reasons,
            "model": served.label,
        });
        Ok(into_map(result))
    }

    async fn remote(
        &self,
        url: &str,
        model: &str,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let base = format!("{}/v2/models/{model}", url.trim_end_matches('/'));
        let declared = self.remote_inputs(&base).await?;
        let mut tensors = Vec::new();
        for (name, datatype) in declared.iter() {
            let Some(value) = input.get(name).filter(|v| !v.is_null()) else {
                // Left out, an input is missing for the row (V2 servers
                // such as kaskad impute it).
                continue;
            };
            let data = tensor_value(value, datatype)
                .map_err(|message| format!("input `{name}`: {message}"))?;
            tensors.push(json!({"name": name, "datatype": datatype, "shape": [1], "data": [data]}));
        }
        let body = self
            .send(self.http.post(format!("{base}/infer")))
            .json(&json!({"inputs": tensors}))
            .send()
            .await
            .map_err(|e| format!("{base}/infer: {}", error_chain(&e)))?;
        let answer = read_answer(body, &format!("{base}/infer")).await?;
        let Some(Value::Array(outputs)) = answer.get("outputs") else {
            return Err(format!("{base}/infer answered without `outputs`"));
        };
        let mut result = Map::new();
        for output in outputs {
            let (Some(name), Some(data)) = (
                output.get("name").and_then(Value::as_str),
                output.get("data"),
            ) else {
                continue;
            };
            let first = match data {
                Value::Array(items) => items.first().cloned(),
                other => Some(other.clone()),
            };
            if let Some(value) = first {
                result.insert(name.to_string(), value);
            }
        }
        match result.get("score") {
            Some(score) if score.is_number() => Ok(result),
            Some(other) => Err(format!(
                "{base}/infer: output `score` is not a number: {}",
                shown(other)
            )),
            None => Err(format!("{base}/infer answered without a `score` output")),
        }
    }

    /// The remote model's inputs, from its V2 metadata.
    /// The inputs the remote model at `base` (its V2 metadata URL)
    /// declares; fetched once, then again in the background every
    /// [`METADATA_TTL`] while the last answer serves.
    async fn remote_inputs(&self, base: &str) -> Result<RemoteInputs, String> {
        match self.remote_inputs.get(base) {
            Known::Fresh(inputs) => return Ok(inputs),
            Known::Stale(inputs) => {
                self.remote_inputs
                    .refresh_in_background(base, "a remote model's inputs", || {
                        let look_up = fetch_inputs(
                            Arc::clone(&self.remote_inputs),
                            self.send(self.http.get(base)),
                            base.to_string(),
                        );
                        async move { look_up.await.map(drop) }
                    });
                return Ok(inputs);
            }
            Known::Unknown => {}
        }
        fetch_inputs(
            Arc::clone(&self.remote_inputs),
            self.send(self.http.get(base)),
            base.to_string(),
        )
        .await
    }

    fn send(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.remote_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}

/// Asks a remote model's V2 metadata (`request`, a GET of `base`) for its
/// inputs and caches them in `cache` under `base`.
async fn fetch_inputs(
    cache: Arc<Refreshing<RemoteInputs>>,
    request: reqwest::RequestBuilder,
    base: String,
) -> Result<RemoteInputs, String> {
    let asked = Instant::now();
    let response = request
        .send()
        .await
        .map_err(|e| format!("{base}: {}", error_chain(&e)))?;
    let metadata = read_answer(response, &base).await?;
    let Some(Value::Array(declared)) = metadata.get("inputs") else {
        return Err(format!("{base}: the model metadata lists no `inputs`"));
    };
    let inputs: Vec<(String, String)> = declared
        .iter()
        .filter_map(|input| {
            let name = input.get("name")?.as_str()?;
            let datatype = input.get("datatype")?.as_str()?;
            Some((name.to_string(), datatype.to_string()))
        })
        .collect();
    let inputs = Arc::new(inputs);
    cache.store(&base, asked, Arc::clone(&inputs));
    Ok(inputs)
}

#[async_trait]
impl ModuleScorer for CascadeScorer {
    async fn score(
        &self,
        module: &ModuleSpec,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        match module.target() {
            ModuleTarget::Model { reference, .. } => self.local(reference, input).await,
            ModuleTarget::Remote { url, model } => self.remote(url, model, input).await,
        }
    }
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// One element of a V2 tensor of `datatype`: BYTES takes text (numbers and
/// booleans as their JSON text), number types take numbers or numeric text.
fn tensor_value(value: &Value, datatype: &str) -> Result<Value, String> {
    match (datatype, value) {
        ("BYTES", Value::String(_)) => Ok(value.clone()),
        ("BYTES", Value::Number(_) | Value::Bool(_)) => Ok(Value::String(value.to_string())),
        ("BOOL", Value::Bool(_)) => Ok(value.clone()),
        (_, Value::Number(_)) if datatype != "BYTES" => Ok(value.clone()),
        (_, Value::String(text)) if datatype != "BYTES" => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|x| json!(x))
            .ok_or_else(|| format!("expected a number for {datatype}, got {}", shown(value))),
        _ => Err(format!("{datatype} cannot hold {}", shown(value))),
    }
}

/// The JSON body of a 2xx answer; otherwise the status and the server's
/// own `error`, when it sent one.
async fn read_answer(response: reqwest::Response, what: &str) -> Result<Value, String> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{what}: {}", error_chain(&e)))?;
    let body: Option<Value> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let reason = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map_or_else(|| text.chars().take(200).collect(), str::to_string);
        return Err(format!("{what} answered {status}: {reason}"));
    }
    body.ok_or_else(|| format!("{what} answered {status} with a body that is not JSON"))
}

/// reqwest's error and its causes, which say what actually failed
/// ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_values_follow_the_declared_datatype() {
        assert_eq!(tensor_value(&json!(1.5), "FP64"), Ok(json!(1.5)));
        assert_eq!(tensor_value(&json!(" 7 "), "FP64"), Ok(json!(7.0)));
        assert_eq!(tensor_value(&json!("rent"), "BYTES"), Ok(json!("rent")));
        assert_eq!(tensor_value(&json!(3), "BYTES"), Ok(json!("3")));
        assert_eq!(tensor_value(&json!(true), "BOOL"), Ok(json!(true)));
        assert!(tensor_value(&json!("abc"), "FP64").is_err());
        assert!(tensor_value(&json!([1]), "FP64").is_err());
        assert!(tensor_value(&json!({"a": 1}), "BYTES").is_err());
    }
}
