//! `kaskad train`: one candidate of a chosen family and hyperparameters,
//! fitted on every processed batch and registered; its reference is the
//! last stdout line. `--param prune=S` cuts the share S of an MLP's
//! smallest weights and fine-tunes (from `--from REF`'s weights, or from an
//! MLP fitted first); `--param teacher=REF` trains an MLP student on REF's
//! scores (distillation).

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::TrainArgs;
use crate::home::Home;
use crate::pipeline::{Pipeline, Recipe, describe_params, params_with_overrides, with_overrides};

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    let mut catalog = home.catalog()?;
    // `prune` and `teacher` say how to train, not what: they are not
    // hyperparameters of the family.
    let (how, what): (Vec<&String>, Vec<&String>) = args
        .params
        .iter()
        .partition(|p| p.starts_with("prune=") || p.starts_with("teacher="));
    let what: Vec<String> = what.into_iter().cloned().collect();
    let setting = |key: &str| {
        how.iter()
            .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let from = args
        .from
        .as_ref()
        .map(|reference| {
            let (record, servable) = catalog.load_model(reference)?;
            let reference = format!("{}@{}", record.name, record.version);
            let artifact = servable.trained().cloned().with_context(|| {
                format!("--from {reference}: an imported ONNX model has no weights to start from")
            })?;
            anyhow::Ok((reference, artifact))
        })
        .transpose()?;
    let params = match &from {
        Some((reference, artifact)) => {
            anyhow::ensure!(
                artifact.params.algorithm() == args.algo,
                "--from {reference} is {}, not {}",
                artifact.params.algorithm(),
                args.algo
            );
            with_overrides(&artifact.params, &what)?
        }
        None => params_with_overrides(&args.algo, &what, &options.train)?,
    };
    anyhow::ensure!(
        how.is_empty() || args.algo == "mlp",
        "--param prune and --param teacher train an mlp, not {}",
        args.algo
    );
    let recipe = match (setting("prune"), setting("teacher")) {
        (Some(_), Some(_)) => anyhow::bail!("--param prune and --param teacher: choose one"),
        (Some(share), None) => {
            let share: f64 = share
                .parse()
                .ok()
                .filter(|s| (0.0..1.0).contains(s))
                .with_context(|| format!("--param prune={share}: expected a share in [0, 1)"))?;
            Recipe::Prune {
                share,
                from: from.map(|(reference, artifact)| (reference, Box::new(artifact))),
            }
        }
        (None, Some(teacher)) => {
            anyhow::ensure!(from.is_none(), "--from goes with --param prune");
            let (record, servable) = catalog.load_model(teacher)?;
            Recipe::Distill {
                teacher: (format!("{}@{}", record.name, record.version), servable),
            }
        }
        (None, None) => {
            anyhow::ensure!(from.is_none(), "--from goes with --param prune");
            Recipe::Plain
        }
    };
    let mut pipeline = Pipeline {
        home: &home,
        options: &options,
        catalog: &mut catalog,
    };
    eprintln!("training {}", describe_params(&params));
    let (reference, detail) = pipeline.train_one(params, args.promote, &recipe)?;
    eprintln!("{detail}");
    outln!("{reference}")?;
    Ok(ExitCode::SUCCESS)
}
