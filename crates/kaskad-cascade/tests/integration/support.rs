//! A catalog of fake models and a deterministic scorer.

use std::sync::Mutex;
use std::time::Duration;

use kaskad_cascade::{
    CascadeError, CompiledCascade, Field, FieldKind, ModelCatalog, ModelInfo, ModuleScorer,
    ModuleSpec, compile,
};
use serde_json::{Map, Value, json};

/// Every model has the same interface; `missing@*` does not exist.
pub struct Catalog;

impl ModelCatalog for Catalog {
    fn resolve(&self, reference: &str) -> Result<ModelInfo, String> {
        if reference.starts_with("missing") {
            return Err(format!("no model `{reference}` in the registry"));
        }
        let numeric = |name: &str| Field::new(name, FieldKind::Numeric);
        let categorical = |name: &str| Field::new(name, FieldKind::Categorical);
        Ok(ModelInfo {
            inputs: vec![
                numeric("income"),
                numeric("debt"),
                numeric("txn_count"),
                numeric("prev"),
                numeric("bureau_score"),
                numeric("behaviour_score"),
                categorical("region"),
                categorical("label"),
            ],
            outputs: vec![
                numeric("score"),
                categorical("decision"),
                categorical("reasons"),
            ],
        })
    }
}

pub fn compiled(json: Value) -> CompiledCascade {
    match compile(&json, &Catalog) {
        Ok(cascade) => cascade,
        Err(errors) => panic!("{errors:#?}"),
    }
}

pub fn errors(json: Value) -> Vec<CascadeError> {
    match compile(&json, &Catalog) {
        Ok(_) => panic!("compiled: {json}"),
        Err(errors) => errors,
    }
}

/// score = (sum of numeric inputs) / 1000 + params.bias, so every result
/// can be predicted from the request. Params steer failures: `sleep_ms`
/// sleeps first, `fail` returns an error, `emit` replaces the output.
#[derive(Default)]
pub struct Scorer {
    pub calls: Mutex<Vec<(String, Map<String, Value>)>>,
}

impl Scorer {
    pub fn input_of(&self, module: &str) -> Map<String, Value> {
        let calls = self.calls.lock().expect("calls");
        let found = calls.iter().find(|(name, _)| name == module);
        found
            .map(|(_, input)| input.clone())
            .unwrap_or_else(|| panic!("{module} not called"))
    }

    pub fn called(&self, module: &str) -> bool {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .any(|(name, _)| name == module)
    }
}

pub fn expected_score(input: &Map<String, Value>, bias: f64) -> f64 {
    input.values().filter_map(Value::as_f64).sum::<f64>() / 1000.0 + bias
}

#[async_trait::async_trait]
impl ModuleScorer for Scorer {
    async fn score(
        &self,
        module: &ModuleSpec,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        self.calls
            .lock()
            .expect("calls")
            .push((module.name().to_owned(), input.clone()));
        let params = module.params();
        if let Some(ms) = params.get("sleep_ms").and_then(Value::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(message) = params.get("fail").and_then(Value::as_str) {
            return Err(message.to_owned());
        }
        if let Some(Value::Object(emit)) = params.get("emit") {
            return Ok(emit.clone());
        }
        let bias = params.get("bias").and_then(Value::as_f64).unwrap_or(0.0);
        let score = expected_score(&input, bias);
        let out = json!({
            "score": score,
            "decision": if score > 0.5 { "decline" } else { "accept" },
            "reasons": [format!("{}_reason", module.name())],
        });
        Ok(out.as_object().cloned().unwrap_or_default())
    }
}

/// A module node with a model and the given extra fields.
pub fn module(name: &str, extra: Value) -> Value {
    let mut node = json!({"type": "module", "name": name, "model": format!("{name}_lr@champion")});
    if let (Value::Object(node), Value::Object(extra)) = (&mut node, extra) {
        node.extend(extra);
    }
    node
}
