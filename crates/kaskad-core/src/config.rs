//! The configuration of every stage, as written in `kaskad.toml`.
//!
//! [`Options`] is what the file says (every field defaulted, unknown keys
//! rejected); [`Options::check`] validates value ranges so that stages can
//! assume a sane configuration. [`Options::to_commented_toml`] writes the file
//! `kaskad init` creates, with every option explained.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The whole `kaskad.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    pub data: DataOptions,
    pub collect: CollectOptions,
    pub quality: QualityOptions,
    pub drift: DriftOptions,
    pub prepare: PrepareOptions,
    pub train: TrainOptions,
    pub validate: ValidateOptions,
    pub inference: InferenceOptions,
}

/// What the data is: where it comes from, the target, the time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataOptions {
    /// Registered model name.
    pub name: String,
    /// A CSV/Parquet file split into batches, a directory new files arrive
    /// in, or a Redis stream (`redis://host:port/db?stream=NAME`).
    pub source: PathBuf,
    pub target: String,
    /// Target values that mean default (bad = 1).
    pub positive: Vec<String>,
    /// Column that orders the stream; empty for file order.
    pub time: String,
    /// Columns removed on arrival (leakage, free text, identifiers).
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectOptions {
    /// Rows per batch when a file is split into a stream.
    pub batch_rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityOptions {
    /// A batch with fewer rows (after cleaning) fails the analyze stage.
    pub min_rows: usize,
    /// Columns missing above this share warn.
    pub warn_missing_column: f64,
    /// Columns missing above this share are dropped by cleaning.
    pub drop_missing_column: f64,
    /// Rows missing more than this share of their features are dropped.
    pub drop_missing_row: f64,
    /// A batch whose overall missing share exceeds this fails.
    pub fail_missing_cells: f64,
    /// Drop exact duplicate rows.
    pub drop_duplicates: bool,
    /// Share of duplicate rows above which the stage warns.
    pub warn_duplicates: f64,
    /// "clip", "flag" or "none": what to do with numeric outliers.
    pub outliers: String,
    /// Outlier fences at quartiles ± this many IQRs (of the reference data).
    pub outlier_iqr: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftOptions {
    /// PSI above this warns.
    pub psi_warn: f64,
    /// PSI above this is major drift; fails the stage when `fail_on_drift`.
    pub psi_fail: f64,
    /// p-value below which KS / chi-square call a column drifted.
    pub p_value: f64,
    pub fail_on_drift: bool,
    /// Bins for PSI of numeric columns.
    pub bins: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrepareOptions {
    /// "median" or "mean" for numeric imputation.
    pub numeric_impute: String,
    /// Preprocessing variants searched together with the hyperparameters;
    /// each family keeps the variant of its best cross-validated candidate.
    pub variants: Vec<Encoding>,
    /// The single encoding of configurations written before `variants`
    /// existed; read as `variants = [encoding]` by [`PrepareOptions::variants`],
    /// never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Categories rarer than this share are grouped into "other".
    pub min_category_share: f64,
    /// Standardize numeric features.
    pub scale: bool,
    /// Weight of evidence: quantile bins a numeric column is first cut into.
    pub woe_bins: usize,
    /// Weight of evidence: merge adjacent bins until the event rate is monotonic.
    pub woe_monotonic: bool,
}

/// How the columns of a frame become features: one preprocessing variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Numbers imputed and scaled, with a missing indicator where training
    /// saw gaps; one 0/1 feature per category, rare ones pooled into
    /// "other", missing ones their own.
    OneHot,
    /// Numbers imputed and scaled, one 0/1 feature per category seen in
    /// training; no missing indicators, no pooling, a missing category
    /// counted as the most frequent one (scikit-learn's usual pipeline).
    /// Where missingness or rare levels carry no lasting signal, the extra
    /// columns of `onehot` only add variance; the search lets the data say.
    #[serde(rename = "onehot_plain")]
    OneHotPlain,
    /// Numbers imputed and scaled, categories ranked by frequency.
    Ordinal,
    /// Every column binned and replaced by its bin's weight of evidence
    /// (needs the labels at fit time).
    Woe,
}

impl Encoding {
    /// The name used in `kaskad.toml` and in version metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::OneHot => "onehot",
            Encoding::OneHotPlain => "onehot_plain",
            Encoding::Ordinal => "ordinal",
            Encoding::Woe => "woe",
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PrepareOptions {
    /// The variants to search: the legacy `encoding` when it is given
    /// (`check` rejects giving both), else `variants`.
    pub fn variants(&self) -> Vec<Encoding> {
        match self.encoding {
            Some(encoding) => vec![encoding],
            None => self.variants.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    /// Families to train: "lr", "tree", "knn", "gbdt".
    pub algorithms: Vec<String>,
    /// Inverse L2 strengths tried for logistic regression.
    pub lr_c: Vec<f64>,
    pub tree_max_depth: Vec<usize>,
    pub tree_min_samples_leaf: Vec<usize>,
    pub knn_k: Vec<usize>,
    /// kNN keeps at most this many training rows (reservoir sample).
    pub knn_max_rows: usize,
    /// Most boosting rounds; early stopping on the newest rows usually stops sooner.
    pub gbdt_trees: Vec<usize>,
    pub gbdt_learning_rate: Vec<f64>,
    pub gbdt_max_leaves: Vec<usize>,
    pub gbdt_min_samples_leaf: usize,
    pub mlp_hidden: Vec<usize>,
    pub mlp_learning_rate: Vec<f64>,
    pub mlp_alpha: f64,
    pub mlp_max_epochs: usize,
    pub seed: u64,
    pub mode: String,
    /// Most (variant × hyperparameters) candidates a search cross-validates,
    /// in the meta-model's order; 0 = all of them.
    pub search_budget: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateOptions {
    /// Share of the newest rows held out for the final comparison.
    pub holdout: f64,
    /// Time-series CV folds used to choose hyperparameters.
    pub cv_folds: usize,
    /// Decision threshold on the score for `predict`.
    pub threshold: f64,
    /// The candidate must beat the champion's hold-out AUC by at least this.
    pub min_auc_gain: f64,
    /// No candidate is promoted below this hold-out AUC.
    pub min_auc: f64,
    pub retrain_auc_drop: f64,
    pub sensitive: Vec<String>,
    pub max_parity_difference: f64,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            name: "default_risk".into(),
            source: PathBuf::new(),
            target: String::new(),
            positive: Vec::new(),
            time: String::new(),
            drop: Vec::new(),
        }
    }
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self { batch_rows: 1000 }
    }
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self {
            min_rows: 30,
            warn_missing_column: 0.2,
            drop_missing_column: 0.95,
            drop_missing_row: 0.5,
            fail_missing_cells: 0.5,
            drop_duplicates: true,
            warn_duplicates: 0.01,
            outliers: "clip".into(),
            outlier_iqr: 3.0,
        }
    }
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            psi_warn: 0.1,
            psi_fail: 0.25,
            p_value: 0.01,
            fail_on_drift: false,
            bins: 10,
        }
    }
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            numeric_impute: "median".into(),
            variants: vec![Encoding::OneHot, Encoding::OneHotPlain],
            encoding: None,
            min_category_share: 0.005,
            scale: true,
            woe_bins: 10,
            woe_monotonic: true,
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            algorithms: vec!["lr".into(), "tree".into(), "knn".into()],
            lr_c: vec![0.1, 1.0, 10.0],
            tree_max_depth: vec![4, 6, 8],
            tree_min_samples_leaf: vec![20, 50],
            knn_k: vec![25, 50],
            knn_max_rows: 50_000,
            gbdt_trees: vec![200],
            gbdt_learning_rate: vec![0.05, 0.1],
            gbdt_max_leaves: vec![15, 31],
            gbdt_min_samples_leaf: 20,
            mlp_hidden: vec![64, 32],
            mlp_learning_rate: vec![0.001],
            mlp_alpha: 1e-4,
            mlp_max_epochs: 200,
            seed: 42,
            mode: "auto".into(),
            search_budget: 0,
        }
    }
}

