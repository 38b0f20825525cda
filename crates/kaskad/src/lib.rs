//! The kaskad binary's library: the command line and the pipeline that wires
//! the stages together.
//!
//! Each stage lives in its own crate (`kaskad-collect`, `kaskad-analyze`,
//! `kaskad-prepare`, `kaskad-train`, `kaskad-validate`, `kaskad-registry`,
//! `kaskad-report`); this crate owns the *home* (the folder holding
//! `kaskad.toml`, `kaskad.db`, `raw/`, `models/`, `reports/`), the order in
//! which stages run in `update`, and the commands a user types.

pub mod cli;
mod commands;
mod home;
mod memory;
mod meta_model;
mod pipeline;
mod progress;

use std::process::ExitCode;

pub use home::Home;

/// Runs one command; `Ok` carries the exit code the command chose.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::Init(args) => commands::init::run(&args),
        Command::Update(args) => commands::update::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Inference(args) => commands::inference::run(&args),
        Command::Summary(args) => commands::summary::run(&args),
        Command::Batches(args) => commands::listing::batches(&args),
        Command::Searches(args) => commands::listing::searches(&args),
        Command::Models(cli::ModelsArgs {
            action: Some(cli::ModelsCommand::Export(args)),
            ..
        }) => commands::export::run(&args),
        Command::Models(cli::ModelsArgs {
            action: Some(cli::ModelsCommand::Explain(args)),
            ..
        }) => commands::explain::run(&args),
        Command::Models(cli::ModelsArgs {
            action: Some(cli::ModelsCommand::Import(args)),
            ..
        }) => commands::import::run(&args),
        Command::Models(cli::ModelsArgs {
            action: Some(cli::ModelsCommand::Quantize(args)),
            ..
        }) => commands::quantize::run(&args),
        Command::Models(args) => {
            let home = args
                .home
                .ok_or_else(|| anyhow::anyhow!("kaskad models needs --home (or KASKAD_HOME)"))?;
            commands::listing::models(&cli::ListArgs {
                home: cli::HomeArgs { home },
                json: args.json,
            })
        }
        Command::Demo(args) => commands::demo::run(&args),
        Command::Bench(cli::BenchArgs {
            action: Some(cli::BenchCommand::Train(args)),
            ..
        }) => commands::bench::train(&args),
        Command::Bench(args) if args.single => commands::bench::single(&args),
        Command::Bench(args) => commands::bench::variants(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Keys(cli::KeysCommand::Create(args)) => commands::keys::create(&args),
        Command::Keys(cli::KeysCommand::List(args)) => commands::keys::list(&args),
        Command::Keys(cli::KeysCommand::Revoke(args)) => commands::keys::revoke(&args),
        Command::Cascades(cli::CascadesCommand::Apply(args)) => commands::cascades::apply(&args),
        Command::Cascades(cli::CascadesCommand::List(args)) => commands::cascades::list(&args),
        Command::Cascades(cli::CascadesCommand::Run(args)) => commands::cascades::run(&args),
    }
}
