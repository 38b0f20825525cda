//! MLP reason codes on bundled data: the integrated gradients of a network
//! fitted on germancredit.csv add up to its log-odds minus the baseline's.

use std::path::Path;

use kaskad_core::config::{Encoding, PrepareOptions};
use kaskad_core::{binary_target, read_csv};
use kaskad_prepare::{Matrix, Preprocessor};
use kaskad_train::{Hyperparams, Model, fit};

#[test]
fn attributions_add_up_to_the_logit_gap_on_germancredit() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/germancredit.csv");
    let mut frame = read_csv(&path).unwrap();
    let target = frame.remove("creditability").unwrap();
    let y = binary_target(&target, &["bad".to_string()]).unwrap();
    let preprocessor =
        Preprocessor::fit(&frame, Encoding::OneHot, None, &PrepareOptions::default()).unwrap();
    let x = preprocessor.transform(&frame).unwrap();
    let params = Hyperparams::Mlp {
        hidden: vec![64, 32],
        learning_rate: 0.001,
        alpha: 1e-4,
        max_epochs: 30,
    };
    let model = fit(&x, &y, &params, 1).unwrap();
    let Model::Mlp(network) = &model else {
        panic!("an mlp")
    };
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let baseline = Matrix {
        rows: 1,
        cols: x.cols,
        data: network.baseline.clone(),
    };
    let from = logit(model.predict_proba(&baseline)[0]);
    let contributions = model.contributions(&x);
    let mut spread = 0.0f64;
    for (r, p) in model.predict_proba(&x).into_iter().enumerate() {
        let gap = logit(p) - from;
        let sum: f64 = contributions.row(r).iter().sum();
        assert!((sum - gap).abs() < 1e-3, "row {r}: {sum} vs {gap}");
        spread = spread.max(gap.abs());
    }
    // Rows differ from the mean applicant: the check is not 0 = 0.
    assert!(spread > 0.5, "{spread}");
}