/// Scoring: the fallback model for applications the main model should not
/// judge alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceOptions {
    pub fallback_model: String,
    pub fallback_missing_share: f64,
    pub fallback_range_factor: f64,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        Self {
            fallback_model: String::new(),
            fallback_missing_share: 0.5,
            fallback_range_factor: 1.0,
        }
    }
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            holdout: 0.2,
            cv_folds: 3,
            threshold: 0.5,
            min_auc_gain: 0.0,
            min_auc: 0.55,
            retrain_auc_drop: 0.03,
            sensitive: Vec::new(),
            max_parity_difference: 1.0,
        }
    }
}

impl Options {
    /// Reads and checks `kaskad.toml`.
    pub fn load(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let options: Options = toml::from_str(&text).map_err(|e| CoreError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        options.check().map_err(|message| CoreError::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(options)
    }

    /// Checks value ranges; the message names the key and what was expected.
    pub fn check(&self) -> Result<(), String> {
        let share = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v}: expected a share between 0 and 1"))
            }
        };
        if self.data.target.is_empty() {
            return Err("data.target: expected the name of the target column".into());
        }
        if self.data.positive.is_empty() || self.data.positive.iter().any(String::is_empty) {
            return Err("data.positive: expected the target values that mean default".into());
        }
        if self.collect.batch_rows == 0 {
            return Err("collect.batch_rows: expected at least 1".into());
        }
        share(
            "quality.warn_missing_column",
            self.quality.warn_missing_column,
        )?;
        share(
            "quality.drop_missing_column",
            self.quality.drop_missing_column,
        )?;
        share("quality.drop_missing_row", self.quality.drop_missing_row)?;
        share(
            "quality.fail_missing_cells",
            self.quality.fail_missing_cells,
        )?;
        share("quality.warn_duplicates", self.quality.warn_duplicates)?;
        if !["clip", "flag", "none"].contains(&self.quality.outliers.as_str()) {
            return Err(format!(
                "quality.outliers = {:?}: expected \"clip\", \"flag\" or \"none\"",
                self.quality.outliers
            ));
        }
        if self.quality.outlier_iqr <= 0.0 {
            return Err("quality.outlier_iqr: expected a positive number".into());
        }
        if self.drift.bins < 2 {
            return Err("drift.bins: expected at least 2".into());
        }
        share("drift.p_value", self.drift.p_value)?;
        if !["median", "mean"].contains(&self.prepare.numeric_impute.as_str()) {
            return Err(format!(
                "prepare.numeric_impute = {:?}: expected \"median\" or \"mean\"",
                self.prepare.numeric_impute
            ));
        }
        if self.prepare.variants.is_empty() {
            return Err(
                "prepare.variants: expected one or more of \"onehot\", \"onehot_plain\", \"ordinal\", \"woe\""
                    .into(),
            );
        }
        if self.prepare.encoding.is_some()
            && self.prepare.variants != PrepareOptions::default().variants
        {
            return Err(
                "prepare.encoding: replaced by prepare.variants; give only prepare.variants".into(),
            );
        }
        if self.prepare.woe_bins < 2 {
            return Err("prepare.woe_bins: expected at least 2".into());
        }
        share(
            "prepare.min_category_share",
            self.prepare.min_category_share,
        )?;
        if self.train.algorithms.is_empty() {
            return Err(
                "train.algorithms: expected at least one of \"lr\", \"tree\", \"knn\", \"gbdt\", \"mlp\""
                    .into(),
            );
        }
        for algo in &self.train.algorithms {
            if !["lr", "tree", "knn", "gbdt", "mlp"].contains(&algo.as_str()) {
                return Err(format!(
                    "train.algorithms: unknown algorithm {algo:?}, expected \"lr\", \"tree\", \"knn\", \"gbdt\" or \"mlp\""
                ));
            }
        }
        if self.train.lr_c.iter().any(|c| *c <= 0.0) || self.train.lr_c.is_empty() {
            return Err("train.lr_c: expected one or more positive numbers".into());
        }
        if self.train.tree_max_depth.is_empty() || self.train.tree_max_depth.contains(&0) {
            return Err("train.tree_max_depth: expected one or more depths ≥ 1".into());
        }
        if self.train.tree_min_samples_leaf.is_empty()
            || self.train.tree_min_samples_leaf.contains(&0)
        {
            return Err("train.tree_min_samples_leaf: expected one or more counts ≥ 1".into());
        }
        if self.train.knn_k.is_empty() || self.train.knn_k.contains(&0) {
            return Err("train.knn_k: expected one or more k ≥ 1".into());
        }
        if self.train.knn_max_rows == 0 {
            return Err("train.knn_max_rows: expected at least 1".into());
        }
        if self.train.gbdt_trees.is_empty() || self.train.gbdt_trees.contains(&0) {
            return Err("train.gbdt_trees: expected one or more counts ≥ 1".into());
        }
        if self.train.gbdt_learning_rate.is_empty()
            || self
                .train
                .gbdt_learning_rate
                .iter()
                .any(|r| !(*r > 0.0 && r.is_finite()))
        {
            return Err("train.gbdt_learning_rate: expected one or more positive numbers".into());
        }
        if self.train.gbdt_max_leaves.is_empty()
            || self.train.gbdt_max_leaves.iter().any(|&l| l < 2)
        {
            return Err("train.gbdt_max_leaves: expected one or more counts ≥ 2".into());
        }
        if self.train.gbdt_min_samples_leaf == 0 {
            return Err("train.gbdt_min_samples_leaf: expected at least 1".into());
        }
        if self.train.mlp_hidden.is_empty() || self.train.mlp_hidden.contains(&0) {
            return Err("train.mlp_hidden: expected one or more layer sizes ≥ 1".into());
        }
        if self.train.mlp_learning_rate.is_empty()
            || self.train.mlp_learning_rate.iter().any(|&r| r <= 0.0)
        {
            return Err("train.mlp_learning_rate: expected one or more positive numbers".into());
        }
        if self.train.mlp_alpha < 0.0 {
            return Err("train.mlp_alpha: expected a number ≥ 0".into());
        }
        if !["full", "incremental", "auto"].contains(&self.train.mode.as_str()) {
            return Err(format!(
                "train.mode = {:?}: expected \"full\", \"incremental\" or \"auto\"",
                self.train.mode
            ));
        }
        share("validate.retrain_auc_drop", self.validate.retrain_auc_drop)?;
        share(
            "inference.fallback_missing_share",
            self.inference.fallback_missing_share,
        )?;
        if self.inference.fallback_range_factor.is_nan()
            || self.inference.fallback_range_factor < 0.0
        {
            return Err("inference.fallback_range_factor: expected a number ≥ 0".into());
        }
        share(
            "validate.max_parity_difference",
            self.validate.max_parity_difference,
        )?;
        if self.train.mlp_max_epochs == 0 {
            return Err("train.mlp_max_epochs: expected at least 1".into());
        }
        if !(0.05..=0.5).contains(&self.validate.holdout) {
            return Err(format!(
                "validate.holdout = {}: expected a share between 0.05 and 0.5",
                self.validate.holdout
            ));
        }
        if self.validate.cv_folds < 2 {
            return Err("validate.cv_folds: expected at least 2".into());
        }
        share("validate.threshold", self.validate.threshold)?;
        share("validate.min_auc", self.validate.min_auc)?;
        Ok(())
    }

    /// The `kaskad.toml` that `init` writes: these values, every option commented.
    pub fn to_commented_toml(&self) -> String {
        let s = |v: &str| toml::Value::String(v.to_string()).to_string();
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|x| s(x)).collect::<Vec<_>>().join(", ")
            )
        };
        let nums = |v: Vec<String>| format!("[{}]", v.join(", "));
        let d = &self.data;
        let q = &self.quality;
        let r = &self.drift;
        let p = &self.prepare;
        let t = &self.train;
        let v = &self.validate;
        format!(
            r#"# kaskad configuration. Every key is optional except data.target and
# data.positive; unknown keys are errors. Edit and run `kaskad update`.

[data]
# Name under which models are registered.
name = {name}
# A CSV or Parquet file split into batches (stream emulation), a directory
# into which new CSV/Parquet files arrive (each file is one batch), or a Redis
# stream, redis://host:port/db?stream=NAME[&group=NAME]: one entry per
# application (fields = columns), batch_rows entries per batch, read through a
# consumer group and acknowledged once stored.
source = {source}
# Target column and the values of it that mean default (bad = 1).
target = {target}
positive = {positive}
# Column that orders the stream (dates like Mar-2018, ISO dates, numbers);
# empty means file order.
time = {time}
# Columns removed on arrival: leakage (known only after the loan), free text, ids.
drop = {drop}

[collect]
# Rows per batch when a file is split into a stream.
batch_rows = {batch_rows}

[quality]
# The analyze stage fails a batch with fewer rows than this after cleaning.
min_rows = {min_rows}
# A column missing more than this share raises a warning ...
warn_missing_column = {warn_missing_column}
# ... and more than this share is dropped by cleaning (all-missing always is).
drop_missing_column = {drop_missing_column}
# Rows missing more than this share of their features are dropped.
drop_missing_row = {drop_missing_row}
# The stage fails when more than this share of all cells is missing.
fail_missing_cells = {fail_missing_cells}
# Drop exact duplicate rows; warn when their share exceeds warn_duplicates.
drop_duplicates = {drop_duplicates}
warn_duplicates = {warn_duplicates}
# Numeric outliers beyond quartiles ± outlier_iqr × IQR of the reference batch:
# "clip" to the fence, "flag" (count only) or "none".
outliers = {outliers}
outlier_iqr = {outlier_iqr}

[drift]
# Population stability index: warn above psi_warn, major drift above psi_fail.
psi_warn = {psi_warn}
psi_fail = {psi_fail}
# KS (numeric) and chi-square (categorical) tests call drift below this p-value.
p_value = {p_value}
# Fail the analyze stage on major drift (otherwise it is recorded and reported).
fail_on_drift = {fail_on_drift}
# Quantile bins of the reference used by PSI for numeric columns.
bins = {bins}

[prepare]
# Numeric imputation: "median" or "mean". Missing values also get an
# indicator (except by "onehot_plain").
numeric_impute = {numeric_impute}
# Preprocessing variants, each searched with every hyperparameter setting by
# the same time-series CV (a family keeps its best pair): "onehot" and
# "ordinal" impute and scale numbers (flagging missing ones) and encode
# categories as 0/1 columns or frequency ranks (rare and unseen categories
# fall into "other", missing ones into their own level); "onehot_plain" is
# "onehot" without missing flags, "other" or missing levels (scikit-learn's
# usual pipeline); "woe" replaces every column by the weight of evidence of
# its bin, as scorecards do. (The older `encoding = "..."` still reads as a
# single variant.)
variants = {variants}
# Categories rarer than this share of training rows are grouped into "other"
# (except by "onehot_plain").
min_category_share = {min_category_share}
# Standardize numeric features (mean 0, variance 1).
scale = {scale}
# Weight of evidence: numeric columns are cut into woe_bins quantile bins,
# merged until each holds at least 5% of the rows and both classes, and, with
# woe_monotonic, until the default rate is monotonic across the bins.
# Missing values form their own bin; categories under 5% and unseen ones get
# the neutral WoE 0.
woe_bins = {woe_bins}
woe_monotonic = {woe_monotonic}

[train]
# Model families to train on every update: "lr", "tree", "knn", "gbdt", "mlp".
algorithms = {algorithms}
# Hyperparameter grid searched with time-series cross-validation.
lr_c = {lr_c}
tree_max_depth = {tree_max_depth}
tree_min_samples_leaf = {tree_min_samples_leaf}
knn_k = {knn_k}
# kNN keeps at most this many training rows (reservoir sample).
knn_max_rows = {knn_max_rows}
# Gradient-boosted trees: the most boosting rounds (early stopping on the
# newest tenth of the training rows, grown to hold 100 of each class, keeps
# the best round; data too small for that runs every round), the shrinkage
# of every tree, leaves per tree (grown best-first) ...
gbdt_trees = {gbdt_trees}
gbdt_learning_rate = {gbdt_learning_rate}
gbdt_max_leaves = {gbdt_max_leaves}
# ... and the fewest training rows a leaf may hold.
gbdt_min_samples_leaf = {gbdt_min_samples_leaf}
# Multilayer perceptron: hidden layer sizes, Adam learning rates to search,
# L2 penalty, and the most epochs (early stopping on the newest tenth of
# the training rows keeps the best epoch).
mlp_hidden = {mlp_hidden}
mlp_learning_rate = {mlp_learning_rate}
mlp_alpha = {mlp_alpha:?}
mlp_max_epochs = {mlp_max_epochs}
# Seed of every random process; same seed, same models.
seed = {seed}
# "full": search hyperparameters and fit every family from scratch on every
# batch. "incremental": update each family's latest version (LR warm start,
# GBDT adds trees, MLP continues, kNN appends; the tree refits). "auto":
# incremental unless a column drifted past drift.psi_fail or the champion's
# AUC on the new batch fell by more than validate.retrain_auc_drop.
mode = {mode}
# Most (preprocessing variant × hyperparameters) candidates a full search
# cross-validates; 0 = every one. The meta-model orders them by the CV AUC
# it estimates from earlier searches on data like this batch (a candidate
# never measured: by the best estimate of its family and variant); each
# family and variant is measured once before any is refined. The first
# search_budget are evaluated; a family with none keeps its old versions.
search_budget = {search_budget}

[validate]
# Share of the newest rows held out to compare the candidates and the champion.
holdout = {holdout}
# Time-series cross-validation folds used to choose hyperparameters.
cv_folds = {cv_folds}
# Scores at or above the threshold predict default (predict = 1).
threshold = {threshold}
# Promotion policy: the best candidate becomes champion when its hold-out
# AUC is at least min_auc and beats the champion's (on the same hold-out)
# by at least min_auc_gain.
min_auc_gain = {min_auc_gain}
min_auc = {min_auc}
# With train.mode = "auto": retrain from scratch when the champion's AUC on
# the newest rows is this much below the AUC it was registered with.
retrain_auc_drop = {retrain_auc_drop}
# Sensitive columns (e.g. ["personal_status_and_sex", "age_in_years"]):
# demographic-parity and equalized-odds differences of every version's
# decisions on the hold-out, per column (numbers are grouped by quartile).
sensitive = {sensitive}
# Promotion gate: a candidate whose demographic-parity difference on any
# sensitive column exceeds this cannot become champion (1.0 = no gate).
max_parity_difference = {max_parity_difference:?}

[inference]
# Applications the model should not judge alone are scored by this model
# ("name@alias" or "name@version"; empty: none) and flagged in the output:
# those missing more than fallback_missing_share of the inputs, and those
# with a number beyond the training range by more than
# fallback_range_factor times the range's width.
fallback_model = {fallback_model}
fallback_missing_share = {fallback_missing_share:?}
fallback_range_factor = {fallback_range_factor:?}
"#,
            name = s(&d.name),
            source = s(&d.source.display().to_string()),
            target = s(&d.target),
            positive = list(&d.positive),
            time = s(&d.time),
            drop = list(&d.drop),
            batch_rows = self.collect.batch_rows,
            min_rows = q.min_rows,
            warn_missing_column = q.warn_missing_column,
            drop_missing_column = q.drop_missing_column,
            drop_missing_row = q.drop_missing_row,
            fail_missing_cells = q.fail_missing_cells,
            drop_duplicates = q.drop_duplicates,
            warn_duplicates = q.warn_duplicates,
            outliers = s(&q.outliers),
            outlier_iqr = q.outlier_iqr,
            psi_warn = r.psi_warn,
            psi_fail = r.psi_fail,
            p_value = r.p_value,
            fail_on_drift = r.fail_on_drift,
            bins = r.bins,
            numeric_impute = s(&p.numeric_impute),
            variants = list(
                &p.variants()
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
            ),
            min_category_share = p.min_category_share,
            scale = p.scale,
            woe_bins = p.woe_bins,
            woe_monotonic = p.woe_monotonic,
            algorithms = list(&t.algorithms),
            lr_c = nums(t.lr_c.iter().map(|x| format!("{x:?}")).collect()),
            tree_max_depth = nums(t.tree_max_depth.iter().map(ToString::to_string).collect()),
            tree_min_samples_leaf = nums(
                t.tree_min_samples_leaf
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            ),
            knn_k = nums(t.knn_k.iter().map(ToString::to_string).collect()),
            knn_max_rows = t.knn_max_rows,
            gbdt_trees = nums(t.gbdt_trees.iter().map(ToString::to_string).collect()),
            gbdt_learning_rate = nums(
                t.gbdt_learning_rate
                    .iter()
                    .map(|x| format!("{x:?}"))
                    .collect()
            ),
            gbdt_max_leaves = nums(t.gbdt_max_leaves.iter().map(ToString::to_string).collect()),
            gbdt_min_samples_leaf = t.gbdt_min_samples_leaf,
            mlp_hidden = nums(t.mlp_hidden.iter().map(ToString::to_string).collect()),
            mlp_learning_rate = nums(
                t.mlp_learning_rate
                    .iter()
                    .map(|x| format!("{x:?}"))
                    .collect()
            ),
            mlp_alpha = t.mlp_alpha,
            mlp_max_epochs = t.mlp_max_epochs,
            seed = t.seed,
            mode = s(&t.mode),
            search_budget = t.search_budget,
            holdout = v.holdout,
            cv_folds = v.cv_folds,
            threshold = v.threshold,
            min_auc_gain = v.min_auc_gain,
            retrain_auc_drop = v.retrain_auc_drop,
            sensitive = list(&v.sensitive),
            max_parity_difference = v.max_parity_difference,
            fallback_model = s(&self.inference.fallback_model),
            fallback_missing_share = self.inference.fallback_missing_share,
            fallback_range_factor = self.inference.fallback_range_factor,
            min_auc = v.min_auc,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Options {
        let mut o = Options::default();
        o.data.target = "Status".into();
        o.data.positive = vec!["bad".into()];
        o.data.drop = vec!["id".into()];
        o
    }

    #[test]
    fn commented_toml_round_trips() {
        let o = sample();
        let back: Options = toml::from_str(&o.to_commented_toml()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let text = sample()
            .to_commented_toml()
            .replace("[collect]", "[collect]\nbatch_size = 3");
        let err = toml::from_str::<Options>(&text).unwrap_err().to_string();
        assert!(err.contains("batch_size"), "{err}");
        let mut o = sample();
        o.quality.outliers = "remove".into();
        assert!(o.check().unwrap_err().contains("quality.outliers"));
        let mut o = sample();
        o.train.algorithms.push("gbdt".into());
        assert_eq!(o.check(), Ok(()));
        o.train.gbdt_learning_rate = vec![0.1, 0.0];
        assert!(o.check().unwrap_err().contains("train.gbdt_learning_rate"));
    }

    #[test]
    fn variants_round_trip_and_the_legacy_encoding_still_reads() {
        let mut o = sample();
        let default = sample().to_commented_toml();
        assert!(
            default.contains(r#"variants = ["onehot", "onehot_plain"]"#),
            "{default}"
        );
        o.prepare.variants = vec![Encoding::OneHotPlain, Encoding::Woe];
        let text = o.to_commented_toml();
        assert!(
            text.contains(r#"variants = ["onehot_plain", "woe"]"#),
            "{text}"
        );
        let back: Options = toml::from_str(&text).unwrap();
        assert_eq!(back, o);
        let legacy: Options = toml::from_str(
            "[data]\ntarget = \"y\"\npositive = [\"1\"]\n[prepare]\nencoding = \"ordinal\"\n",
        )
        .unwrap();
        assert_eq!(legacy.check(), Ok(()));
        assert_eq!(legacy.prepare.variants(), vec![Encoding::Ordinal]);
        // `init` rewrites a legacy file as the variants it meant.
        let rewritten: Options = toml::from_str(&legacy.to_commented_toml()).unwrap();
        assert_eq!(rewritten.prepare.variants(), vec![Encoding::Ordinal]);
        let mut both = legacy;
        both.prepare.variants = vec![Encoding::Woe];
        assert!(both.check().unwrap_err().contains("prepare.encoding"));
        let mut o = sample();
        o.prepare.variants.clear();
        assert!(o.check().unwrap_err().contains("prepare.variants"));
    }
}
