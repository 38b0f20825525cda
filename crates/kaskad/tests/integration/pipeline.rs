//! The whole flow on real data, and the output contracts scripts rely on.

use serde_json::Value;

use crate::support::{
    data, edit_config, init, init_germancredit, kaskad, last_line, scored_auc, split, stderr,
    stdout,
};

/// scikit-learn LogisticRegression(C=1) on one-hot + median impute + scaling,
/// trained on the first 75 % of credit_data.csv, AUC on the newest 25 %:
/// `python3 bench/peers/credit_data_lr_reference.py data/credit_data.csv`
/// (scikit-learn 1.7, pandas 2).
const SKLEARN_LR_AUC: f64 = 0.840876;

#[test]
fn credit_data_streams_trains_and_scores_within_noise_of_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, newest) = split(&data("credit_data.csv"), 0.75, dir.path());
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &stream, &[]);
    let toml = std::fs::read_to_string(home.join("kaskad.toml")).unwrap();
    assert!(
        toml.contains("# Rows per batch"),
        "kaskad.toml is commented"
    );

    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    assert!(out.status.success());
    let out = kaskad(&["update", "--home", h, "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true");
    assert!(stderr(&out).contains("nothing pending"), "{}", stderr(&out));

    let batches: Value =
        serde_json::from_str(&stdout(&kaskad(&["batches", "--home", h, "--json"]))).unwrap();
    let batches = batches.as_array().unwrap();
    assert_eq!(batches.len(), 4, "3340 rows in batches of 1000");
    let rows: u64 = batches.iter().map(|b| b["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 3340, "every streamed row is stored once");
    for b in batches {
        assert_eq!(b["processed"], true);
        assert_eq!(b["content_hash"].as_str().unwrap().len(), 64);
        assert!(b["meta"]["columns"].as_array().unwrap().len() == 14);
        assert!(b["quality"]["rows_in"].as_u64().is_some());
    }
    assert!(
        batches[1]["drift"]["max_psi"].as_f64().is_some(),
        "drift measured from the second batch on"
    );

    let models: Value =
        serde_json::from_str(&stdout(&kaskad(&["models", "--home", h, "--json"]))).unwrap();
    let models = models.as_array().unwrap();
    assert_eq!(models.len(), 12, "three families registered per batch");
    for m in models {
        for key in [
            "name",
            "version",
            "algorithm",
            "params",
            "metrics",
            "aliases",
            "trained_on",
            "created_at",
        ] {
            assert!(!m[key].is_null(), "model entry lacks {key}: {m}");
        }
        for metric in [
            "auc",
            "gini",
            "ks",
            "log_loss",
            "brier",
            "precision",
            "recall",
            "f1",
            "score_psi",
        ] {
            assert!(
                m["metrics"][metric].as_f64().is_some(),
                "{metric} missing in {m}"
            );
        }
        let calibration = m["metrics"]["calibration"].as_array().unwrap();
        assert_eq!(calibration.len(), 10);
        let rows: u64 = calibration
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(rows, m["metrics"]["rows"].as_u64().unwrap());
    }
    let champions: Vec<&Value> = models
        .iter()
        .filter(|m| {
            m["aliases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "champion")
        })
        .collect();
    assert_eq!(champions.len(), 1);

    let out = kaskad(&["inference", "--home", h, "--file", newest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = std::path::PathBuf::from(last_line(&out));
    let mut reader = csv::Reader::from_path(&scored).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        &headers[14..],
        [
            "score", "predict", "reason_1", "reason_2", "reason_3", "model"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1114);
    // The champion of this run is LR: every row that scores above the
    // baseline has at least one reason, and reasons name input columns.
    let model = &records[0][19];
    assert!(model.starts_with("default_risk@"), "{model}");
    let explained = records.iter().filter(|r| !r[16].is_empty()).count();
    assert!(explained > 500, "only {explained} rows have a reason");
    for r in &records {
        for k in 16..19 {
            assert!(r[k].is_empty() || headers[..14].contains(&r[k].to_string()));
        }
    }
    let auc = scored_auc(&scored);
    assert!(
        auc >= SKLEARN_LR_AUC - 0.01,
        "champion AUC {auc:.4} vs scikit-learn {SKLEARN_LR_AUC}"
    );

    let out = kaskad(&["summary", "--home", h]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(last_line(&out)).unwrap();
    assert!(html.contains("<svg"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "report loads nothing from the network"
    );
    for section in [
        "quality",
        "Drift",
        "AUC",
        "Inference",
        "Calibration error",
        "Score PSI",
    ] {
        assert!(html.contains(section), "report lacks {section}");
    }
}

#[test]
fn a_killed_update_leaves_the_home_readable_and_the_next_update_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "700"]);
    // Kill the process at several points; whatever it was doing, nothing is
    // stored twice and the next update completes the stream.
    for delay_ms in [30, 120, 300, 700] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kaskad"))
            .args(["update", "--home", h, "--all"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = kaskad(&["batches", "--home", h, "--json"]);
        assert!(
            out.status.success(),
            "home readable after kill at {delay_ms} ms: {}",
            stderr(&out)
        );
    }
    let out = kaskad(&["update", "--home", h, "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let batches: Value =
        serde_json::from_str(&stdout(&kaskad(&["batches", "--home", h, "--json"]))).unwrap();
    let batches = batches.as_array().unwrap();
    assert_eq!(
        batches.len(),
        7,
        "4454 rows in batches of 700, none stored twice"
    );
    assert!(batches.iter().all(|b| b["processed"] == true));
    let out = kaskad(&[
        "inference",
        "--home",
        h,
        "--file",
        data("credit_data.csv").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_directory_source_refuses_a_batch_it_already_has() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let (first, second) = split(&data("credit_data.csv"), 0.5, dir.path());
    std::fs::copy(&first, inbox.join("2024-01.csv")).unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &inbox, &[]);
    assert_eq!(
        last_line(&kaskad(&["update", "--home", h, "--all"])),
        "true"
    );
    std::fs::copy(&first, inbox.join("2024-01-again.csv")).unwrap();
    std::fs::copy(&second, inbox.join("2024-02.csv")).unwrap();
    let out = kaskad(&["update", "--home", h, "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2024-01-again.csv has the same content as batch 1"),
        "{}",
        stderr(&out)
    );
    let batches: Value =
        serde_json::from_str(&stdout(&kaskad(&["batches", "--home", h, "--json"]))).unwrap();
    assert_eq!(batches.as_array().unwrap().len(), 2);
}

#[test]
fn an_all_missing_column_is_dropped_by_cleaning_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("credit_data.csv")).unwrap();
    let with_empty: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},Notes\n")
            } else {
                format!("{l},\n")
            }
        })
        .collect();
    let file = dir.path().join("with_empty.csv");
    std::fs::write(&file, with_empty).unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &file, &["--batch-rows", "2000"]);
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let batches: Value =
        serde_json::from_str(&stdout(&kaskad(&["batches", "--home", h, "--json"]))).unwrap();
    let dropped = &batches[0]["quality"]["dropped_columns"];
    assert!(
        dropped.as_array().unwrap().iter().any(|c| c == "Notes"),
        "{dropped}"
    );
}

#[test]
fn incremental_mode_updates_each_family_from_its_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, _) = split(&data("credit_data.csv"), 0.75, dir.path());
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &stream, &[]);
    edit_config(&home, "mode = \"auto\"", "mode = \"incremental\"");
    edit_config(
        &home,
        "algorithms = [\"lr\", \"tree\", \"knn\"]",
        "algorithms = [\"lr\", \"tree\", \"knn\", \"gbdt\"]",
    );
    let out = kaskad(&["update", "--home", h, "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));

    let models: Value =
        serde_json::from_str(&stdout(&kaskad(&["models", "--home", h, "--json"]))).unwrap();
    let models = models.as_array().unwrap();
    assert_eq!(models.len(), 16, "four families, four batches");
    let mode = |m: &Value| m["metrics"]["mode"].as_str().unwrap().to_string();
    for m in &models[..4] {
        assert_eq!(mode(m), "full", "the first batch has nothing to update");
    }
    for m in &models[4..] {
        let expected = if m["algorithm"] == "tree" {
            "full"
        } else {
            "incremental"
        };
        assert_eq!(mode(m), expected, "{}", m["algorithm"]);
        assert!(m["metrics"]["auc"].as_f64().unwrap() > 0.7);
    }
}

#[test]
fn fairness_is_measured_per_version_and_can_gate_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init_germancredit(&home, "500");
    edit_config(
        &home,
        "sensitive = []",
        "sensitive = [\"personal_status_and_sex\", \"age_in_years\"]",
    );
    // A gate no model can pass: nothing becomes champion, the update fails
    // and says which policy stopped it.
    edit_config(
        &home,
        "max_parity_difference = 1.0",
        "max_parity_difference = 0.0",
    );
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "false");
    assert!(
        stderr(&out).contains("max_parity_difference"),
        "{}",
        stderr(&out)
    );

    edit_config(
        &home,
        "max_parity_difference = 0.0",
        "max_parity_difference = 1.0",
    );
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let models: Value =
        serde_json::from_str(&stdout(&kaskad(&["models", "--home", h, "--json"]))).unwrap();
    let models = models.as_array().unwrap();
    assert!(models.iter().any(|m| m["aliases"][0] == "champion"));
    for m in models {
        let fairness = m["metrics"]["fairness"].as_array().unwrap();
        assert_eq!(fairness.len(), 2);
        assert_eq!(fairness[1]["attribute"], "age_in_years");
        assert_eq!(
            fairness[1]["groups"].as_array().unwrap().len(),
            4,
            "quartile bands"
        );
        let dpd = fairness[0]["demographic_parity_difference"]
            .as_f64()
            .unwrap();
        assert!((0.0..=1.0).contains(&dpd));
    }
}

