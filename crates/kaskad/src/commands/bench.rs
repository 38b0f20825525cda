//! `kaskad bench`: a registered model's scoring variants timed on a file,
//! and `kaskad bench train`: one family fitted and scored on given files,
//! timed in-process, for scripts that put kaskad beside its peers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kaskad_core::config::Options;
use kaskad_core::{Column, Frame, binary_target, read_csv};
use kaskad_prepare::{Cell, Preprocessor};
use kaskad_registry::{Catalog, RegistryError, Servable, VersionRecord};
use kaskad_train::fit;
use kaskad_validate::{evaluate, roc_auc};
use serde_json::json;

use crate::cli::{BenchArgs, BenchTrainArgs};
use crate::home::{Home, HomeModel};
use crate::memory::peak_rss_bytes;
use crate::pipeline::{choose_variant, params_with_overrides};

pub fn train(args: &BenchTrainArgs) -> anyhow::Result<ExitCode> {
    let options = Options::default();
    let params = params_with_overrides(&args.algo, &args.params, &options.train)?;
    let (train_x, train_y) = labelled(&args.train, &args.target, &args.positive)?;

    // The variant search sees the training rows only, and is timed apart:
    // the peers' figures are one fit of one configuration.
    let start = Instant::now();
    let (variant, variant_cv) = match args.variant {
        Some(variant) => (variant, Vec::new()),
        None => choose_variant(&train_x, &train_y, &params, &options),
    };
    let variant_search_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let preprocessor = Preprocessor::fit(&train_x, variant, Some(&train_y), &options.prepare)?;
    let x = preprocessor.transform(&train_x)?;
    let prepare_seconds = start.elapsed().as_secs_f64();
    let model = fit(&x, &train_y, &params, options.train.seed)?;
    let fit_seconds = start.elapsed().as_secs_f64();
    // Only the fitted preprocessing and model are needed from here on:
    // the training rows and matrix go before the test file is read.
    let train_rows = train_x.n_rows();
    drop((train_x, x));
    let (test_x, test_y) = labelled(&args.test, &args.target, &args.positive)?;

    let start = Instant::now();
    let scores = model.predict_proba(&preprocessor.transform(&test_x)?);
    let predict_seconds = start.elapsed().as_secs_f64();

    let report = json!({
        "algorithm": params.algorithm(),
        "params": params,
        "variant": variant,
        "variant_cv_auc": variant_cv
            .iter()
            .map(|(v, auc)| (v.to_string(), json!(auc)))
            .collect::<serde_json::Map<_, _>>(),
        "variant_search_seconds": variant_search_seconds,
        "train_rows": train_rows,
        "test_rows": test_x.n_rows(),
        "features": preprocessor.feature_names().len(),
        "fit_seconds": fit_seconds,
        "prepare_seconds": prepare_seconds,
        "predict_seconds": predict_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "auc": roc_auc(&test_y, &scores),
    });
    if args.json {
        outln!("{report}")?;
    } else {
        outln!(
            "{} on {variant}: fit {fit_seconds:.3} s on {} rows, predict {predict_seconds:.3} s on {} rows, AUC {:.4}, peak RSS {:.1} MiB",
            crate::pipeline::describe_params(&params),
            train_rows,
            test_x.n_rows(),
            report["auc"].as_f64().unwrap_or(f64::NAN),
            peak_rss_bytes() as f64 / (1024.0 * 1024.0)
        )?;
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

/// Scoring speed and quality of every variant of a registered model: the
/// version itself and every version derived from it (INT8, pruned,
/// distilled; see `model_variant` and `derived_from` in a version's
/// metrics), in that order. One thread, batches of `--batch` rows, each
/// variant repeated over the file until a second has passed: the whole
/// scoring (raw columns in) and the model alone (on the prepared features).
pub fn variants(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let Labelled {
        catalog,
        file,
        record,
        artifact,
        frame,
        labels,
    } = labelled_file(args)?;
    let batch = args.batch.max(1);
    let rows = frame.n_rows();
    anyhow::ensure!(rows > 0, "{}: no rows to score", file.display());
    let batches: Vec<Frame> = (0..rows)
        .step_by(batch)
        .map(|start| frame.take(&(start..(start + batch).min(rows)).collect::<Vec<_>>()))
        .collect();
    let mut family = vec![(record, artifact)];
    for version in derived_versions(&catalog, &family[0].0)? {
        let artifact = kaskad_registry::Servable::load(&version.artifact_path)?;
        family.push((version, artifact));
    }
    let mut report = Vec::new();
    let mut baseline: Option<Vec<f64>> = None;
    for (record, artifact) in &family {
        let mut scores = Vec::with_capacity(rows);
        let mut prepared = Vec::with_capacity(batches.len());
        let trained = artifact.trained();
        for part in &batches {
            scores.extend(artifact.score(part)?);
            if let Some(trained) = trained {
                prepared.push(trained.preprocessor.transform(part)?);
            }
        }
        let metrics = evaluate(&labels, &scores, artifact.threshold());
        let whole = repeat_for_a_second(|| {
            for part in &batches {
                std::hint::black_box(artifact.score(part)?);
            }
            Ok(())
        })?;
        // Imported ONNX models have no model part apart from their graph.
        let model_only = trained
            .map(|trained| {
                repeat_for_a_second(|| {
                    for x in &prepared {
                        std::hint::black_box(trained.model.predict_proba(x));
                    }
                    Ok(())
                })
            })
            .transpose()?;
        let changes: Vec<f64> = baseline
            .as_ref()
            .map(|b| b.iter().zip(&scores).map(|(a, b)| (a - b).abs()).collect())
            .unwrap_or_default();
        baseline.get_or_insert(scores);
        let dtype = trained.map_or("onnx", |t| t.model.precision());
        let variant = record
            .metrics
            .get("model_variant")
            .and_then(|v| v.as_str())
            .unwrap_or(dtype);
        report.push(json!({
            "model": format!("{}@{}", record.name, record.version),
            "algorithm": record.algorithm,
            "variant": variant,
            "dtype": dtype,
            "derived_from": record.metrics.get("derived_from"),
            "batch": batch,
            "threshold": artifact.threshold(),
            "ms_per_batch": whole * 1e3 / batches.len() as f64,
            "rows_per_s": rows as f64 / whole,
            "model_ms_per_batch": model_only.map(|s| s * 1e3 / batches.len() as f64),
            "model_rows_per_s": model_only.map(|s| rows as f64 / s),
            "bytes": version_bytes(&record.artifact_path)?,
            "model_bytes": trained.map(|t| serde_json::to_vec(&t.model)).transpose()?.map(|b| b.len()),
            "auc": metrics.auc,
            "precision": metrics.precision,
            "recall": metrics.recall,
            "f1": metrics.f1,
            "score_change_mean": (!changes.is_empty()).then(|| changes.iter().sum::<f64>() / rows as f64),
            "score_change_max": (!changes.is_empty()).then(|| changes.iter().copied().fold(0.0, f64::max)),
        }));
    }
    if args.json {
        outln!("{}", json!(report))?;
    } else {
        outln!(
            "model              variant    batch  ms/batch      rows/s  model rows/s      bytes  model bytes     AUC  precision  recall      F1  max |Δscore|"
        )?;
        for v in &report {
            let number = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
            outln!(
                "{:<18} {:<9} {:>6} {:>9.4} {:>11.0} {:>13.0} {:>10} {:>12} {:>7.4} {:>10.4} {:>7.4} {:>7.4} {:>13}",
                v["model"].as_str().unwrap_or(""),
                v["variant"].as_str().unwrap_or(""),
                batch,
                number("ms_per_batch"),
                number("rows_per_s"),
                number("model_rows_per_s"),
                v["bytes"].as_u64().unwrap_or(0),
                v["model_bytes"].as_u64().unwrap_or(0),
                number("auc"),
                number("precision"),
                number("recall"),
                number("f1"),
                v["score_change_max"]
                    .as_f64()
                    .map_or("—".to_string(), |c| format!("{c:.4}")),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Versions derived from `root`, directly or through another derived
/// version, oldest first.
fn derived_versions(
    catalog: &kaskad_registry::Catalog,
    root: &kaskad_registry::VersionRecord,
) -> anyhow::Result<Vec<kaskad_registry::VersionRecord>> {
    let mut members = vec![format!("{}@{}", root.name, root.version)];
    let mut derived = Vec::new();
    let mut rest = catalog.versions(Some(&root.name))?;
    loop {
        let (found, others): (Vec<_>, Vec<_>) = rest.into_iter().partition(|v| {
            v.metrics
                .get("derived_from")
                .and_then(|d| d.as_str())
                .is_some_and(|d| members.iter().any(|m| m == d))
        });
        if found.is_empty() {
            break;
        }
        members.extend(found.iter().map(|v| format!("{}@{}", v.name, v.version)));
        derived.extend(found);
        rest = others;
    }
    derived.sort_by_key(|v| v.version);
    Ok(derived)
}

/// Seconds per call of `pass`, run until a second has passed (at least once).
fn repeat_for_a_second(mut pass: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let (mut passes, start) = (0usize, Instant::now());
    while passes == 0 || start.elapsed().as_secs_f64() < 1.0 {
        pass()?;
        passes += 1;
    }
    Ok(start.elapsed().as_secs_f64() / passes as f64)
}

/// Bytes of a version's folder: `model.json`, and the graph beside it for
/// an imported model.
fn version_bytes(artifact: &Path) -> anyhow::Result<u64> {
    let folder = artifact.parent().unwrap_or(Path::new("."));
    let mut total = 0;
    for entry in fs_err::read_dir(folder)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// A registered model and labelled rows to score with it.
struct Labelled<'a> {
    catalog: Catalog,
    file: &'a Path,
    record: VersionRecord,
    artifact: Servable,
    frame: Frame,
    labels: Vec<u8>,
}

/// The model `--model` (or the champion) of `--home`, and the rows of
/// `--file` read as `inference` reads them, with their 0/1 labels.
fn labelled_file(args: &BenchArgs) -> anyhow::Result<Labelled<'_>> {
    let (Some(home), Some(file)) = (&args.home, &args.file) else {
        anyhow::bail!("kaskad bench needs --home and --file (or use `kaskad bench train`)");
    };
    let HomeModel {
        options,
        catalog,
        record,
        artifact,
    } = Home::new(home).model(args.model.as_deref())?;
    // Read as `inference` reads: the model's own column kinds.
    let reader = std::io::BufReader::new(fs_err::File::open(file)?);
    let mut frame = kaskad_core::read_csv_reader(reader, file, Some(artifact.input_columns()))?;
    let target = &options.data.target;
    let column = frame
        .remove(target)
        .with_context(|| format!("{}: no target column `{target}`", file.display()))?;
    let labels = binary_target(&column, &options.data.positive)
        .with_context(|| format!("{}: target `{target}`", file.display()))?;
    Ok(Labelled {
        catalog,
        file,
        record,
        artifact,
        frame,
        labels,
    })
}

/// Applications timed one by one (the first 1,000 rows of the file).
const SINGLE_ROWS: usize = 1_000;

/// `kaskad bench --single`: the latency of scoring one application in
/// process, per path: the compiled plan alone (what the server runs), the
/// plan with reason codes, and, for a model kaskad trained, a one-row frame
/// through the artifact (preprocessing into a matrix, then the model: the
/// path before the plan), with and without reasons. One thread.
pub fn single(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let Labelled {
        record,
        artifact: servable,
        frame,
        ..
    } = labelled_file(args)?;
    let rows = frame.n_rows().min(SINGLE_ROWS);
    anyhow::ensure!(rows > 0, "no rows to score");
    let columns: Vec<&Column> = servable
        .input_columns()
        .iter()
        .map(|(name, _)| frame.column(name).context("a column the model reads"))
        .collect::<anyhow::Result<_>>()?;
    let cells: Vec<Vec<Cell<'_>>> = (0..rows)
        .map(|i| columns.iter().map(|c| Cell::of(c, i)).collect())
        .collect();
    let reasons = crate::commands::inference::REASON_COLUMNS;
    let mut paths: Vec<(&str, f64)> = vec![
        (
            "plan",
            per_call(&cells, |row| servable.score_row(row).map(drop))?,
        ),
        (
            "plan+reasons",
            per_call(&cells, |row| {
                servable.score_row(row)?;
                servable.explain_row(row, reasons).map(drop)
            })?,
        ),
    ];
    if let Some(artifact) = servable.trained() {
        let frames: Vec<Frame> = (0..rows).map(|i| frame.take(&[i])).collect();
        paths.push(("frame", per_call(&frames, |f| artifact.score(f).map(drop))?));
        paths.push((
            "frame+reasons",
            per_call(&frames, |f| {
                artifact.score(f)?;
                artifact.explain(f, reasons).map(drop)
            })?,
        ));
    }
    let model = format!("{}@{}", record.name, record.version);
    let report: Vec<serde_json::Value> = paths
        .iter()
        .map(|(path, seconds)| {
            json!({
                "model": model,
                "algorithm": record.algorithm,
                "path": path,
                "us_per_application": seconds * 1e6,
                "applications_per_s": 1.0 / seconds,
            })
        })
        .collect();
    if args.json {
        outln!("{}", serde_json::Value::Array(report))?;
    } else {
        outln!(
            "{model} ({}), one application per call, {rows} applications:",
            record.algorithm
        )?;
        outln!("path            µs/application  applications/s")?;
        for (path, seconds) in &paths {
            outln!("{path:<15} {:>14.3} {:>15.0}", seconds * 1e6, 1.0 / seconds)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Seconds per call of `score` over `items` (see [`repeat_for_a_second`]).
fn per_call<T>(
    items: &[T],
    mut score: impl FnMut(&T) -> Result<(), RegistryError>,
) -> anyhow::Result<f64> {
    let pass = repeat_for_a_second(|| {
        for item in items {
            score(std::hint::black_box(item))?;
        }
        Ok(())
    })?;
    Ok(pass / items.len() as f64)
}
