//! `kaskad cascades apply | list | run`: the cascade catalog of a home,
//! compiled and scored by the same code as `kaskad serve`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use kaskad_cascade::RunOptions;
use kaskad_registry::Catalog;
use kaskad_serve::{
    CascadeScorer, ModelStore, cascade_answer, compile_cascade, parse_cascade_reference,
};
use serde_json::Value;

use crate::cli::{CascadesApplyArgs, CascadesRunArgs, ListArgs};
use crate::home::Home;

/// How long a resolved alias is trusted; a command is over well before.
const ALIAS_TTL: Duration = Duration::from_secs(1);

fn models(catalog: &Arc<Mutex<Catalog>>) -> Arc<ModelStore> {
    Arc::new(ModelStore::new(Arc::clone(catalog), ALIAS_TTL))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs_err::read_to_string(path)?;
    // serde's message carries the line and column.
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

pub fn apply(args: &CascadesApplyArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let definition = read_json(&args.file)?;
    let catalog = Arc::new(Mutex::new(home.catalog()?));
    let compiled = compile_cascade(&definition, &*models(&catalog));
    let cascade = match compiled {
        Ok(cascade) => cascade,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}: {problem}", args.file.display());
            }
            eprintln!(
                "{} error{}; nothing stored",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(1));
        }
    };
    let name = cascade.name();
    let version = catalog
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .put_cascade(name, &definition)?;
    eprintln!(
        "stored cascade {name} version {version} ({} modules)",
        cascade.modules().len()
    );
    outln!("{name}@{version}")?;
    Ok(ExitCode::SUCCESS)
}

pub fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let cascades = home.catalog()?.cascades()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&cascades)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:<32} {:<20}  output", "cascade", "created")?;
    for c in &cascades {
        let outputs: Vec<&str> = c
            .definition
            .get("output")
            .and_then(Value::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        outln!(
            "{:<32} {:<20}  {}",
            format!("{}@{}", c.name, c.version),
            c.created_at,
            outputs.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: &CascadesRunArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let (name, version) = parse_cascade_reference(&args.name).map_err(|e| anyhow!(e))?;
    let request: Value = serde_json::from_str(&args.input).context("--input is not valid JSON")?;
    let catalog = home.catalog()?;
    let record = match version {
        Some(version) => catalog.cascade_version(name, version)?,
        None => catalog.cascade(name)?,
    }
    .ok_or_else(|| anyhow!("no cascade `{}` in {}", args.name, home.root.display()))?;
    let label = format!("{}@{}", record.name, record.version);
    let catalog = Arc::new(Mutex::new(catalog));
    let models = models(&catalog);
    let cascade = compile_cascade(&record.definition, &*models).map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow!(
            "cascade {label} no longer compiles against the registry: {}",
            problems.join("; ")
        )
    })?;
    let scorer = CascadeScorer::new(models, args.remote_key.clone())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(cascade.run(&request, &scorer, RunOptions::default()));
    match result {
        Ok(result) => {
            let answer = cascade_answer(&label, &result, true);
            outln!("{}", serde_json::to_string_pretty(&answer)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{label}: {error}");
            Ok(ExitCode::from(1))
        }
    }
}
