//! `kaskad inference`: score a CSV file; the output holds every input
//! column as it was, plus `score` and `predict`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kaskad_core::{ColumnKind, Frame};
use kaskad_registry::InferenceRecord;

use crate::cli::InferenceArgs;
use crate::home::{Home, HomeModel, write_atomic};
use crate::memory::peak_rss_bytes;
use kaskad_registry::Servable;

pub fn run(args: &InferenceArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    let HomeModel {
        options,
        catalog,
        record,
        artifact,
    } = home.model(args.model.as_deref())?;
    let fallback = match options.inference.fallback_model.as_str() {
        "" => None,
        reference => {
            let (_, artifact) = catalog.load_model(reference)?;
            Some(Fallback {
                artifact,
                max_missing_share: options.inference.fallback_missing_share,
                range_factor: options.inference.fallback_range_factor,
            })
        }
    };
    let start = Instant::now();
    let (out, rows) = score_file(
        &artifact,
        fallback.as_ref(),
        &args.file,
        args.out.clone(),
        &home,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let model = format!("{}@{}", record.name, record.version);
    catalog.record_inference(&InferenceRecord {
        at: String::new(),
        model: model.clone(),
        input_path: args.file.clone(),
        output_path: out.clone(),
        rows,
        seconds,
        peak_rss_bytes: peak_rss_bytes(),
    })?;
    eprintln!("{model}: scored {rows} rows in {:.1} ms", seconds * 1e3);
    outln!("{}", out.display())?;
    Ok(ExitCode::SUCCESS)
}

/// `reason_1` … `reason_3`: the columns that raised the score most.
pub(crate) const REASON_COLUMNS: usize = 3;

/// Reads a CSV of applications with the column kinds of `columns` (a
/// model's inputs); a column it needs and the file lacks is an error
/// naming both.
pub fn read_applications(columns: &[(String, ColumnKind)], file: &Path) -> anyhow::Result<Frame> {
    let reader = fs_err::File::open(file)?;
    let frame = kaskad_core::read_csv_reader(std::io::BufReader::new(reader), file, Some(columns))?;
    let missing: Vec<&str> = columns
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| frame.column(n).is_none())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{}: the model needs columns that the file lacks: {}",
            file.display(),
            missing.join(", ")
        );
    }
    Ok(frame)
}

/// The model that scores the rows the main model should not judge alone.
pub struct Fallback {
    pub artifact: Servable,
    pub max_missing_share: f64,
    pub range_factor: f64,
}

/// Scores `file` with `artifact` (unusual rows with `fallback`, flagged in
/// a `fallback` column) and writes the output CSV; returns its path and
/// row count.
pub fn score_file(
    artifact: &Servable,
    fallback: Option<&Fallback>,
    file: &Path,
    out: Option<PathBuf>,
    home: &Home,
) -> anyhow::Result<(PathBuf, usize)> {
    let frame = read_applications(artifact.input_columns(), file)?;
    let mut scores = artifact
        .score(&frame)
        .with_context(|| format!("scoring {}", file.display()))?;
    let mut reasons = artifact
        .explain(&frame, REASON_COLUMNS)
        .with_context(|| format!("explaining {}", file.display()))?;
    let name_of = |a: &Servable| format!("{}@{}", a.name(), a.version());
    let mut scored_by: Vec<&Servable> = vec![artifact; frame.n_rows()];
    let unusual = match fallback {
        Some(f) => artifact.unusual_rows(&frame, f.max_missing_share, f.range_factor),
        None => Vec::new(),
    };
    if let Some(f) = fallback.filter(|_| unusual.iter().any(Option::is_some)) {
        let context = || {
            format!(
                "scoring {} with the fallback {}",
                file.display(),
                name_of(&f.artifact)
            )
        };
        let fallback_scores = f.artifact.score(&frame).with_context(context)?;
        let mut fallback_reasons = f
            .artifact
            .explain(&frame, REASON_COLUMNS)
            .with_context(context)?;
        for (row, why) in unusual.iter().enumerate() {
            if why.is_some() {
                scores[row] = fallback_scores[row];
                reasons[row] = std::mem::take(&mut fallback_reasons[row]);
                scored_by[row] = &f.artifact;
            }
        }
    }
    // The output repeats each input record byte for byte, so nothing the
    // user sent is reformatted or lost.
    let mut input = csv::Reader::from_path(file).with_context(|| format!("{}", file.display()))?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = input.headers()?.clone();
    header.push_field("score");
    header.push_field("predict");
    for k in 1..=REASON_COLUMNS {
        header.push_field(&format!("reason_{k}"));
    }
    header.push_field("model");
    if fallback.is_some() {
        header.push_field("fallback");
    }
    writer.write_record(&header)?;
    for (row, record) in input.records().enumerate() {
        let mut record = record?;
        anyhow::ensure!(
            row < scores.len(),
            "{}: more records than rows read ({}); is the file changing?",
            file.display(),
            scores.len()
        );
        let (score, model) = (scores[row], scored_by[row]);
        record.push_field(&score.to_string());
        record.push_field(if score >= model.threshold() { "1" } else { "0" });
        for k in 0..REASON_COLUMNS {
            record.push_field(reasons[row].get(k).map_or("", |r| r.column.as_str()));
        }
        record.push_field(&name_of(model));
        if fallback.is_some() {
            record.push_field(unusual[row].as_deref().unwrap_or(""));
        }
        writer.write_record(&record)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    let out = match out {
        Some(path) => path,
        None => {
            let stem = file
                .file_stem()
                .map_or("input".into(), |s| s.to_string_lossy().into_owned());
            home.predictions_dir().join(format!(
                "{stem}.{}-{}.scored.csv",
                artifact.name(),
                artifact.version()
            ))
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    write_atomic(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok((out, scores.len()))
}
