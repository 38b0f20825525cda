//! Weight of evidence on germancredit.csv against optbinning.
//!
//! The reference numbers come from optbinning 1.0.0 given kaskad's bins as
//! fixed user splits (`woe_optbinning_reference.py` next to this file):
//!
//! ```text
//! python3 -m venv /tmp/ob && /tmp/ob/bin/pip install optbinning pandas
//! /tmp/ob/bin/python crates/kaskad-prepare/tests/woe_optbinning_reference.py
//! ```
//!
//! optbinning does not smooth, kaskad adds 0.5 to both classes of a bin;
//! so the test checks that optbinning's WoE is the unsmoothed formula of
//! its counts (same sign and shares as kaskad), that kaskad's is the
//! smoothed formula of the same counts, and that the two stay close.

use std::path::Path;

use kaskad_core::config::{Encoding, PrepareOptions};
use kaskad_core::{Frame, binary_target, read_csv};
use kaskad_prepare::{EncoderView, Preprocessor};

/// Goods (non-events) and bads (events) of germancredit.csv.
const GOODS: f64 = 700.0;
const BADS: f64 = 300.0;

/// Per bin: optbinning's non-event count, event count and WoE.
type Reference = &'static [(f64, f64, f64)];

const DURATION: (&[f64], Reference) = (
    &[9.0, 15.0, 24.0, 30.0, 36.0],
    &[
        (119.0, 24.0, 0.75377180237638),
        (223.0, 65.0, 0.38548664117727816),
        (230.0, 109.0, -0.10056643369315188),
        (38.0, 19.0, -0.15415067982725839),
        (48.0, 38.0, -0.6136830092056986),
        (42.0, 45.0, -0.9162907318741553),
    ],
);
const DURATION_IV: f64 = 0.23013119042128663;

const CREDIT_AMOUNT: (&[f64], Reference) = (
    &[3590.0, 4716.0, 7174.0],
    &[
        (515.0, 186.0, 0.17112236656333124),
        (70.0, 29.0, 0.03390155167568132),
        (62.0, 38.0, -0.3577496350684978),
        (53.0, 47.0, -0.7271535485451405),
    ],
);

const AGE: (&[f64], Reference) = (
    &[23.0, 26.0, 30.0, 33.0],
    &[
        (63.0, 42.0, -0.4418327522790393),
        (83.0, 52.0, -0.37970097117203305),
        (117.0, 54.0, -0.07410797215372178),
        (72.0, 33.0, -0.06713930283762848),
        (365.0, 119.0, 0.2734760000837584),
    ],
);

const PURPOSE: (&[&str], Reference) = (
    &[
        "radio/television",
        "car (new)",
        "furniture/equipment",
        "car (used)",
        "business",
        "education",
    ],
    &[
        (218.0, 62.0, 0.41006281735679395),
        (145.0, 89.0, -0.359200487698769),
        (123.0, 58.0, -0.09555651556120559),
        (86.0, 17.0, 0.773836091810088),
        (63.0, 34.0, -0.23052365861183233),
        (28.0, 22.0, -0.6061358035703155),
    ],
);

fn germancredit() -> (Frame, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/germancredit.csv");
    let mut frame = read_csv(&path).unwrap();
    let target = frame.remove("creditability").unwrap();
    let y = binary_target(&target, &["bad".to_string()]).unwrap();
    (frame, y)
}

fn check(column: &str, ours: &[f64], reference: Reference) {
    assert_eq!(ours.len(), reference.len(), "{column}");
    for (&woe, &(goods, bads, optbinning)) in ours.iter().zip(reference) {
        let unsmoothed = ((goods / GOODS) / (bads / BADS)).ln();
        assert!((optbinning - unsmoothed).abs() < 1e-9, "{column}");
        let smoothed = (((goods + 0.5) / GOODS) / ((bads + 0.5) / BADS)).ln();
        assert!((woe - smoothed).abs() < 1e-12, "{column}: {woe} {smoothed}");
        // The smoothing moves a WoE by about 0.5 / (the bin's smaller count).
        assert!(
            (woe - optbinning).abs() < 0.5 / goods.min(bads) + 1e-3,
            "{column}: {woe} {optbinning}"
        );
    }
}

#[test]
fn woe_agrees_with_optbinning_on_germancredit() {
    let (frame, y) = germancredit();
    assert_eq!(y.iter().filter(|&&b| b == 1).count() as f64, BADS);
    let pre =
        Preprocessor::fit(&frame, Encoding::Woe, Some(&y), &PrepareOptions::default()).unwrap();
    for (name, view) in pre.encoders() {
        match (name, view) {
            ("duration_in_month", EncoderView::WoeNumeric { edges, woe, .. }) => {
                assert_eq!(edges, DURATION.0);
                check(name, woe, DURATION.1);
            }
            ("credit_amount", EncoderView::WoeNumeric { edges, woe, .. }) => {
                assert_eq!(edges, CREDIT_AMOUNT.0);
                check(name, woe, CREDIT_AMOUNT.1);
            }
            ("age_in_years", EncoderView::WoeNumeric { edges, woe, .. }) => {
                assert_eq!(edges, AGE.0);
                check(name, woe, AGE.1);
            }
            ("purpose", EncoderView::WoeCategorical { levels, woe, .. }) => {
                assert_eq!(levels, PURPOSE.0);
                check(name, woe, PURPOSE.1);
            }
            _ => {}
        }
    }
    let ivs = pre.information_values();
    let duration = ivs.iter().find(|(c, _)| *c == "duration_in_month").unwrap();
    assert!((duration.1 - DURATION_IV).abs() < 0.005, "{}", duration.1);
    // The strongest predictor, as every scorecard of this data set finds.
    assert_eq!(ivs[0].0, "status_of_existing_checking_account");
    assert!((ivs[0].1 - 0.666).abs() < 0.01, "{}", ivs[0].1);
}
