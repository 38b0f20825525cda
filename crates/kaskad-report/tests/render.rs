//! Renders realistic and empty report data and checks the page's contract:
//! all sections present, charts inline, nothing external, user text escaped.

use kaskad_report::{
    AbRow, BatchRow, DriftRow, InferenceRow, MetaFamilyRow, MetaView, QualityRow, RejectedRow,
    ReportData, RunRow, SearchRow, VersionRow, render_html,
};

fn sample() -> ReportData {
    let batch = |id: i64, missing: f64, drift: Option<DriftRow>| BatchRow {
        id,
        source: format!("data/loans_2024_q{id}.csv"),
        rows: 1000 * id as usize,
        columns: 12,
        time_range: Some("2024-01-01 .. 2024-03-31".into()),
        content_hash: "ab12".into(),
        collected_at: "2024-04-02T10:00:00Z".into(),
        quality: Some(QualityRow {
            missing_cell_share: missing,
            duplicate_rows: 3,
            dropped_rows: 1,
            dropped_columns: vec!["const_col".into()],
            clipped_cells: 7,
            warnings: 2,
            failures: 0,
            findings: vec!["income <script>alert(1)</script> has 4 % missing".into()],
        }),
        drift,
    };
    let version = |v: i64, auc: f64, aliases: Vec<String>| VersionRow {
        version: v,
        algorithm: "logistic".into(),
        mode: "full".into(),
        variant: "woe".into(),
        strongest: vec![("income".into(), 0.4321)],
        fairness: String::new(),
        params: r#"{"c": 0.5, "max_iter": 200}"#.into(),
        auc,
        gini: 2.0 * auc - 1.0,
        ks: 0.41,
        log_loss: 0.45,
        brier: 0.14,
        precision: 0.6,
        recall: 0.5,
        f1: 0.545,
        cv_auc: Some(auc - 0.01),
        calibration_error: Some(0.02),
        score_psi: Some(0.01),
        trained_on: vec![1, v],
        aliases,
        train_seconds: 1.25,
        peak_rss_bytes: 64 * 1024 * 1024,
        created_at: "2024-04-02T10:05:00Z".into(),
    };
    ReportData {
        title: "Credit scoring & \"risk\" report".into(),
        generated_at: "2024-04-03T08:00:00Z".into(),
        home: "/srv/kaskad".into(),
        model_name: "pd_retail".into(),
        champion: Some("pd_retail@2".into()),
        batches: vec![
            batch(1, 0.012, None),
            batch(
                2,
                0.034,
                Some(DriftRow {
                    max_psi: 0.31,
                    drifted_columns: 2,
                    columns: vec![
                        ("age".into(), 0.05, 0.2),
                        ("income".into(), 0.31, 0.0001),
                        ("term".into(), 0.12, 0.01),
                        ("purpose<b>".into(), 0.27, 0.001),
                    ],
                }),
            ),
        ],
        rejected: vec![RejectedRow {
            origin: "b.csv".into(),
            rejected_at: "2024-04-02T09:00:00Z".into(),
            error: "inbox/b.csv:3: expected 14 fields, found 15".into(),
        }],
        versions: vec![
            version(1, 0.74, vec![]),
            version(2, 0.77, vec!["champion".into()]),
        ],
        runs: vec![RunRow {
            id: 1,
            batch_id: Some(2),
            started_at: "2024-04-02T10:00:00Z".into(),
            ok: false,
            stages: vec![
                ("collect".into(), true, 0.5, "1000 rows".into()),
                ("train".into(), false, 2.0, "target has one class".into()),
            ],
            peak_rss_bytes: 80 * 1024 * 1024,
        }],
        inference: vec![InferenceRow {
            at: "2024-04-02T11:00:00Z".into(),
            model: "pd_retail@2".into(),
            rows: 5000,
            seconds: 0.25,
            peak_rss_bytes: 32 * 1024 * 1024,
        }],
        ab: vec![AbRow {
            cascade: "sme<scoring>".into(),
            split: "$.nodes[1]".into(),
            branch: 1,
            requests: 120,
            default_rate: 0.125,
            mean_score: Some(0.2),
            auc: None,
            p_value: Some(0.0312),
        }],
        meta: MetaView {
            searches: vec![
                SearchRow {
                    run_id: 1,
                    batch_id: Some(1),
                    candidates: 11,
                    evaluated: 11,
                    best: "lr onehot c=1".into(),
                    best_auc: Some(0.75),
                    ..SearchRow::default()
                },
                SearchRow {
                    run_id: 2,
                    batch_id: Some(2),
                    budget: 3,
                    candidates: 11,
                    evaluated: 3,
                    compared: 3,
                    rank_correlation: Some(0.5),
                    top1_hit: Some(false),
                    regret: Some(0.0125),
                    best: "lr onehot c=1".into(),
                    best_auc: Some(0.7693),
                },
            ],
            latest: vec![MetaFamilyRow {
                family: "tree".into(),
                predicted: "onehot max_depth=4".into(),
                predicted_auc: Some(0.6568),
                predicted_measured_auc: None,
                measured: "onehot max_depth=6".into(),
                measured_auc: Some(0.6612),
            }],
        },
    }
}

