//! `kaskad models import`: an ONNX model made elsewhere, registered as a
//! version that `inference`, the server and cascades score like any other.

use std::process::ExitCode;

use anyhow::Context;
use kaskad_graph::{ImportSpec, ImportedModel};
use kaskad_registry::{
    IMPORTED_FORMAT, IMPORTED_FORMAT_VERSION, ImportedRecord, NewVersion, ONNX_FILE,
    write_artifact_with,
};
use serde_json::json;

use crate::cli::ImportArgs;
use crate::home::Home;

/// The algorithm imported versions are listed with.
const ALGORITHM: &str = "onnx";

pub fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    anyhow::ensure!(
        args.name != options.data.name,
        "`{}` is the configured model, which `kaskad update` trains and promotes; import under another name",
        args.name
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold {} is not a probability",
        args.threshold
    );
    let bytes = fs_err::read(&args.onnx)?;
    let spec = ImportSpec {
        features: args.features.clone(),
        output: args.output.clone(),
    };
    // Compiled now, so an operator kaskad cannot evaluate is refused here.
    let model = ImportedModel::new(&bytes, &spec)
        .with_context(|| format!("{}: cannot import", args.onnx.display()))?;

    let mut catalog = home.catalog()?;
    let version = catalog.next_version(&args.name)?;
    let source = args
        .onnx
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let record = ImportedRecord {
        format: IMPORTED_FORMAT.into(),
        format_version: IMPORTED_FORMAT_VERSION,
        name: args.name.clone(),
        version,
        threshold: args.threshold,
        source: source.clone(),
        spec: spec.clone(),
    };
    let dir = home.models_dir().join(&args.name).join(version.to_string());
    let path = write_artifact_with(&dir, &record, &[(ONNX_FILE, &bytes)])?;
    let first = catalog.resolve(&format!("{}@champion", args.name)).is_err();
    let aliases: &[&str] = if args.promote || first {
        &["champion"]
    } else {
        &[]
    };
    catalog.register(
        version,
        &NewVersion {
            name: args.name.clone(),
            algorithm: ALGORITHM.into(),
            params: json!({
                "source": source,
                "graph": model.description(),
                "inputs": model.input_columns().len(),
                "output": model.output(),
            }),
            metrics: json!({}),
            cv_auc: None,
            trained_on: Vec::new(),
            artifact_path: path,
            run_id: None,
            train_seconds: 0.0,
            peak_rss_bytes: 0,
        },
        aliases,
    )?;
    eprintln!(
        "{}@{version}: {} ({} input columns){}",
        args.name,
        model.description(),
        model.input_columns().len(),
        if aliases.is_empty() { "" } else { "; champion" }
    );
    outln!("{}@{version}", args.name)?;
    Ok(ExitCode::SUCCESS)
}
