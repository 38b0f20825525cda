//! Engine overhead per module: a 4-module chain (each module reading the
//! applicant and reusing the previous score) run with a scorer that returns
//! a prebuilt result, against a baseline of the same 4 scorer calls made
//! directly. (chain − baseline) / 4 is the engine's cost per module.

use divan::Bencher;
use kaskad_cascade::{
    CompiledCascade, Field, FieldKind, ModelCatalog, ModelInfo, ModuleScorer, ModuleSpec,
    RunOptions, compile,
};
use serde_json::{Map, Value, json};

fn main() {
    divan::main();
}

struct Catalog;

impl ModelCatalog for Catalog {
    fn resolve(&self, _: &str) -> Result<ModelInfo, String> {
        let inputs = ["income", "debt", "age", "tenure", "prev"];
        Ok(ModelInfo {
            inputs: inputs
                .iter()
                .map(|name| Field::new(*name, FieldKind::Numeric))
                .collect(),
            outputs: vec![
                Field::new("score", FieldKind::Numeric),
                Field::new("decision", FieldKind::Categorical),
                Field::new("reasons", FieldKind::Categorical),
            ],
        })
    }
}

struct Constant(Map<String, Value>);

#[async_trait::async_trait]
impl ModuleScorer for Constant {
    async fn score(
        &self,
        _: &ModuleSpec,
        _: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        Ok(self.0.clone())
    }
}

fn scorer() -> Constant {
    let result = json!({"score": 0.42, "decision": "accept", "reasons": ["income", "debt", "age"]});
    Constant(result.as_object().cloned().unwrap_or_default())
}

fn chain(rules: bool) -> CompiledCascade {
    let modules: Vec<Value> = (0..4)
        .map(|i| {
            let mut module = json!({"type": "module", "name": format!("m{i}"), "model": "lr@champion", "sources": ["applicant"]});
            if i > 0 {
                module["reuse"] = json!({"prev": format!("m{}.score", i - 1)});
            }
            if rules {
                module["input_rule"] = json!({"type": "object", "required": ["income"], "properties": {"income": {"type": "number", "minimum": 0}}});
                module["output_rule"] = json!({"score": {"min": 0, "max": 1, "required": true}});
            }
            module
        })
        .collect();
    let cascade = json!({"name": "bench", "type": "chain", "nodes": modules, "output": {"score": "m3.score", "reasons": "m3.reasons"}});
    compile(&cascade, &Catalog).unwrap_or_else(|errors| panic!("{errors:?}"))
}

fn request() -> Value {
    json!({"applicant": {"id": "c-1", "income": 2400.0, "debt": 300.0, "age": 41, "tenure": 7,
                         "region": "north", "employment": "salaried", "dependants": 2, "housing": "rent"}})
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|error| panic!("{error}"))
}

#[divan::bench]
fn chain_of_4(bencher: Bencher) {
    let (runtime, cascade, request, scorer) = (runtime(), chain(false), request(), scorer());
    bencher.bench_local(|| runtime.block_on(cascade.run(&request, &scorer, RunOptions::default())));
}

#[divan::bench]
fn chain_of_4_with_rules(bencher: Bencher) {
    let (runtime, cascade, request, scorer) = (runtime(), chain(true), request(), scorer());
    bencher.bench_local(|| runtime.block_on(cascade.run(&request, &scorer, RunOptions::default())));
}

/// The same four scorer calls on the same inputs, without the engine.
#[divan::bench]
fn baseline_4_scorer_calls(bencher: Bencher) {
    let (runtime, cascade, request, scorer) = (runtime(), chain(false), request(), scorer());
    let applicant = request["applicant"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    bencher.bench_local(|| {
        runtime.block_on(async {
            for module in cascade.modules() {
                let input = applicant.clone();
                let _ = divan::black_box(scorer.score(module, input).await);
            }
        })
    });
}
