//! `kaskad models import`: scikit-learn and LightGBM models (the fixtures
//! of `kaskad-onnx`, made by `bench/peers/make_onnx_fixtures.py`) registered
//! in a home and scored by `inference`, `/v1` and `/v2` of the server, and a
//! cascade; and the imports that are refused, with the reason.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::server::{Server, client, key};
use crate::support::{data, init, kaskad, last_line, scored_auc, stderr, stdout};

const NUMERIC: &str = "Seniority,Time,Age,Expenses,Income,Assets,Debt,Amount,Price";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kaskad-onnx/tests/fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// The first application of credit_data.csv.
fn application() -> Value {
    json!({
        "Seniority": 9, "Home": "rent", "Time": 60, "Age": 30, "Marital": "married",
        "Records": "no", "Job": "freelance", "Expenses": 73, "Income": 129.0,
        "Assets": 0.0, "Debt": 0.0, "Amount": 800, "Price": 846
    })
}

fn import(home: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["models", "import", "--home", home];
    all.extend_from_slice(args);
    kaskad(&all)
}

fn imported_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    init(&home, &data("credit_data.csv"), &[]);
    let h = home.to_str().unwrap();
    let lr = fixture("lr_pipeline.onnx");
    let out = import(h, &["--onnx", &lr, "--name", "sk_lr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), "sk_lr@1");
    let gbm = fixture("lightgbm.onnx");
    let out = import(
        h,
        &[
            "--onnx",
            &gbm,
            "--name",
            "lgbm",
            "--features",
            NUMERIC,
            "--threshold",
            "0.3",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), "lgbm@1");
    home
}

/// The first data row's `score`, `reason_1` and `model` in a scored CSV.
fn first_scored(path: &Path) -> (f64, String, String) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let at = |n: &str| row[headers.iter().position(|h| h == n).unwrap()].to_string();
    (at("score").parse().unwrap(), at("reason_1"), at("model"))
}

