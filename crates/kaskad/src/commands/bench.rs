//! `kaskad bench`: a registered model's scoring variants timed on a file,
//! and `kaskad bench train`: one family fitted and scored on given files,
//! timed in-process, for scripts that put kaskad beside its peers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kaskad_core::config::Options;
use kaskad_core::{Frame, binary_target, read_csv};
use kaskad_prepare::Preprocessor;
use kaskad_train::fit;
use kaskad_validate::{evaluate, roc_auc};
use serde_json::json;

use crate::cli::{BenchArgs, BenchTrainArgs};
use crate::home::Home;
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

/// Scoring speed and quality of every variant of a registered model; today
/// the one variant is the model as trained (`native`: f64 preprocessing,
/// the family's own precision). One thread, batches of `--batch` rows,
/// repeated over the file until a second has passed.
pub fn variants(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let (Some(home), Some(file)) = (&args.home, &args.file) else {
        anyhow::bail!("kaskad bench needs --home and --file (or use `kaskad bench train`)");
    };
    let home = Home::new(home);
    let options = home.options()?;
    let catalog = home.catalog()?;
    let reference = args
        .model
        .clone()
        .unwrap_or_else(|| options.data.name.clone());
    let (record, artifact) = catalog.load_model(&reference)?;
    // Read as `inference` reads: the model's own column kinds.
    let reader = std::io::BufReader::new(fs_err::File::open(file)?);
    let mut frame = kaskad_core::read_csv_reader(reader, file, Some(artifact.input_columns()))?;
    let target = &options.data.target;
    let column = frame
        .remove(target)
        .with_context(|| format!("{}: no target column `{target}`", file.display()))?;
    let labels = binary_target(&column, &options.data.positive)
        .with_context(|| format!("{}: target `{target}`", file.display()))?;
    let batch = args.batch.max(1);
    let rows = frame.n_rows();
    anyhow::ensure!(rows > 0, "{}: no rows to score", file.display());
    let batches: Vec<Frame> = (0..rows)
        .step_by(batch)
        .map(|start| frame.take(&(start..(start + batch).min(rows)).collect::<Vec<_>>()))
        .collect();
    let mut scores = Vec::with_capacity(rows);
    for part in &batches {
        scores.extend(artifact.score(part)?);
    }
    let metrics = evaluate(&labels, &scores, artifact.threshold());
    let (mut passes, start) = (0usize, Instant::now());
    while passes == 0 || start.elapsed().as_secs_f64() < 1.0 {
        for part in &batches {
            std::hint::black_box(artifact.score(part)?);
        }
        passes += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let bytes = fs_err::metadata(&record.artifact_path)?.len();
    let report = json!([{
        "model": format!("{}@{}", record.name, record.version),
        "algorithm": record.algorithm,
        "variant": "native",
        "batch": batch,
        "ms_per_batch": seconds * 1e3 / (passes * batches.len()) as f64,
        "rows_per_s": (passes * rows) as f64 / seconds,
        "bytes": bytes,
        "auc": metrics.auc,
        "precision": metrics.precision,
        "recall": metrics.recall,
        "f1": metrics.f1,
    }]);
    if args.json {
        println!("{report}");
    } else {
        println!(
            "variant  batch  ms/batch     rows/s      bytes     AUC  precision  recall      F1"
        );
        for v in report.as_array().into_iter().flatten() {
            println!(
                "{:<7} {:>6} {:>9.4} {:>10.0} {:>10} {:>7.4} {:>10.4} {:>7.4} {:>7.4}",
                v["variant"].as_str().unwrap_or(""),
                v["batch"],
                v["ms_per_batch"].as_f64().unwrap_or(f64::NAN),
                v["rows_per_s"].as_f64().unwrap_or(f64::NAN),
                v["bytes"],
                v["auc"].as_f64().unwrap_or(f64::NAN),
                v["precision"].as_f64().unwrap_or(f64::NAN),
                v["recall"].as_f64().unwrap_or(f64::NAN),
                v["f1"].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
