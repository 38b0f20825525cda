//! `kaskad models quantize`: a registered LR or MLP version in INT8,
//! checked on the rows the version was validated on and registered as a new
//! version derived from it; refused when it loses more than the allowed
//! ROC-AUC.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kaskad_registry::{ModelArtifact, NewVersion};
use kaskad_validate::{evaluate, roc_auc};
use serde_json::json;

use crate::cli::QuantizeArgs;
use crate::home::Home;
use crate::memory::peak_rss_bytes;
use crate::pipeline::Pipeline;

/// The `model_variant` of versions this command registers.
pub const INT8: &str = "int8";

pub fn run(args: &QuantizeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.int8,
        "say which precision: --int8 (the one kaskad quantizes to)"
    );
    anyhow::ensure!(
        args.max_auc_loss >= 0.0,
        "--max-auc-loss {}: expected a loss ≥ 0",
        args.max_auc_loss
    );
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    let mut catalog = home.catalog()?;
    let (record, servable) = catalog.load_model(&args.model)?;
    let reference = format!("{}@{}", record.name, record.version);
    let Some(artifact) = servable.trained() else {
        anyhow::bail!(
            "{reference} is an imported ONNX model: kaskad quantizes the models it trained (lr, mlp)"
        );
    };
    let start = Instant::now();
    let model = artifact
        .model
        .quantized_int8()
        .with_context(|| format!("{reference} ({})", record.algorithm))?;
    let quantize_seconds = start.elapsed().as_secs_f64();
    let quantized = ModelArtifact {
        model,
        ..artifact.clone()
    };
    let (rows, labels) = Pipeline {
        home: &home,
        options: &options,
        catalog: &mut catalog,
    }
    .holdout_of(&record.trained_on)
    .with_context(|| format!("rebuilding the hold-out {reference} was validated on"))?;
    let original = artifact.score(&rows)?;
    let scores = quantized.score(&rows)?;
    let check = gate(&labels, &original, &scores, args.max_auc_loss)
        .with_context(|| format!("INT8 {reference} refused"))?;

    let version = catalog.next_version(&record.name)?;
    let dir = home
        .models_dir()
        .join(&record.name)
        .join(version.to_string());
    let artifact = ModelArtifact {
        version,
        ..quantized
    };
    let path = kaskad_registry::write_artifact(&dir, &artifact)?;
    let mut metrics = json!(evaluate(&labels, &scores, artifact.threshold));
    for key in ["variant", "cv_auc", "mode"] {
        if let Some(value) = record.metrics.get(key) {
            metrics[key] = value.clone();
        }
    }
    metrics["model_variant"] = json!(INT8);
    metrics["derived_from"] = json!(reference);
    metrics["auc_loss"] = json!(check.auc_loss);
    metrics["score_change_mean"] = json!(check.mean_change);
    metrics["score_change_max"] = json!(check.max_change);
    metrics["validated_on"] = json!(format!(
        "the hold-out of {reference}: the newest {} rows of batches {:?}",
        labels.len(),
        record.trained_on
    ));
    let new = NewVersion {
        name: record.name.clone(),
        algorithm: record.algorithm.clone(),
        params: record.params.clone(),
        metrics,
        cv_auc: None,
        trained_on: record.trained_on.clone(),
        artifact_path: path,
        run_id: None,
        train_seconds: quantize_seconds,
        peak_rss_bytes: peak_rss_bytes(),
    };
    catalog.register(version, &new, &[])?;
    eprintln!(
        "{}@{version}: {reference} in INT8; on its {} hold-out rows AUC {:.4} → {:.4} (loss {:.4}, allowed {}), |Δscore| mean {:.4}, max {:.4}",
        record.name,
        labels.len(),
        check.original_auc,
        check.original_auc - check.auc_loss,
        check.auc_loss,
        args.max_auc_loss,
        check.mean_change,
        check.max_change,
    );
    outln!("{}@{version}", record.name)?;
    Ok(ExitCode::SUCCESS)
}

/// How a variant's scores compare with the original's on the same rows.
#[derive(Debug)]
pub struct GateCheck {
    pub original_auc: f64,
    pub auc_loss: f64,
    pub mean_change: f64,
    pub max_change: f64,
}

/// Refuses a variant whose ROC-AUC on `labels` is more than `max_loss`
/// below the original's.
pub fn gate(
    labels: &[u8],
    original: &[f64],
    variant: &[f64],
    max_loss: f64,
) -> anyhow::Result<GateCheck> {
    anyhow::ensure!(!labels.is_empty(), "no hold-out rows to check on");
    let original_auc = roc_auc(labels, original);
    let variant_auc = roc_auc(labels, variant);
    let auc_loss = original_auc - variant_auc;
    anyhow::ensure!(
        auc_loss <= max_loss,
        "ROC-AUC {variant_auc:.4} against the original's {original_auc:.4} on {} hold-out rows: \
         a loss of {auc_loss:.4}, more than the {max_loss} allowed (--max-auc-loss)",
        labels.len()
    );
    let changes = original.iter().zip(variant).map(|(a, b)| (a - b).abs());
    Ok(GateCheck {
        original_auc,
        auc_loss,
        mean_change: changes.clone().sum::<f64>() / labels.len() as f64,
        max_change: changes.fold(0.0, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use kaskad_prepare::Matrix;
    use kaskad_train::{LogisticRegression, Model};

    use super::*;

    /// A regression whose one large coefficient sits on a feature that is
    /// constant but for one row: quantized with a single scale, the small
    /// coefficient that carries the ranking rounds to zero.
    #[test]
    fn the_gate_refuses_a_variant_that_loses_the_ranking() {
        let rows = 200;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for r in 0..rows {
            let signal = r as f64 / rows as f64 - 0.5;
            data.extend([if r == 7 { 1.0 } else { 0.0 }, signal]);
            labels.push(u8::from(r % 3 != 0 && r > rows / 2));
        }
        let x = Matrix {
            rows,
            cols: 2,
            data,
        };
        let model = Model::Lr(LogisticRegression {
            coefficients: vec![1000.0, 1.0],
            intercept: 0.0,
            feature_means: vec![0.0, 0.0],
        });
        let original = model.predict_proba(&x);
        let quantized = model.quantized_int8().unwrap().predict_proba(&x);
        let error = gate(&labels, &original, &quantized, 0.005)
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than the 0.005 allowed"), "{error}");
        let same = gate(&labels, &original, &original, 0.005).unwrap();
        assert_eq!((same.auc_loss, same.max_change), (0.0, 0.0));
    }
}
