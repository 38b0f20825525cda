//! `kaskad update`: pending batches through every stage. The last stdout
//! line is `true` when every stage of every processed batch passed, and
//! `false` when one failed or the update found nothing but rejected input.

use std::process::ExitCode;

use kaskad_registry::Catalog;

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
    let mut rejected = Vec::new();
    loop {
        bar.set_message("collecting");
        let next = pipeline.process_next()?;
        for input in next.iter().flat_map(|o| &o.rejected) {
            bar.suspend(|| eprintln!("rejected {}: {}", input.origin, input.error));
        }
        rejected.extend(
            next.iter()
                .flat_map(|o| &o.rejected)
                .map(|r| r.origin.clone()),
        );
        let Some(outcome) = next.filter(|o| o.batch_id.is_some() || o.failure.is_some()) else {
            bar.finish_and_clear();
            return nothing_left(pipeline.catalog, processed, &rejected);
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

/// The source has no new batch left. An update that found nothing but
/// rejected input fails, so that a scheduled job notices; rejected input
/// beside a processed batch was reported and the update succeeds.
fn nothing_left(catalog: &Catalog, processed: usize, rejected: &[String]) -> anyhow::Result<bool> {
    if processed > 0 {
        return Ok(true);
    }
    if !rejected.is_empty() {
        eprintln!(
            "error: no new batch; rejected {} (recorded: `kaskad batches --rejected`)",
            rejected.join(", ")
        );
        return Ok(false);
    }
    let on_record = catalog.rejected_inputs()?.len();
    if on_record == 0 {
        eprintln!("nothing pending: every batch of the source is processed");
    } else {
        eprintln!(
            "nothing pending: every batch of the source is processed \
             ({on_record} rejected input(s) on record: `kaskad batches --rejected`)"
        );
    }
    Ok(true)
}
