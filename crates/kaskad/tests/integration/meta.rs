//! Meta-learning: every search's candidates are kept with the meta-model's
//! estimates, which order the next search and decide what a budget keeps.

use serde_json::Value;

use crate::support::{edit_config, init_germancredit, kaskad, last_line, stderr, stdout};

fn searches(h: &str) -> Vec<Value> {
    let out = kaskad(&["searches", "--home", h, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn update(h: &str) {
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
}

#[test]
fn the_meta_model_orders_the_search_and_the_budget_keeps_its_best_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init_germancredit(&home, "250");
    edit_config(&home, "mode = \"auto\"", "mode = \"full\"");
    edit_config(
        &home,
        "variants = [\"onehot\", \"onehot_plain\"]",
        "variants = [\"onehot\"]",
    );
    // Default grid: 3 LR + 3 × 2 trees + 2 kNN, one variant.
    const GRID: usize = 11;
    update(h);
    update(h);

    let recorded = searches(h);
    assert_eq!(recorded.len(), 2, "one search per full update");
    let candidates = |s: &Value| s["candidates"].as_array().unwrap().clone();
    let first = candidates(&recorded[0]);
    assert_eq!(first.len(), GRID);
    for c in &first {
        assert!(c["predicted_auc"].is_null(), "nothing to learn from yet");
        assert_eq!(c["evaluated"], true);
        let auc = c["cv_auc"].as_f64().unwrap();
        assert!((0.5..1.0).contains(&auc), "{c}");
        assert!(c["cv_auc_sd"].as_f64().unwrap() >= 0.0);
        assert!(c["fit_seconds"].as_f64().unwrap() > 0.0);
    }
    // The first search knew nothing, so it ran in grid order.
    assert_eq!(first[0]["family"], "lr");
    assert_eq!(first[GRID - 1]["family"], "knn");
    let features = recorded[1]["meta_features"].as_array().unwrap();
    assert_eq!(features[0][0], "log_rows");
    assert!(
        recorded[1]["meta_features"][0][1].as_f64().unwrap()
            > recorded[0]["meta_features"][0][1].as_f64().unwrap(),
        "the second search trains on more rows"
    );

    // The second search is ordered by the estimates, best first.
    let second = candidates(&recorded[1]);
    assert_eq!(second.len(), GRID);
    let predicted: Vec<f64> = second
        .iter()
        .map(|c| {
            c["predicted_auc"]
                .as_f64()
                .expect("every pair was measured")
        })
        .collect();
    assert!(predicted.windows(2).all(|w| w[0] >= w[1]), "{predicted:?}");
    // With one earlier search, the estimate is that search's measurement.
    for c in &second {
        let same = first
            .iter()
            .find(|f| f["params"] == c["params"] && f["variant"] == c["variant"])
            .unwrap();
        let diff = c["predicted_auc"].as_f64().unwrap() - same["cv_auc"].as_f64().unwrap();
        assert!(diff.abs() < 1e-9, "{c} vs {same}");
    }

    // A budget of 3: only the three best estimates are cross-validated.
    edit_config(&home, "search_budget = 0", "search_budget = 3");
    let before = kaskad(&["models", "--home", h, "--json"]);
    let before = serde_json::from_str::<Value>(&stdout(&before)).unwrap();
    update(h);
    let third = candidates(&searches(h)[2]);
    assert_eq!(third.len(), GRID, "skipped candidates are recorded too");
    let evaluated: Vec<&Value> = third.iter().filter(|c| c["evaluated"] == true).collect();
    assert_eq!(evaluated.len(), 3);
    assert!(third[..3].iter().all(|c| c["evaluated"] == true));
    let lowest_evaluated = evaluated
        .iter()
        .map(|c| c["predicted_auc"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    for skipped in &third[3..] {
        assert!(skipped["cv_auc"].is_null());
        assert!(skipped["predicted_auc"].as_f64().unwrap() <= lowest_evaluated);
    }
    // Only the families with an evaluated candidate get a new version.
    let mut families: Vec<&str> = evaluated
        .iter()
        .map(|c| c["family"].as_str().unwrap())
        .collect();
    families.sort();
    families.dedup();
    let after = kaskad(&["models", "--home", h, "--json"]);
    let after = serde_json::from_str::<Value>(&stdout(&after)).unwrap();
    let new = &after.as_array().unwrap()[before.as_array().unwrap().len()..];
    let mut registered: Vec<&str> = new
        .iter()
        .map(|m| m["algorithm"].as_str().unwrap())
        .collect();
    registered.sort();
    assert_eq!(registered, families);

    let text = stdout(&kaskad(&["searches", "--home", h]));
    assert!(
        text.contains("budget 3") && text.contains("skipped"),
        "{text}"
    );

    let out = kaskad(&["summary", "--home", h]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(last_line(&out)).unwrap();
    let section = &html[html.find(r#"<section id="meta">"#).expect("meta section")..];
    let section = &section[..section.find("</section>").unwrap()];
    assert!(section.contains("3 of 11 (budget 3)"), "{section}");
    assert!(
        section.contains("of 2 searches"),
        "the first had no estimates: {section}"
    );
    for family in ["lr", "tree", "knn"] {
        assert!(
            section.contains(&format!("<td>{family}</td>")),
            "{family}: {section}"
        );
    }
}
