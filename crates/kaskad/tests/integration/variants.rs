//! Model variants: INT8 quantization with its gate, and `kaskad bench`
//! listing every variant of a version.

use serde_json::Value;

use crate::support::{data, init, kaskad, last_line, stderr, stdout};

/// A home with one processed batch (lr, tree, knn) and an MLP trained on it.
fn home_with_an_mlp(dir: &std::path::Path) -> (String, String) {
    let home = dir.join("home");
    let h = home.to_str().unwrap().to_string();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", &h])), "true");
    let out = kaskad(&[
        "train",
        "--home",
        &h,
        "--algo",
        "mlp",
        "--param",
        "max_epochs=30",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (h, last_line(&out))
}

fn bench(h: &str, model: &str) -> Vec<Value> {
    let file = data("credit_data.csv");
    let out = kaskad(&[
        "bench",
        "--home",
        h,
        "--model",
        model,
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn int8_variants_are_registered_and_benched_beside_their_original() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mlp) = home_with_an_mlp(dir.path());
    let out = kaskad(&[
        "models", "quantize", "--home", &h, "--model", &mlp, "--int8",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let int8 = last_line(&out);
    assert!(
        stderr(&out).contains("hold-out rows AUC"),
        "{}",
        stderr(&out)
    );

    // Pruned from the MLP's weights; distilled from it into a smaller MLP.
    let out = kaskad(&[
        "train",
        "--home",
        &h,
        "--algo",
        "mlp",
        "--param",
        "prune=0.5",
        "--from",
        &mlp,
        "--param",
        "max_epochs=10",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pruned = last_line(&out);
    let teacher = format!("teacher={mlp}");
    let out = kaskad(&[
        "train",
        "--home",
        &h,
        "--algo",
        "mlp",
        "--param",
        &teacher,
        "--param",
        "hidden=[8]",
        "--param",
        "max_epochs=20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let distilled = last_line(&out);

    let variants = bench(&h, &mlp);
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fp32", "int8", "pruned", "distilled"]);
    assert_eq!(variants[2]["model"], pruned.as_str());
    assert_eq!(variants[3]["model"], distilled.as_str());
    for v in &variants {
        for key in ["variant", "batch", "rows_per_s", "bytes", "auc"] {
            assert!(!v[key].is_null(), "{key} missing in {v}");
        }
        assert!(v["rows_per_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(variants[1]["model"], int8.as_str());
    assert_eq!(variants[1]["derived_from"], mlp.as_str());
    let (fp32, quantized) = (&variants[0], &variants[1]);
    assert!(
        (fp32["auc"].as_f64().unwrap() - quantized["auc"].as_f64().unwrap()).abs() < 0.005,
        "{variants:?}"
    );
    // The weights take a quarter of the space; the preprocessing, stored
    // alike in both, keeps the whole file above that, but both files are
    // compressed, and the 3× holds file against file.
    let bytes = |v: &Value, key: &str| v[key].as_u64().unwrap() as f64;
    assert!(bytes(fp32, "model_bytes") > 3.0 * bytes(quantized, "model_bytes"));
    assert!(
        bytes(fp32, "bytes") > 3.0 * bytes(quantized, "bytes"),
        "{variants:?}"
    );
    assert!(quantized["score_change_max"].as_f64().unwrap() < 0.05);

    // The version listing says what each version is.
    let out = kaskad(&["models", "--home", &h, "--json"]);
    let versions: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let registered = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| format!("{}@{}", v["name"].as_str().unwrap(), v["version"]) == int8)
        .unwrap();
    assert_eq!(registered["metrics"]["model_variant"], "int8");
    let metrics = |reference: &str| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|v| format!("{}@{}", v["name"].as_str().unwrap(), v["version"]) == reference)
            .unwrap()["metrics"]
            .clone()
    };
    // Half of every layer's weights stay cut after fine-tuning.
    let sparsity = metrics(&pruned)["sparsity"].as_f64().unwrap();
    assert!((0.49..0.55).contains(&sparsity), "{sparsity}");
    // The student takes the teacher's side on most hold-out rows (chance
    // would be near the share of rows on the majority side, far below).
    let agreement = metrics(&distilled)["teacher_agreement"].as_f64().unwrap();
    assert!(agreement > 0.8, "{agreement}");
    assert_eq!(metrics(&distilled)["derived_from"], mlp.as_str());

    // LR quantizes too, and keeps its reason codes.
    let lr = "default_risk@1";
    let out = kaskad(&["models", "quantize", "--home", &h, "--model", lr, "--int8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lr_int8 = last_line(&out);
    let names: Vec<String> = bench(&h, lr)
        .iter()
        .map(|v| v["variant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["fp64", "int8"]);
    let out = kaskad(&[
        "inference",
        "--home",
        &h,
        "--file",
        data("credit_data.csv").to_str().unwrap(),
        "--model",
        &lr_int8,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = std::fs::read_to_string(last_line(&out)).unwrap();
    let mut lines = scored.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let reason = header.iter().position(|c| *c == "reason_1").unwrap();
    let explained = lines
        .filter(|l| !l.split(',').nth(reason).unwrap_or("").is_empty())
        .count();
    assert!(explained > 1000, "{explained} rows with a reason");
}

#[test]
fn quantizing_what_cannot_be_quantized_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    // Versions 1–3 are lr, tree, knn.
    let out = kaskad(&[
        "models",
        "quantize",
        "--home",
        h,
        "--model",
        "default_risk@2",
        "--int8",
    ]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("default_risk@2 (tree)") && message.contains("cannot be quantized"),
        "{message}"
    );
    let out = kaskad(&[
        "models",
        "quantize",
        "--home",
        h,
        "--model",
        "default_risk@99",
        "--int8",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("default_risk@99"), "{}", stderr(&out));
    let out = kaskad(&[
        "models",
        "quantize",
        "--home",
        h,
        "--model",
        "default_risk@1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--int8"), "{}", stderr(&out));
    // Nothing was registered by the refusals.
    let out = kaskad(&["models", "--home", h, "--json"]);
    let versions: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 3);
}