#[test]
fn imported_models_are_scored_by_inference_the_server_and_cascades() {
    let dir = tempfile::tempdir().unwrap();
    let home = imported_home(dir.path());
    let h = home.to_str().unwrap();

    // Listed as onnx; the first version of a name is its champion.
    let out = kaskad(&["models", "--home", h, "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let lr = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "sk_lr")
        .unwrap();
    assert_eq!(lr["algorithm"], "onnx");
    assert_eq!(lr["aliases"], json!(["champion"]));
    assert_eq!(lr["params"]["output"], "output_probability");

    // `inference`: every row scored, as well as the model can (AUC), no
    // reason columns (an imported graph has no contributions).
    let mut first = Vec::new();
    for name in ["sk_lr", "lgbm"] {
        let out = kaskad(&[
            "inference",
            "--home",
            h,
            "--model",
            name,
            "--file",
            data("credit_data.csv").to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let scored = PathBuf::from(last_line(&out));
        let auc = scored_auc(&scored);
        assert!(auc > 0.75, "{name}: AUC {auc}");
        let (score, reason, model) = first_scored(&scored);
        assert_eq!((reason.as_str(), model), ("", format!("{name}@1")));
        first.push(score);
    }

    // `/v1` and `/v2` give the same scores; `/v2` metadata shows the inputs.
    let scorer = key(&home, "scorer");
    let server = Server::start(&home, &[]);
    let c = client();
    let post = |url: &str, body: &Value| -> Value {
        let response = c
            .post(server.url(url))
            .bearer_auth(&scorer)
            .json(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.json().unwrap()
    };
    let one = post("/v1/models/sk_lr/score", &application());
    assert!(
        (one["score"].as_f64().unwrap() - first[0]).abs() < 1e-12,
        "{one}"
    );
    assert_eq!(one["model"], "sk_lr@1");
    assert_eq!(one["reasons"], json!([]));
    // The LightGBM graph reads the numbers only: other keys are unknown columns.
    let numbers: serde_json::Map<String, Value> = NUMERIC
        .split(',')
        .map(|n| (n.to_string(), application()[n].clone()))
        .collect();
    let one = post("/v1/models/lgbm/score", &Value::Object(numbers));
    assert!(
        (one["score"].as_f64().unwrap() - first[1]).abs() < 1e-12,
        "{one}"
    );
    let decision = if first[1] >= 0.3 {
        "decline"
    } else {
        "approve"
    };
    assert_eq!(one["decision"], decision, "the imported threshold");

    let meta: Value = c
        .get(server.url("/v2/models/lgbm"))
        .bearer_auth(&scorer)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let inputs: Vec<&str> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.join(","), NUMERIC);
    let tensors: Vec<Value> = NUMERIC
        .split(',')
        .map(|name| json!({"name": name, "datatype": "FP64", "shape": [1], "data": [application()[name]]}))
        .collect();
    let inferred = post("/v2/models/lgbm/infer", &json!({"inputs": tensors}));
    let score = inferred["outputs"][0]["data"][0].as_f64().unwrap();
    assert!((score - first[1]).abs() < 1e-12, "{inferred}");
    drop(server);

    // A cascade of the two imported models.
    let cascade = json!({
        "name": "imported",
        "type": "group",
        "nodes": [
            {"type": "module", "name": "lr", "model": "sk_lr", "sources": ["applicant"]},
            {"type": "module", "name": "gbm", "model": "lgbm@1", "sources": ["applicant"]}
        ],
        "output": {"lr": ["lr.score"], "gbm": ["gbm.score"]}
    });
    let file = dir.path().join("imported.json");
    std::fs::write(&file, cascade.to_string()).unwrap();
    let out = kaskad(&["cascades", "apply", "--home", h, file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = json!({"applicant": application()}).to_string();
    let out = kaskad(&[
        "cascades", "run", "--home", h, "imported", "--input", &input,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ran: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        (ran["output"]["lr"].as_f64().unwrap() - first[0]).abs() < 1e-12,
        "{ran}"
    );
    assert!(
        (ran["output"]["gbm"].as_f64().unwrap() - first[1]).abs() < 1e-12,
        "{ran}"
    );

    // `kaskad bench` times it; its size includes the graph.
    let out = kaskad(&[
        "bench",
        "--home",
        h,
        "--model",
        "lgbm",
        "--file",
        data("credit_data.csv").to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let benched: Value = serde_json::from_str(&last_line(&out)).unwrap();
    let graph = std::fs::metadata(fixture("lightgbm.onnx")).unwrap().len();
    assert!(benched[0]["bytes"].as_u64().unwrap() > graph, "{benched}");
    assert!(
        benched[0]["rows_per_s"].as_f64().unwrap() > 0.0,
        "{benched}"
    );

    // A second version is not champion unless promoted; export gives the
    // graph back as imported.
    let out = import(
        h,
        &["--onnx", &fixture("lr_pipeline.onnx"), "--name", "sk_lr"],
    );
    assert_eq!(last_line(&out), "sk_lr@2", "{}", stderr(&out));
    let exported = dir.path().join("back.onnx");
    let out = kaskad(&[
        "models",
        "export",
        "--home",
        h,
        "--model",
        "sk_lr@2",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(fixture("lr_pipeline.onnx")).unwrap()
    );
    let out = kaskad(&["models", "explain", "--home", h, "--model", "sk_lr@2"]);
    assert!(
        stderr(&out).contains("imported ONNX model"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn imports_that_cannot_work_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home, &data("credit_data.csv"), &[]);
    let h = home.to_str().unwrap();
    let refused = |args: &[&str], expected: &[&str]| {
        let out = import(h, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        for text in expected {
            assert!(
                stderr(&out).contains(text),
                "{args:?}: `{text}` in {}",
                stderr(&out)
            );
        }
    };
    let csv = data("credit_data.csv");
    refused(
        &["--onnx", csv.to_str().unwrap(), "--name", "x"],
        &["credit_data.csv: cannot import", "not an ONNX model"],
    );
    refused(
        &[
            "--onnx",
            &fixture("svm.onnx"),
            "--name",
            "x",
            "--features",
            NUMERIC,
        ],
        &["svm.onnx", "ai.onnx.ml.SVMClassifier", "node `"],
    );
    refused(
        &[
            "--onnx",
            &fixture("tree.onnx"),
            "--name",
            "x",
            "--features",
            "Age,Income",
        ],
        &["the input has 9 columns but --features names 2"],
    );
    refused(
        &["--onnx", &fixture("tree.onnx"), "--name", "x"],
        &["--features"],
    );
    refused(
        &[
            "--onnx",
            &fixture("lr_pipeline.onnx"),
            "--name",
            "default_risk",
        ],
        &["`default_risk` is the configured model"],
    );
    // Nothing was registered by the refused imports.
    let out = kaskad(&["models", "--home", h, "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!([])
    );

    // Scoring rows that lack a column the graph reads names the column;
    // an unknown reference names what is known.
    let out = import(
        h,
        &[
            "--onnx",
            &fixture("tree.onnx"),
            "--name",
            "tree",
            "--features",
            NUMERIC,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let partial = dir.path().join("partial.csv");
    std::fs::write(&partial, "Age,Income\n30,129\n").unwrap();
    let out = kaskad(&[
        "inference",
        "--home",
        h,
        "--model",
        "tree",
        "--file",
        partial.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Seniority"), "{}", stderr(&out));
    let out = kaskad(&[
        "inference",
        "--home",
        h,
        "--model",
        "nope",
        "--file",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("model `nope` not found"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("tree"),
        "names the known models: {}",
        stderr(&out)
    );
}
