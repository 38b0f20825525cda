//! `kaskad models explain`: what each family's explanation says.

use serde_json::Value;

use crate::support::{data, edit_config, init, kaskad, last_line, stderr, stdout};

#[test]
fn explanations_read_in_raw_units_and_points() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let explain = |model: &str| -> Value {
        let out = kaskad(&["models", "explain", "--home", h, "--model", model, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };

    // Version 1 is LR: points fall as a coefficient raises the risk, and
    // doubling the odds costs `pdo` points.
    let lr = explain("default_risk@1");
    assert_eq!(lr["algorithm"], "lr");
    let e = &lr["explanation"];
    let pdo = e["scorecard"]["pdo"].as_f64().unwrap();
    for f in e["features"].as_array().unwrap() {
        let w = f["coefficient"].as_f64().unwrap();
        if let Some(points) = f["points"].as_f64() {
            assert!((points + w * pdo / std::f64::consts::LN_2).abs() < 1e-9);
        } else {
            assert!(f["points_per_unit"].as_f64().unwrap() * w <= 0.0);
        }
    }
    assert!(
        e["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["feature"] == "Home=owner")
    );

    // Version 2 is the tree: numeric thresholds in the column's own units
    // (Age in years), levels as present or absent.
    let out = kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        "default_risk@2",
    ]);
    let text = stdout(&out);
    assert!(text.contains("default rate"), "{text}");
    let age_thresholds: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("if Age <= "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        age_thresholds.iter().all(|a| (18.0..=70.0).contains(a)),
        "{age_thresholds:?}"
    );
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("if ")) {
        // A one-hot feature is named `column=level`; it reads as present or
        // absent, never as a threshold on 0/1.
        let feature = line["if ".len()..]
            .trim_start_matches("not ")
            .split(" <= ")
            .next()
            .and_then(|f| f.split(" (").next())
            .unwrap_or_default();
        if feature.contains('=') {
            assert!(
                line.starts_with("if not ") && !line.contains("<="),
                "{line}"
            );
        }
    }
}

#[test]
fn a_weight_of_evidence_model_explains_as_points_per_bin() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    edit_config(&home, "variants = [\"onehot\"]", "variants = [\"woe\"]");
    edit_config(
        &home,
        "algorithms = [\"lr\", \"tree\", \"knn\"]",
        "algorithms = [\"lr\"]",
    );
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let out = kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        "default_risk@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lr: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let e = &lr["explanation"];
    let factor = e["scorecard"]["pdo"].as_f64().unwrap() / std::f64::consts::LN_2;
    let features = e["features"].as_array().unwrap();
    let income = features
        .iter()
        .find(|f| f["feature"] == "Income_woe")
        .unwrap();
    let w = income["coefficient"].as_f64().unwrap();
    let bins = income["bins"].as_array().unwrap();
    assert!(bins.len() > 2, "{bins:?}");
    assert_eq!(bins.last().unwrap()["bin"], "missing");
    for bin in bins {
        let woe = bin["woe"].as_f64().unwrap();
        assert!((bin["points"].as_f64().unwrap() + factor * w * woe).abs() < 1e-9);
    }
}

#[test]
fn bench_reports_each_scoring_variant_with_speed_and_quality() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let file = data("credit_data.csv");
    let out = kaskad(&[
        "bench",
        "--home",
        h,
        "--file",
        file.to_str().unwrap(),
        "--batch",
        "256",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let variants: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let native = &variants[0];
    assert_eq!(native["variant"], "native");
    assert_eq!(native["batch"], 256);
    assert!(native["rows_per_s"].as_f64().unwrap() > 0.0);
    assert!(native["bytes"].as_u64().unwrap() > 0);
    assert!(native["auc"].as_f64().unwrap() > 0.7);
    let out = kaskad(&["bench", "--home", h]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--file"), "{}", stderr(&out));
}
