//! `kaskad demo`: the whole flow on the bundled credit data. 75 % of the
//! rows are streamed through `update` in batches; the newest 25 % are scored
//! with `inference` and the champion's AUC on them is reported.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{DemoArgs, HomeArgs, InferenceArgs, InitArgs, UpdateArgs};
use crate::home::{Home, write_atomic};

/// credit_data from the modeldata R package (MIT); see data/README.md.
const CREDIT_DATA: &str = include_str!("../../../../data/credit_data.csv");

/// Splits a CSV text into the first `share` of its rows and the rest.
pub fn split_csv(text: &str, share: f64) -> (String, String) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let cut = (rows.len() as f64 * share).floor() as usize;
    let join = |part: &[&str]| format!("{header}\n{}\n", part.join("\n"));
    (join(&rows[..cut]), join(&rows[cut..]))
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home);
    if home.config_path().exists() {
        anyhow::bail!(
            "{} already holds a kaskad home; pass another --home or remove it",
            home.root.display()
        );
    }
    let data_dir = home.root.join("demo-data");
    fs_err::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let (stream, newest) = split_csv(CREDIT_DATA, 0.75);
    let stream_path = data_dir.join("credit_data.stream.csv");
    let newest_path = data_dir.join("credit_data.newest.csv");
    write_atomic(&stream_path, stream.as_bytes())?;
    write_atomic(&newest_path, newest.as_bytes())?;
    let home_args = || HomeArgs {
        home: home.root.clone(),
    };
    eprintln!(
        "== init on {} (75 % of credit_data, streamed in batches of 1000 rows)",
        stream_path.display()
    );
    super::init::run(&InitArgs {
        home: home_args(),
        dataset: stream_path,
        target: "Status".into(),
        positive: vec!["bad".into()],
        name: "default_risk".into(),
        time: None,
        batch_rows: 1000,
        drop: Vec::new(),
        force: false,
    })?;
    eprintln!("== update --all");
    if super::update::run(&UpdateArgs {
        home: home_args(),
        all: true,
    })? != ExitCode::SUCCESS
    {
        anyhow::bail!("the update failed; see the stage and reason above");
    }
    eprintln!(
        "== inference on the newest 25 % ({})",
        newest_path.display()
    );
    super::inference::run(&InferenceArgs {
        home: home_args(),
        file: newest_path.clone(),
        model: None,
        out: None,
    })?;
    let auc = scored_auc(&home, &newest_path)?;
    eprintln!("champion ROC-AUC on the newest 25 % (never seen in training): {auc:.4}");
    eprintln!("== summary");
    super::summary::run(&home_args())?;
    Ok(ExitCode::SUCCESS)
}

/// AUC of the latest inference output on a file that still has its target.
fn scored_auc(home: &Home, input: &Path) -> anyhow::Result<f64> {
    let catalog = home.catalog()?;
    let record = catalog
        .inferences()?
        .into_iter()
        .rev()
        .find(|r| r.input_path == input)
        .context("no inference recorded")?;
    let mut reader = csv::Reader::from_path(&record.output_path)?;
    let headers = reader.headers()?.clone();
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no `{name}` column"))
    };
    let (status, score) = (position("Status")?, position("score")?);
    let mut y = Vec::new();
    let mut s = Vec::new();
    for record in reader.records() {
        let record = record?;
        y.push(u8::from(&record[status] == "bad"));
        s.push(record[score].parse::<f64>()?);
    }
    Ok(kaskad_validate::roc_auc(&y, &s))
}
