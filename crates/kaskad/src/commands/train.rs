//! `kaskad train`: one candidate of a chosen family and hyperparameters,
//! fitted on every processed batch and registered; its reference is the
//! last stdout line.

use std::process::ExitCode;

use crate::cli::TrainArgs;
use crate::home::Home;
use crate::pipeline::{Pipeline, describe_params, params_with_overrides};

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    let params = params_with_overrides(&args.algo, &args.params, &options.train)?;
    let mut catalog = home.catalog()?;
    let mut pipeline = Pipeline {
        home: &home,
        options: &options,
        catalog: &mut catalog,
    };
    eprintln!("training {}", describe_params(&params));
    let (reference, detail) = pipeline.train_one(params, args.promote)?;
    eprintln!("{detail}");
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}