#[test]
fn full_report_has_every_section_and_inline_charts() {
    let html = render_html(&sample());
    assert!(html.contains("<h2>A/B results</h2>") && html.contains("sme&lt;scoring&gt;"));
    assert!(html.contains("0.0312"));
    assert!(html.contains("<h2>Meta-learning: the search order</h2>"));
    assert!(html.contains("Top-1 hit rate: 0 of 1 searches; mean rank correlation 0.500; mean CV AUC lost by taking the best estimate 0.0125"));
    assert!(html.contains("3 of 11 (budget 3)") && html.contains("skipped"));
    for heading in [
        "Data quality by batch",
        "Drift by batch",
        "Rejected input",
        "Model versions",
        "Runs",
        "Inference",
    ] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    // Quality, drift and AUC charts.
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("<style>") && html.ends_with("</html>\n"));
    assert!(html.contains("pd_retail@2"));
    assert!(html.contains("<code>c = 0.5</code>"));
    assert!(html.contains("full · woe"));
    assert!(html.contains("strongest (IV): income 0.432"));
    assert!(html.contains("20000")); // 5000 rows / 0.25 s
    assert!(html.contains("target has one class"));
    assert!(html.contains("<code>inbox/b.csv:3: expected 14 fields, found 15</code>"));
}

#[test]
fn report_references_nothing_external() {
    let html = render_html(&sample());
    assert!(!html.to_lowercase().contains("http"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<img"));
}

#[test]
fn user_strings_are_escaped() {
    let html = render_html(&sample());
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Credit scoring &amp; &quot;risk&quot; report"));
    assert!(html.contains("purpose&lt;b&gt;"));
    assert!(!html.contains("purpose<b>"));
}

#[test]
fn drift_lists_the_top_three_columns_by_psi() {
    let html = render_html(&sample());
    let income = html.find("income — PSI 0.310").unwrap();
    let purpose = html.find("purpose&lt;b&gt; — PSI 0.270").unwrap();
    let term = html.find("term — PSI 0.120").unwrap();
    assert!(income < purpose && purpose < term);
    assert!(!html.contains("age — PSI"));
}

#[test]
fn empty_data_renders_without_panic() {
    let html = render_html(&ReportData::default());
    assert!(html.contains("<h2>Model versions</h2>"));
    assert!(html.contains("No batches collected yet."));
    assert!(!html.contains("<svg"));
}

#[test]
fn non_finite_and_zero_values_render_as_dashes() {
    let mut data = sample();
    data.versions[0].auc = f64::NAN;
    data.versions[1].cv_auc = None;
    data.inference[0].seconds = 0.0;
    data.batches[0].quality = None;
    let html = render_html(&data);
    assert!(!html.contains("NaN") && !html.contains(">inf"));
    assert!(html.contains("<svg"));
}
