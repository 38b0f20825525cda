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

    // `kaskad models explain | head`: the reader leaves before the text is
    // written, and the command ends quietly instead of panicking.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kaskad"))
        .args([
            "models",
            "explain",
            "--home",
            h,
            "--model",
            "default_risk@2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn a_weight_of_evidence_model_explains_as_points_per_bin() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    edit_config(
        &home,
        "variants = [\"onehot\", \"onehot_plain\"]",
        "variants = [\"woe\"]",
    );
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
    assert_eq!(native["variant"], "fp64");
    assert_eq!(native["batch"], 256);
    assert!(native["rows_per_s"].as_f64().unwrap() > 0.0);
    assert!(native["bytes"].as_u64().unwrap() > 0);
    assert!(native["auc"].as_f64().unwrap() > 0.7);
    let out = kaskad(&["bench", "--home", h]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--file"), "{}", stderr(&out));
}

/// 120 applications in stream order: `x` = 0, 1, …, every third one a
/// default, and `z` = "a" exactly for the defaults.
fn write_stripes(path: &std::path::Path) {
    let mut text = String::from("x,z,Status\n");
    for i in 0..120 {
        let bad = i % 3 == 0;
        text.push_str(&format!(
            "{i},{},{}\n",
            if bad { "a" } else { "b" },
            if bad { "bad" } else { "good" }
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn knn_explains_a_score_by_its_nearest_kept_rows_and_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("stripes.csv");
    write_stripes(&dataset);
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &dataset, &["--batch-rows", "1000"]);
    edit_config(
        &home,
        "algorithms = [\"lr\", \"tree\", \"knn\"]",
        "algorithms = [\"knn\"]",
    );
    edit_config(&home, "knn_k = [25, 50]", "knn_k = [3]");
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");

    // x = 30.4 with the defaulters' z: the three nearest kept rows are the
    // defaulters at x = 30, 33, 27 (a different z costs far more than
    // a few units of x), so the score is 3/3.
    let input = dir.path().join("one.csv");
    std::fs::write(&input, "x,z,Status\n5,b,good\n30.4,a,bad\n").unwrap();
    let out = kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        "default_risk@1",
        "--input",
        input.to_str().unwrap(),
        "--row",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(e["algorithm"], "knn");
    let a = &e["application"];
    assert_eq!(a["row"], 2);
    assert_eq!(a["score"].as_f64().unwrap(), 1.0);
    let neighbours = a["neighbours"].as_array().unwrap();
    assert_eq!(neighbours.len(), 3);
    let x_of = |n: &Value| -> f64 {
        let d = n["differences"].as_array().unwrap();
        assert_eq!(d.len(), 1, "only x differs: {n}");
        assert_eq!(d[0]["feature"], "x");
        assert!((d[0]["application"].as_f64().unwrap() - 30.4).abs() < 1e-9);
        d[0]["neighbour"].as_f64().unwrap()
    };
    for (n, x) in neighbours.iter().zip([30.0, 33.0, 27.0]) {
        assert_eq!(n["default"], true, "{n}");
        assert!((x_of(n) - x).abs() < 1e-9, "{n}");
        // The model keeps rows in stream order, all 96 training rows.
        assert_eq!(n["kept_row"].as_f64().unwrap(), x);
    }
    let d: Vec<f64> = neighbours
        .iter()
        .map(|n| n["distance"].as_f64().unwrap())
        .collect();
    assert!(d[0] < d[1] && d[1] < d[2], "{d:?}");
    // Its reason: z, shared with the defaulters nearest to it; x is not
    // one (the good payers at 29, 31, 32 are nearer on x than the
    // defaulters at 27, 30, 33).
    let reasons = a["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0]["column"], "z");

    // `inference` gives kNN the same reason codes.
    let out = kaskad(&["inference", "--home", h, "--file", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = std::fs::read_to_string(last_line(&out)).unwrap();
    let header: Vec<&str> = scored.lines().next().unwrap().split(',').collect();
    let second: Vec<&str> = scored.lines().nth(2).unwrap().split(',').collect();
    let reason_1 = header.iter().position(|c| *c == "reason_1").unwrap();
    assert_eq!(second[reason_1], "z", "{scored}");

    // The text form names the same rows; a row beyond the file is an error.
    let text = stdout(&kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        "default_risk@1",
        "--input",
        input.to_str().unwrap(),
        "--row",
        "2",
    ]));
    assert!(text.contains("3 nearest kept training rows"), "{text}");
    assert!(text.contains("x 30.4 vs 33"), "{text}");
    let out = kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        "default_risk@1",
        "--input",
        input.to_str().unwrap(),
        "--row",
        "3",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has 2 data rows"), "{}", stderr(&out));
}

#[test]
fn an_mlp_champion_gives_reason_codes_named_by_raw_columns() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let out = kaskad(&[
        "train",
        "--home",
        h,
        "--algo",
        "mlp",
        "--param",
        "max_epochs=30",
        "--promote",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mlp = last_line(&out);

    let file = data("credit_data.csv");
    let out = kaskad(&["inference", "--home", h, "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(last_line(&out)).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|c| c == name).unwrap();
    let (model, reason_1) = (column("model"), column("reason_1"));
    let inputs = [
        "Seniority",
        "Home",
        "Time",
        "Age",
        "Marital",
        "Records",
        "Job",
        "Expenses",
        "Income",
        "Assets",
        "Debt",
        "Amount",
        "Price",
    ];
    let mut named = 0;
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(&record[model], mlp.as_str());
        if !record[reason_1].is_empty() {
            assert!(inputs.contains(&&record[reason_1]), "{:?}", &record);
            named += 1;
        }
    }
    // Every row above the mean applicant's risk has a reason; most rows do.
    assert!(named > 2_000, "{named} rows with a reason");

    // `models explain` gives one application's reasons, strongest first.
    let out = kaskad(&[
        "models",
        "explain",
        "--home",
        h,
        "--model",
        &mlp,
        "--input",
        file.to_str().unwrap(),
        "--row",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let reasons = e["application"]["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{e}");
    let strengths: Vec<f64> = reasons
        .iter()
        .map(|r| r["contribution"].as_f64().unwrap())
        .collect();
    assert!(strengths.windows(2).all(|w| w[0] >= w[1]), "{strengths:?}");
}
