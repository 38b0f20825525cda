//! `kaskad bench train`: one family fitted and scored on given files, timed
//! in-process, for scripts that put kaskad beside its peers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kaskad_core::config::Options;
use kaskad_core::{Frame, binary_target, read_csv};
use kaskad_prepare::Preprocessor;
use kaskad_train::fit;
use kaskad_validate::roc_auc;
use serde_json::json;

use crate::cli::BenchTrainArgs;
use crate::memory::peak_rss_bytes;
use crate::pipeline::params_with_overrides;

pub fn train(args: &BenchTrainArgs) -> anyhow::Result<ExitCode> {
    let options = Options::default();
    let params = params_with_overrides(&args.algo, &args.params, &options.train)?;
    let (train_x, train_y) = labelled(&args.train, &args.target, &args.positive)?;
    let (test_x, test_y) = labelled(&args.test, &args.target, &args.positive)?;

    let start = Instant::now();
    let preprocessor = Preprocessor::fit(&train_x, args.variant, Some(&train_y), &options.prepare)?;
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
        "variant": args.variant,
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
