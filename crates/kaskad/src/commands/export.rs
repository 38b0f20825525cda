//! `kaskad models export`: a registered version as one ONNX graph
//! (preprocessing and model), for runtimes outside kaskad.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::ExportArgs;
use crate::home::Home;

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let catalog = home.catalog()?;
    let (record, servable) = catalog.load_model(&args.model)?;
    let Some(artifact) = servable.trained() else {
        // An imported version exports as the graph it was imported from.
        let source = record
            .artifact_path
            .with_file_name(kaskad_registry::ONNX_FILE);
        fs_err::copy(&source, &args.out)
            .with_context(|| format!("exporting {}@{}", record.name, record.version))?;
        eprintln!(
            "{}@{} (imported ONNX) written as it was imported",
            record.name, record.version
        );
        outln!("{}", args.out.display())?;
        return Ok(ExitCode::SUCCESS);
    };
    kaskad_onnx::export_to(artifact, &args.out)
        .with_context(|| format!("exporting {}@{}", record.name, record.version))?;
    eprintln!(
        "{}@{} ({}) as ONNX: one input per raw column ({} columns; categories as strings, \"\" for missing), output `{}` [N, 2]",
        record.name,
        record.version,
        record.algorithm,
        artifact.input_columns().len(),
        kaskad_onnx::OUTPUT
    );
    outln!("{}", args.out.display())?;
    Ok(ExitCode::SUCCESS)
}
