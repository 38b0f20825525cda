//! `kaskad update`: pending batches through every stage. The last stdout
//! line is `true` when every stage of every processed batch passed.

use std::process::ExitCode;

use crate::cli::UpdateArgs;
use crate::home::Home;
use crate::pipeline::Pipeline;
use crate::progress;

pub fn run(args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    match update(args) {
        Ok(true) => {
            outln!("true")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => {
            outln!("false")?;
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            outln!("false")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn update(args: &UpdateArgs) -> anyhow::Result<bool> {
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    let mut catalog = home.catalog()?;
    let mut pipeline = Pipeline {
        home: &home,
        options: &options,
        catalog: &mut catalog,
    };
    let bar = progress::bar(0, "update");
    let mut processed = 0;
    loop {
        bar.set_message("collecting");
        let Some(outcome) = pipeline.process_next()? else {
            if processed == 0 {
                eprintln!("nothing pending: every batch of the source is processed");
            }
            bar.finish_and_clear();
            return Ok(true);
        };
        processed += 1;
        bar.inc(1);
        let label = outcome
            .batch_id
            .map_or("collect".to_string(), |id| format!("batch {id}"));
        for stage in &outcome.stages {
            bar.suspend(|| {
                eprintln!(
                    "{label}: {} {} ({:.2} s): {}",
                    stage.stage,
                    if stage.ok { "ok" } else { "FAILED" },
                    stage.seconds,
                    stage.detail
                )
            });
        }
        if let Some(failure) = outcome.failure {
            bar.finish_and_clear();
            eprintln!(
                "{label}: stage {} failed: {}",
                failure.stage, failure.reason
            );
            return Ok(false);
        }
        if let Some(champion) = outcome.champion {
            bar.suspend(|| eprintln!("{label}: champion is now {champion}"));
        }
        if !args.all {
            bar.finish_and_clear();
            return Ok(true);
        }
    }
}