#[test]
fn train_registers_one_candidate_and_export_writes_its_onnx_graph() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "2000"]);
    let out = kaskad(&["train", "--home", h, "--algo", "lr"]);
    assert!(!out.status.success(), "nothing processed yet");
    assert!(stderr(&out).contains("kaskad update"), "{}", stderr(&out));
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");

    let out = kaskad(&[
        "train",
        "--home",
        h,
        "--algo",
        "gbdt",
        "--param",
        "n_trees=30",
        "--param",
        "max_leaves=7",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), "default_risk@4");
    let out = kaskad(&[
        "train",
        "--home",
        h,
        "--algo",
        "lr",
        "--param",
        "c=0.5",
        "--promote",
    ]);
    assert_eq!(last_line(&out), "default_risk@5", "{}", stderr(&out));
    let models: Value =
        serde_json::from_str(&stdout(&kaskad(&["models", "--home", h, "--json"]))).unwrap();
    let models = models.as_array().unwrap();
    assert_eq!(models[3]["params"]["n_trees"], 30);
    assert!(models[3]["aliases"].as_array().unwrap().is_empty());
    assert_eq!(models[4]["aliases"][0], "champion");
    let out = kaskad(&["train", "--home", h, "--algo", "lr", "--param", "depth=3"]);
    assert!(stderr(&out).contains("no parameter `depth` (known: c)"));

    let onnx = dir.path().join("champion.onnx");
    let out = kaskad(&[
        "models",
        "export",
        "--home",
        h,
        "--model",
        "default_risk",
        "--out",
        onnx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), onnx.to_str().unwrap());
    let bytes = std::fs::read(&onnx).unwrap();
    assert!(bytes.windows(13).any(|w| w == b"probabilities"));
    let knn = models.iter().find(|m| m["algorithm"] == "knn").unwrap();
    let reference = format!("default_risk@{}", knn["version"]);
    let out = kaskad(&[
        "models",
        "export",
        "--home",
        h,
        "--model",
        &reference,
        "--out",
        onnx.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("knn models cannot be exported"));
}

