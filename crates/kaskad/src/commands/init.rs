//! `kaskad init`: a new home on a data set.

use std::process::ExitCode;

use anyhow::Context;
use kaskad_collect::RedisStream;
use kaskad_core::config::Options;

use crate::cli::InitArgs;
use crate::home::{Home, write_atomic};
use crate::pipeline::check_dataset;

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    if home.config_path().exists() && !args.force {
        anyhow::bail!(
            "{} already exists; pass --force to replace the configuration (the catalog and data are kept)",
            home.config_path().display()
        );
    }
    let dataset = if RedisStream::parse(&args.dataset.to_string_lossy()).is_some() {
        args.dataset.clone()
    } else {
        std::path::absolute(&args.dataset).with_context(|| format!("{}", args.dataset.display()))?
    };
    let meta = check_dataset(
        &dataset,
        &args.target,
        &args.positive,
        &args.drop,
        args.time.as_deref(),
    )?;
    let mut options = Options::default();
    options.data.name = args.name.clone();
    options.data.source = dataset;
    options.data.target = args.target.clone();
    options.data.positive = args.positive.clone();
    options.data.time = args.time.clone().unwrap_or_default();
    options.data.drop = args.drop.clone();
    options.collect.batch_rows = args.batch_rows;
    options
        .check()
        .map_err(|m| anyhow::anyhow!("invalid option: {m}"))?;
    home.create_dirs()?;
    write_atomic(&home.config_path(), options.to_commented_toml().as_bytes())
        .with_context(|| format!("cannot write {}", home.config_path().display()))?;
    home.catalog()?;
    eprintln!(
        "initialized {}: {} rows × {} columns, about {} batches of {} rows",
        home.root.display(),
        meta.rows,
        meta.columns.len(),
        meta.rows.div_ceil(args.batch_rows),
        args.batch_rows
    );
    outln!("{}", home.config_path().display())?;
    Ok(ExitCode::SUCCESS)
}
