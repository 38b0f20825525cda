//! `kaskad models export`: a registered version as one ONNX graph
//! (preprocessing and model), for runtimes outside kaskad.

use std::process::ExitCode;

use anyhow::Context;
use kaskad_registry::ModelArtifact;

use crate::cli::ExportArgs;
use crate::home::Home;

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let catalog = home.catalog()?;
    let reference = if args.model.contains('@') {
        args.model.clone()
    } else {
        format!("{}@champion", args.model)
    };
    let record = catalog.resolve(&reference)?;
    let artifact = ModelArtifact::load(&record.artifact_path)?;
    kaskad_onnx::export_to(&artifact, &args.out)
        .with_context(|| format!("exporting {}@{}", record.name, record.version))?;
    eprintln!(
        "{}@{} ({}) as ONNX: one input per raw column ({} columns; categories as strings, \"\" for missing), output `{}` [N, 2]",
        record.name,
        record.version,
        record.algorithm,
        artifact.input_columns().len(),
        kaskad_onnx::OUTPUT
    );
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
