//! The command line: every command and flag, with its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kaskad_core::config::Encoding;

#[derive(Debug, Parser)]
#[command(
    name = "kaskad",
    version,
    about = "MLOps engine for credit scoring: collect → analyze → prepare → train → validate → serve"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a home: kaskad.toml (every option commented), the catalog, folders.
    Init(InitArgs),
    /// Take the next pending batch (or all of them) through every stage.
    Update(UpdateArgs),
    /// Train one candidate on the stored batches and register it; prints NAME@VERSION.
    Train(TrainArgs),
    /// Score a CSV file with a registered model; prints the path of the output.
    Inference(InferenceArgs),
    /// Write the summary report (self-contained HTML); prints its path.
    Summary(HomeArgs),
    /// List collected batches with their meta-parameters (`--rejected`: the
    /// inputs collect set aside, with their errors).
    Batches(BatchesArgs),
    /// List registered model versions with their metrics.
    Models(ModelsArgs),
    /// List hyperparameter searches: every candidate's meta-model estimate,
    /// whether it was evaluated, and its CV AUC.
    Searches(ListArgs),
    /// The whole flow on the bundled credit data, end to end.
    Demo(DemoArgs),
    /// Measure a registered model's scoring variants on a file (`kaskad bench
    /// --home H --model REF --file F`), or one family's fit (`bench train`).
    Bench(BenchArgs),
    /// Serve the HTTP API (scoring, registry, Open Inference Protocol, metrics);
    /// prints the bound address, then runs until SIGTERM or ctrl-c.
    Serve(ServeArgs),
    /// API keys for `kaskad serve`.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Cascades of models: store (versioned), list and run them.
    #[command(subcommand)]
    Cascades(CascadesCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest a request may take, in milliseconds (slower ones get 503).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// API key sent to remote cascade modules (another `kaskad serve`).
    #[arg(long, env = "KASKAD_REMOTE_KEY", hide_env_values = true)]
    pub remote_key: Option<String>,
    /// Request-log entries queued for the log's writer before new ones are
    /// dropped (and counted in `kaskad_request_log_dropped_total`).
    #[arg(long, default_value_t = 10_000)]
    pub log_queue: usize,
    /// The longest the request log's current segment file waits before it
    /// is imported into the catalog's `requests` table, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub log_import_seconds: f64,
    /// A pause in the traffic this long (seconds) imports the current
    /// segment sooner.
    #[arg(long, default_value_t = 1.0)]
    pub log_import_pause_seconds: f64,
    /// Delete request-log entries older than this many days from the
    /// catalog (their outcomes stay); 0 keeps every entry.
    #[arg(long, default_value_t = 0.0)]
    pub log_retention_days: f64,
}

#[derive(Debug, Subcommand)]
pub enum CascadesCommand {
    /// Compile a cascade (a JSON file) against the registry and store it as
    /// the next version of its name; prints `name@version` as the last line.
    /// Errors are printed with their JSON paths, and nothing is stored.
    Apply(CascadesApplyArgs),
    /// The latest version of every cascade.
    List(ListArgs),
    /// Run a cascade in this process on one request; prints the result as
    /// JSON (output, every module's run, the branches taken).
    Run(CascadesRunArgs),
}

#[derive(Debug, Args)]
pub struct CascadesApplyArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// The cascade, as JSON (its `name` names it).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CascadesRunArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// NAME (its latest version) or NAME@VERSION.
    pub name: String,
    /// The request: a JSON object keyed by data source, e.g.
    /// '{"applicant": {"Income": 129}}'.
    #[arg(long)]
    pub input: String,
    /// API key sent to remote modules (another `kaskad serve`).
    #[arg(long, env = "KASKAD_REMOTE_KEY", hide_env_values = true)]
    pub remote_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key; prints it once, as the last line (only its hash is stored).
    Create(KeysCreateArgs),
    /// Every key: id, role, when it was made and, if so, revoked.
    List(ListArgs),
    /// Revoke key ID (see `keys list`): it stops working, in a running
    /// server within its alias time to live (1 s).
    Revoke(KeysRevokeArgs),
}

