//! Stage 5 of kaskad: judging a model's scores.
//!
//! `kaskad-validate` owns the discrimination and calibration metrics a credit
//! validator expects ([`evaluate`]: AUC, Gini, KS, log-loss, Brier and the
//! thresholded precision/recall/F1), the calibration table ([`calibration`]),
//! group fairness of decisions ([`fairness`]: demographic parity and
//! equalized odds differences), and the time-ordered splits ([`holdout`], [`time_series_folds`]) that keep
//! the future out of training. It is pure computation on slices: no I/O, no
//! model types, so every stage can call it.
//!
//! ```
//! let m = kaskad_validate::evaluate(&[0, 1, 0, 1], &[0.1, 0.9, 0.4, 0.6], 0.5);
//! assert_eq!(m.auc, 1.0);
//! assert_eq!(m.gini, 1.0);
//! ```

mod fairness;
mod metrics;
mod split;

pub use fairness::{Fairness, GroupRates, fairness};
pub use metrics::{CalibrationBin, Metrics, calibration, evaluate, roc_auc};
pub use split::{holdout, time_series_folds};