#[test]
fn preprocessing_variants_are_searched_with_the_hyperparameters() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init_germancredit(&home, "500");
    edit_config(
        &home,
        "variants = [\"onehot\", \"onehot_plain\"]",
        "variants = [\"onehot\", \"woe\"]",
    );
    edit_config(&home, "mode = \"auto\"", "mode = \"incremental\"");
    let out = kaskad(&["update", "--home", h, "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));

    let models: Value =
        serde_json::from_str(&stdout(&kaskad(&["models", "--home", h, "--json"]))).unwrap();
    let models = models.as_array().unwrap();
    assert_eq!(models.len(), 6, "three families, two batches");
    let variant = |m: &Value| m["metrics"]["variant"].as_str().unwrap().to_string();
    for m in models {
        assert!(
            ["onehot", "woe"].contains(&variant(m).as_str()),
            "{}",
            m["metrics"]
        );
        let ivs = &m["metrics"]["information_values"];
        if variant(m) == "woe" {
            let ivs = ivs.as_array().unwrap();
            assert_eq!(ivs.len(), 20, "one per feature column");
            let iv = |i: usize| ivs[i]["iv"].as_f64().unwrap();
            assert!(iv(0) >= iv(1) && iv(0) > 0.1, "strongest first: {ivs:?}");
        } else {
            assert!(ivs.is_null());
        }
    }
    // The second batch updates LR and kNN in place: same preprocessing, so
    // the same variant; the tree always refits and searches again.
    for m in &models[3..] {
        if m["algorithm"] != "tree" {
            assert_eq!(m["metrics"]["mode"], "incremental");
            let previous = models[..3]
                .iter()
                .find(|p| p["algorithm"] == m["algorithm"])
                .unwrap();
            assert_eq!(variant(m), variant(previous), "{}", m["algorithm"]);
        }
    }
    let out = kaskad(&["summary", "--home", h]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(last_line(&out)).unwrap();
    assert!(html.contains("· woe") || html.contains("· onehot"));
    if models.iter().any(|m| variant(m) == "woe") {
        assert!(html.contains("strongest (IV): status_of_existing_checking_account"));
    }
}

#[test]
fn unusual_applications_go_to_the_fallback_model_and_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "3000"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    // Version 2 (the tree) is the fallback; the champion is another version.
    edit_config(
        &home,
        "fallback_model = \"\"",
        "fallback_model = \"default_risk@2\"",
    );

    let file = dir.path().join("applications.csv");
    std::fs::write(
        &file,
        "Status,Seniority,Home,Time,Age,Marital,Records,Job,Expenses,Income,Assets,Debt,Amount,Price\n\
         good,9,rent,60,30,married,no,freelance,73,129,0,0,800,846\n\
         good,,,,,,,,,,,,,\n\
         good,9,rent,60,30,married,no,freelance,73,99999999,0,0,800,846\n",
    )
    .unwrap();
    let out = kaskad(&["inference", "--home", h, "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(last_line(&out)).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(&headers[headers.len() - 2..], ["model", "fallback"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let (model, flag) = (headers.len() - 2, headers.len() - 1);
    assert_eq!(&rows[0][flag], "");
    assert_ne!(&rows[0][model], "default_risk@2");
    assert!(rows[1][flag].contains("inputs missing"), "{:?}", &rows[1]);
    assert_eq!(&rows[1][model], "default_risk@2");
    assert!(
        rows[2][flag].contains("Income") && rows[2][flag].contains("training range"),
        "{:?}",
        &rows[2]
    );
    assert_eq!(&rows[2][model], "default_risk@2");
    for row in &rows {
        let score: f64 = row[14].parse().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }
}

#[test]
fn bench_train_chooses_the_variant_on_the_training_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split(&data("credit_data.csv"), 0.75, dir.path());
    let run = |extra: &[&str]| -> Value {
        let mut args = vec![
            "bench",
            "train",
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--target",
            "Status",
            "--positive",
            "bad",
            "--algo",
            "lr",
            "--json",
        ];
        args.extend(extra);
        let out = kaskad(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&last_line(&out)).unwrap()
    };
    // Both default variants cross-validated; credit_data's gaps carry signal.
    let searched = run(&[]);
    let cv = searched["variant_cv_auc"].as_object().unwrap();
    assert_eq!(cv.len(), 2, "{cv:?}");
    let auc = |v: &str| cv[v].as_f64().unwrap();
    assert!(auc("onehot") > auc("onehot_plain"), "{cv:?}");
    assert_eq!(searched["variant"], "onehot");
    // A given variant is used as it is.
    let given = run(&["--variant", "onehot_plain"]);
    assert_eq!(given["variant"], "onehot_plain");
    assert!(given["variant_cv_auc"].as_object().unwrap().is_empty());
    assert!(given["features"].as_u64() < searched["features"].as_u64());
    assert!(given["auc"].as_f64().unwrap() > 0.8);
}