#[derive(Debug, Args)]
pub struct KeysRevokeArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// The key's id, as `keys create` and `keys list` show it.
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct KeysCreateArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// admin: everything; scorer: score and read; viewer: read only.
    #[arg(long, value_parser = ["admin", "scorer", "viewer"])]
    pub role: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub action: Option<BenchCommand>,
    /// The kaskad home (folder with kaskad.toml).
    #[arg(long, env = "KASKAD_HOME")]
    pub home: Option<PathBuf>,
    /// NAME, NAME@VERSION or NAME@ALIAS; default: the configured model's champion.
    #[arg(long)]
    pub model: Option<String>,
    /// Labelled CSV rows to score (the target column gives the quality figures).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Rows per scoring call.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Time single applications instead of batches: one row per call, in
    /// process, through the compiled plan (score alone, and with reason
    /// codes) and through a one-row frame.
    #[arg(long, conflicts_with = "batch")]
    pub single: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Fit one family on TRAIN, score TEST: fit and predict time, peak memory, AUC.
    Train(BenchTrainArgs),
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Training rows (CSV).
    #[arg(long)]
    pub train: PathBuf,
    /// Rows scored after fitting (CSV, same columns).
    #[arg(long)]
    pub test: PathBuf,
    /// Target column.
    #[arg(long)]
    pub target: String,
    /// Target value that means default; repeat for several.
    #[arg(long, required = true)]
    pub positive: Vec<String>,
    /// Model family: lr, tree, knn (and any family the build knows).
    #[arg(long)]
    pub algo: String,
    /// Override a hyperparameter, e.g. `--param c=0.1`; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Preprocessing variant: onehot, onehot_plain, ordinal or woe. Without
    /// it, the pipeline's default variants are searched as `update` searches
    /// them (time-series CV), on the TRAIN rows only.
    #[arg(long, value_parser = parse_variant)]
    pub variant: Option<Encoding>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The kaskad home (folder with kaskad.toml).
    #[arg(long, env = "KASKAD_HOME")]
    pub home: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// CSV or Parquet file split into batches, a directory new files arrive
    /// in, or a Redis stream `redis://host:port/db?stream=NAME`.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Target column.
    #[arg(long)]
    pub target: String,
    /// Target value that means default (bad = 1); repeat for several.
    #[arg(long, required = true)]
    pub positive: Vec<String>,
    /// Registered model name.
    #[arg(long, default_value = "default_risk")]
    pub name: String,
    /// Column that orders the stream (e.g. issue_month); default: file order.
    #[arg(long)]
    pub time: Option<String>,
    /// Rows per batch when a file is split into a stream.
    #[arg(long, default_value_t = 1000)]
    pub batch_rows: usize,
    /// Columns to drop on arrival (leakage, free text), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Replace an existing kaskad.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// Process every pending batch, not just the next one.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// Model family: lr, tree, knn, gbdt or mlp.
    #[arg(long)]
    pub algo: String,
    /// Set a hyperparameter, e.g. `--param c=0.1`; repeatable. Unset ones
    /// take the first value of the configured grid. Two say how to train an
    /// mlp: `prune=0.5` cuts that share of each layer's smallest weights and
    /// fine-tunes; `teacher=NAME@VERSION` trains on that model's scores
    /// (distillation).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// With `--param prune`: start from this version's weights and
    /// preprocessing (the new version is registered as derived from it).
    #[arg(long, value_name = "REF")]
    pub from: Option<String>,
    /// Make the new version the champion.
    #[arg(long)]
    pub promote: bool,
}

