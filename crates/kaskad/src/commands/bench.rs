//! `kaskad bench train`: one family fitted and scored on given files, timed
//! in-process, for scripts that put kaskad beside its peers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use kaskad_core::config::Options;
use kaskad_core::{Frame, binary_target, read_csv};
use kaskad_prepare::Preprocessor;
use kaskad_train::{Hyperparams, fit, grid};
use kaskad_validate::roc_auc;
use serde_json::{Value, json};

use crate::cli::BenchTrainArgs;
use crate::memory::peak_rss_bytes;

pub fn train(args: &BenchTrainArgs) -> anyhow::Result<ExitCode> {
    let options = Options::default();
    let params = bench_params(&args.algo, &args.params, &options)?;
    let (train_x, train_y) = labelled(&args.train, &args.target, &args.positive)?;
    let (test_x, test_y) = labelled(&args.test, &args.target, &args.positive)?;

    let start = Instant::now();
    let preprocessor = Preprocessor::fit(&train_x, &options.prepare)?;
    let x = preprocessor.transform(&train_x)?;
    let prepare_seconds = start.elapsed().as_secs_f64();
    let model = fit(&x, &train_y, &params, options.train.seed)?;
    let fit_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let scores = model.predict_proba(&preprocessor.transform(&test_x)?);
    let predict_seconds = start.elapsed().as_secs_f64();

    let report = json!({
        "algorithm": params.algorithm(),
        "params": params,
        "train_rows": train_x.n_rows(),
        "test_rows": test_x.n_rows(),
        "features": preprocessor.feature_names().len(),
        "fit_seconds": fit_seconds,
        "prepare_seconds": prepare_seconds,
        "predict_seconds": predict_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "auc": roc_auc(&test_y, &scores),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}: fit {fit_seconds:.3} s on {} rows, predict {predict_seconds:.3} s on {} rows, AUC {:.4}, peak RSS {:.1} MiB",
            crate::pipeline::describe_params(&params),
            train_x.n_rows(),
            test_x.n_rows(),
            report["auc"].as_f64().unwrap_or(f64::NAN),
            peak_rss_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Features and 0/1 labels of a CSV file.
fn labelled(path: &Path, target: &str, positive: &[String]) -> anyhow::Result<(Frame, Vec<u8>)> {
    let mut frame = read_csv(path)?;
    let column = frame
        .remove(target)
        .with_context(|| format!("{}: no target column `{target}`", path.display()))?;
    let labels = binary_target(&column, positive)
        .with_context(|| format!("{}: target `{target}`", path.display()))?;
    Ok((frame, labels))
}

/// The pipeline's first grid point for `algorithm`, with `key=value` overrides.
fn bench_params(
    algorithm: &str,
    overrides: &[String],
    options: &Options,
) -> anyhow::Result<Hyperparams> {
    let mut all = options.train.clone();
    all.algorithms = vec![algorithm.to_string()];
    let Some(base) = grid(&all).into_iter().next() else {
        bail!("unknown algorithm `{algorithm}`");
    };
    let mut value = serde_json::to_value(&base)?;
    let object = value
        .as_object_mut()
        .context("hyperparameters serialize to an object")?;
    for item in overrides {
        let Some((key, raw)) = item.split_once('=') else {
            bail!("--param {item}: expected KEY=VALUE");
        };
        if key == "algorithm" || !object.contains_key(key) {
            let known: Vec<&str> = object
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "algorithm")
                .collect();
            bail!(
                "--param {item}: `{algorithm}` has no parameter `{key}` (known: {})",
                known.join(", ")
            );
        }
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
        object.insert(key.to_string(), parsed);
    }
    serde_json::from_value(value).with_context(|| format!("--param values for `{algorithm}`"))
}