#[derive(Debug, Args)]
pub struct InferenceArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// CSV file of applications (raw columns, as collected).
    #[arg(long)]
    pub file: PathBuf,
    /// NAME, NAME@VERSION or NAME@ALIAS; default: the champion of the configured name.
    #[arg(long)]
    pub model: Option<String>,
    /// Where to write the scored CSV; default: HOME/predictions/.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BatchesArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// List the rejected inputs instead: files left in place and stream
    /// entries copied to `<stream>:rejected`, each with its error.
    #[arg(long)]
    pub rejected: bool,
}

/// `kaskad models` lists versions; its subcommands act on one.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsCommand>,
    /// The kaskad home (folder with kaskad.toml).
    #[arg(long, env = "KASKAD_HOME")]
    pub home: Option<PathBuf>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Write a version (preprocessing + model) as one ONNX graph.
    Export(ExportArgs),
    /// What a version learned (LR scorecard points, tree structure, GBDT
    /// splits) and, with `--input`, why it scored one application as it did
    /// (reason codes; for kNN, its nearest kept training rows).
    Explain(ExplainArgs),
    /// Register an external ONNX model (scikit-learn via skl2onnx, LightGBM
    /// via onnxmltools, …) as the next version of NAME; prints NAME@VERSION.
    Import(ImportArgs),
    /// Quantize an LR or MLP version to INT8 and register it as a new
    /// version (derived from it) when it keeps its ROC-AUC; prints NAME@VERSION.
    Quantize(QuantizeArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// The ONNX model file.
    #[arg(long)]
    pub onnx: PathBuf,
    /// Name to register it under (not the configured model's name, which
    /// `update` trains and promotes).
    #[arg(long)]
    pub name: String,
    /// The columns of the graph's single 2-D input, in order, comma
    /// separated. Without it, every graph input is one column, named as it.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// The graph output that holds the probability of default (column 1 of
    /// [N, 2], class 1 of a ZipMap, or a single score); needed only when
    /// several outputs could be it.
    #[arg(long)]
    pub output: Option<String>,
    /// Scores at or above this predict default.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Make the new version the champion of NAME (the first version of a
    /// name always is).
    #[arg(long)]
    pub promote: bool,
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// NAME, NAME@VERSION or NAME@ALIAS of an `lr` or `mlp` version.
    #[arg(long)]
    pub model: String,
    /// INT8 weights (one scale per output channel) and activations (one
    /// scale per row, computed at scoring time).
    #[arg(long)]
    pub int8: bool,
    /// Largest ROC-AUC the variant may lose against the original, on the
    /// hold-out rows the original was validated on.
    #[arg(long, default_value_t = 0.005)]
    pub max_auc_loss: f64,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// NAME, NAME@VERSION or NAME@ALIAS.
    #[arg(long)]
    pub model: String,
    /// Scorecard points at `--odds` good to bad.
    #[arg(long, default_value_t = 600.0)]
    pub base: f64,
    /// Points that double the odds of good.
    #[arg(long, default_value_t = 20.0)]
    pub pdo: f64,
    /// Odds (good to bad) that score `--base` points.
    #[arg(long, default_value_t = 50.0)]
    pub odds: f64,
    /// A CSV of applications (the columns `inference` reads): also explain
    /// the score of the row chosen by `--row`.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Which data row of `--input` to explain, counting from 1.
    #[arg(long, default_value_t = 1, requires = "input")]
    pub row: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// NAME, NAME@VERSION or NAME@ALIAS.
    #[arg(long)]
    pub model: String,
    /// Output format; `onnx` is the one there is.
    #[arg(long, default_value = "onnx", value_parser = ["onnx"])]
    pub format: String,
    /// File to write.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Home to create (must not exist yet, or be empty).
    #[arg(long, env = "KASKAD_HOME", default_value = "kaskad-demo")]
    pub home: PathBuf,
}

/// A `prepare.variants` value, spelled as in `kaskad.toml`.
fn parse_variant(text: &str) -> Result<Encoding, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?}: expected onehot, onehot_plain, ordinal or woe"))
}
