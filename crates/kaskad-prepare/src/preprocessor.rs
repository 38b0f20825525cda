//! The fitted preprocessing: one [`Encoder`] per input column, in frame order.

use foldhash::{HashMap, HashMapExt};

use kaskad_core::config::{Encoding, PrepareOptions};
use kaskad_core::{Column, ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

use crate::woe::{self, CategoricalWoe, NumericWoe};
use crate::{Matrix, PrepareError, parallel};

/// Rows encoded together by [`Preprocessor::transform`]: 256 rows of 32
/// features are 64 KiB.
const BLOCK_ROWS: usize = 256;

/// Preprocessing fitted on training rows, replayed on any later frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredPreprocessor")]
pub struct Preprocessor {
    /// Stored because the encoders cannot always tell: `onehot` on data
    /// without gaps or rare levels fits the same encoders as `onehot_plain`.
    variant: Encoding,
    inputs: Vec<(String, ColumnKind)>,
    encoders: Vec<Encoder>,
    /// Not stored: the encoders name their features.
    #[serde(skip_serializing)]
    feature_names: Vec<String>,
}

/// A [`Preprocessor`] as stored; artifacts written before the variant was
/// stored lack it, and theirs is read off the encoders. Artifacts written
/// before the feature names were derived on load hold them, and keep theirs.
#[derive(Deserialize)]
struct StoredPreprocessor {
    variant: Option<Encoding>,
    inputs: Vec<(String, ColumnKind)>,
    encoders: Vec<Encoder>,
    feature_names: Option<Vec<String>>,
}

impl From<StoredPreprocessor> for Preprocessor {
    fn from(stored: StoredPreprocessor) -> Self {
        Self {
            variant: stored
                .variant
                .unwrap_or_else(|| variant_of(&stored.encoders)),
            feature_names: stored
                .feature_names
                .unwrap_or_else(|| names_of(&stored.inputs, &stored.encoders)),
            inputs: stored.inputs,
            encoders: stored.encoders,
        }
    }
}

/// The name of every feature `encoders` make of `inputs`, in matrix order.
fn names_of(inputs: &[(String, ColumnKind)], encoders: &[Encoder]) -> Vec<String> {
    inputs
        .iter()
        .zip(encoders)
        .flat_map(|((name, _), encoder)| encoder.feature_names(name))
        .collect()
}

/// The variant an artifact without a stored one was fitted as; those
/// predate `onehot_plain`, so gaps and rare levels are never a question.
fn variant_of(encoders: &[Encoder]) -> Encoding {
    let mut variant = Encoding::OneHot;
    for encoder in encoders {
        match encoder {
            Encoder::WoeNumeric { .. } | Encoder::WoeCategorical { .. } => return Encoding::Woe,
            Encoder::Ordinal { .. } => variant = Encoding::Ordinal,
            Encoder::Numeric { .. } | Encoder::OneHot { .. } => {}
        }
    }
    variant
}

/// How one input column becomes one or more features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Encoder {
    /// Clamp to the training range, impute, optionally flag missing, then
    /// standardize. Clamping replays at scoring time the outlier clipping
    /// cleaning applied to the training rows.
    Numeric {
        low: f64,
        high: f64,
        fill: f64,
        missing_indicator: bool,
        scaling: Scaling,
    },
    /// One 0/1 feature per frequent level; rare or unseen levels share the
    /// `other` slot (when training saw rare levels), missing values their own
    /// slot (when training saw missing values).
    OneHot {
        levels: Vec<String>,
        other_slot: bool,
        missing_slot: bool,
    },
    /// Level rank by training frequency (0 = most frequent); rare and unseen
    /// levels rank after every frequent one; missing values take the most
    /// frequent level's rank and are flagged when training saw them.
    Ordinal {
        levels: Vec<String>,
        missing_indicator: bool,
        scaling: Scaling,
    },
    /// The weight of evidence of the value's bin: bin `k` holds
    /// `edges[k-1] < x <= edges[k]`; non-finite values take `missing_woe`.
    #[serde(rename = "woe_numeric")]
    WoeNumeric {
        edges: Vec<f64>,
        woe: Vec<f64>,
        missing_woe: f64,
        iv: f64,
    },
    /// The weight of evidence of the level; rare and unseen levels 0.
    #[serde(rename = "woe_categorical")]
    WoeCategorical {
        levels: Vec<String>,
        woe: Vec<f64>,
        missing_woe: f64,
        iv: f64,
    },
}

/// A read-only copy of one column's fitted encoding, so that the encoder
/// itself stays private and free to change its serialized form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncoderView<'a> {
    /// `((finite ? clamp(x, low, high) : fill) - mean) / scale`, then the
    /// missing flag when `missing_indicator`.
    Numeric {
        low: f64,
        high: f64,
        fill: f64,
        missing_indicator: bool,
        mean: f64,
        scale: f64,
    },
    /// One slot per level, then `other` (if any), then `missing` (if any);
    /// without a missing slot a missing value sets the first level's slot.
    OneHot {
        levels: &'a [String],
        other_slot: bool,
        missing_slot: bool,
    },
    /// `(rank - mean) / scale` with rank = position in `levels`,
    /// `levels.len()` for other levels and 0 for missing values; then the
    /// missing flag when `missing_indicator`.
    Ordinal {
        levels: &'a [String],
        missing_indicator: bool,
        mean: f64,
        scale: f64,
    },
    /// `woe[k]` for the bin `k` = number of `edges` below `x` (edges
    /// ascending); `missing_woe` for non-finite `x`.
    WoeNumeric {
        edges: &'a [f64],
        woe: &'a [f64],
        missing_woe: f64,
    },
    /// `woe[i]` for `levels[i]`, `missing_woe` for a missing value, 0 for
    /// any other level.
    WoeCategorical {
        levels: &'a [String],
        woe: &'a [f64],
        missing_woe: f64,
    },
}

/// `(x - mean) / scale`; the identity when scaling is off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Scaling {
    mean: f64,
    scale: f64,
}

impl Scaling {
    const IDENTITY: Scaling = Scaling {
        mean: 0.0,
        scale: 1.0,
    };

    /// Population standard deviation, as scikit-learn's `StandardScaler`;
    /// a constant column keeps scale 1 so it maps to 0 rather than NaN.
    fn fit(values: impl Iterator<Item = f64> + Clone, enabled: bool) -> Scaling {
        if !enabled {
            return Scaling::IDENTITY;
        }
        let (n, sum) = values
            .clone()
            .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
        if n == 0 {
            return Scaling::IDENTITY;
        }
        let mean = sum / n as f64;
        let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let sd = var.sqrt();
        Scaling {
            mean,
            scale: if sd > 1e-12 { sd } else { 1.0 },
        }
    }

    fn apply(self, v: f64) -> f64 {
        (v - self.mean) / self.scale
    }
}

impl Preprocessor {
    /// Fits the `variant` preprocessing on the feature columns of `frame`.
    /// `labels` (1 = bad, one per row) are needed by [`Encoding::Woe`] only.
    pub fn fit(
        frame: &Frame,
        variant: Encoding,
        labels: Option<&[u8]>,
        options: &PrepareOptions,
    ) -> Result<Self, PrepareError> {
        if frame.n_cols() == 0 {
            return Err(PrepareError::NoFeatures);
        }
        if frame.n_rows() == 0 {
            return Err(PrepareError::NoRows);
        }
        let labels = match (variant, labels) {
            (Encoding::Woe, None) => return Err(PrepareError::LabelsNeeded { variant }),
            (Encoding::Woe, Some(labels)) if labels.len() != frame.n_rows() => {
                return Err(PrepareError::LabelCount {
                    labels: labels.len(),
                    rows: frame.n_rows(),
                });
            }
            (Encoding::Woe, Some(labels)) => Some(labels),
            _ => None,
        };
        let fit_column = |column: &Column| match (&column.data, labels) {
            (ColumnData::Numeric(values), Some(labels)) => {
                let NumericWoe {
                    edges,
                    woe,
                    missing_woe,
                    iv,
                } = woe::fit_numeric(values, labels, options.woe_bins, options.woe_monotonic);
                Encoder::WoeNumeric {
                    edges,
                    woe,
                    missing_woe,
                    iv,
                }
            }
            (ColumnData::Categorical(values), Some(labels)) => {
                let CategoricalWoe {
                    levels,
                    woe,
                    missing_woe,
                    iv,
                } = woe::fit_categorical(values, labels);
                Encoder::WoeCategorical {
                    levels,
                    woe,
                    missing_woe,
                    iv,
                }
            }
            (ColumnData::Numeric(values), None) => fit_numeric(values, variant, options),
            (ColumnData::Categorical(values), None) => fit_categorical(values, variant, options),
        };
        let columns = frame.columns();
        let encoders = parallel::map(columns, frame.n_rows(), fit_column);
        let inputs: Vec<(String, ColumnKind)> = columns
            .iter()
            .map(|column| (column.name.clone(), column.kind()))
            .collect();
        Ok(Self {
            variant,
            feature_names: names_of(&inputs, &encoders),
            inputs,
            encoders,
        })
    }

    /// The variant this preprocessing was fitted as.
    pub fn variant(&self) -> Encoding {
        self.variant
    }

    /// The information value of every weight-of-evidence column, strongest
    /// predictor first; empty for the other variants.
    pub fn information_values(&self) -> Vec<(&str, f64)> {
        let mut ivs: Vec<(&str, f64)> = self
            .inputs
            .iter()
            .zip(&self.encoders)
            .filter_map(|((name, _), encoder)| match encoder {
                Encoder::WoeNumeric { iv, .. } | Encoder::WoeCategorical { iv, .. } => {
                    Some((name.as_str(), *iv))
                }
                _ => None,
            })
            .collect();
        ivs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        ivs
    }

    /// The columns a frame must hold to be transformed, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        &self.inputs
    }

    /// For every output feature, the index (in [`Self::input_columns`]) of
    /// the raw column it was built from: explanations sum over it.
    pub fn feature_sources(&self) -> Vec<usize> {
        self.encoders
            .iter()
            .enumerate()
            .flat_map(|(i, e)| std::iter::repeat_n(i, e.width()))
            .collect()
    }

    /// The name of every output feature, in matrix column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Every input column with its fitted encoding, in feature order: for
    /// consumers that re-express the preprocessing elsewhere (the ONNX export).
    pub fn encoders(&self) -> impl Iterator<Item = (&str, EncoderView<'_>)> {
        self.inputs
            .iter()
            .zip(&self.encoders)
            .map(|((name, _), encoder)| (name.as_str(), encoder.view()))
    }

    /// The input columns of `frame`, in input order, each checked against
    /// its encoder's kind. Extra columns are ignored; a missing input column
    /// or one of the wrong kind is an error naming it.
    pub fn raw_columns<'f>(&self, frame: &'f Frame) -> Result<Vec<RawColumn<'f>>, PrepareError> {
        self.inputs
            .iter()
            .zip(&self.encoders)
            .map(|((name, kind), encoder)| {
                let column = frame
                    .column(name)
                    .ok_or_else(|| PrepareError::MissingColumn {
                        column: name.clone(),
                    })?;
                match &column.data {
                    ColumnData::Numeric(values) if encoder.reads_numbers() => {
                        Ok(RawColumn::Numbers(values))
                    }
                    // A column with no value at all reads as categorical; for
                    // a numeric input it simply means every value is missing.
                    ColumnData::Categorical(values)
                        if encoder.reads_numbers() && values.iter().all(Option::is_none) =>
                    {
                        Ok(RawColumn::AllMissing)
                    }
                    ColumnData::Categorical(values) if *kind == ColumnKind::Categorical => {
                        Ok(RawColumn::Levels(values))
                    }
                    _ => Err(PrepareError::WrongKind {
                        column: name.clone(),
                        expected: *kind,
                        found: column.kind(),
                    }),
                }
            })
            .collect()
    }

    /// Builds the feature matrix (see [`Self::raw_columns`] for the checks).
    /// Rows are encoded in blocks small enough to stay in cache, every
    /// column of a block before the next block; large frames split their
    /// rows across the cores.
    pub fn transform(&self, frame: &Frame) -> Result<Matrix, PrepareError> {
        let raw = self.raw_columns(frame)?;
        let rows = frame.n_rows();
        let cols = self.feature_names.len();
        let mut matrix = Matrix::zeros(rows, cols);
        if cols == 0 {
            return Ok(matrix);
        }
        let widths: Vec<usize> = self.encoders.iter().map(Encoder::width).collect();
        let encode_rows = |first_row: usize, out: &mut [f64]| {
            for (block, out) in out.chunks_mut(BLOCK_ROWS * cols).enumerate() {
                let first = first_row + block * BLOCK_ROWS;
                let mut offset = 0;
                for ((column, encoder), &width) in raw.iter().zip(&self.encoders).zip(&widths) {
                    for (row, features) in out.chunks_exact_mut(cols).enumerate() {
                        encoder.encode(
                            column.cell(first + row),
                            &mut features[offset..offset + width],
                        );
                    }
                    offset += width;
                }
            }
        };
        parallel::for_row_chunks(&mut matrix.data, cols, encode_rows);
        Ok(matrix)
    }

    /// Writes the features of one application, given as one cell per input
    /// column in [`Self::input_columns`] order, into `out` (one slot per
    /// feature): the row [`Self::transform`] would build, without a frame.
    pub fn encode_row(&self, row: &[Cell<'_>], out: &mut [f64]) -> Result<(), PrepareError> {
        self.check_row(row)?;
        assert_eq!(out.len(), self.feature_names.len(), "one slot per feature");
        let mut offset = 0;
        for (encoder, &cell) in self.encoders.iter().zip(row) {
            let width = encoder.width();
            encoder.encode(cell, &mut out[offset..offset + width]);
            offset += width;
        }
        Ok(())
    }

    /// Checks that `row` holds one cell per input column, each of its
    /// column's kind (a number for a numeric column).
    pub fn check_row(&self, row: &[Cell<'_>]) -> Result<(), PrepareError> {
        assert_eq!(row.len(), self.inputs.len(), "one cell per input column");
        for ((name, kind), &cell) in self.inputs.iter().zip(row) {
            let found = match cell {
                Cell::Number(_) => ColumnKind::Numeric,
                Cell::Level(_) => ColumnKind::Categorical,
            };
            if found != *kind {
                return Err(PrepareError::WrongKind {
                    column: name.clone(),
                    expected: *kind,
                    found,
                });
            }
        }
        Ok(())
    }

    /// The features input column `column` alone turns `cell` into (its
    /// slots of [`Self::encode_row`]'s output), written to `out`; for
    /// consumers that tabulate an encoding per level.
    pub fn encode_cell(&self, column: usize, cell: Cell<'_>, out: &mut [f64]) {
        self.encoders[column].encode(cell, out);
    }
}

/// One raw value of an application, as the preprocessing reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// A number; NaN and infinities are missing.
    Number(f64),
    /// A category; `None` is missing.
    Level(Option<&'a str>),
}

impl<'a> Cell<'a> {
    /// The value of `column` at `row`.
    pub fn of(column: &'a Column, row: usize) -> Cell<'a> {
        match &column.data {
            ColumnData::Numeric(values) => Cell::Number(values[row]),
            ColumnData::Categorical(values) => Cell::Level(values[row].as_deref()),
        }
    }

    /// The missing value of a column of `kind`.
    pub fn missing(kind: ColumnKind) -> Cell<'static> {
        match kind {
            ColumnKind::Numeric => Cell::Number(f64::NAN),
            ColumnKind::Categorical => Cell::Level(None),
        }
    }

    /// Whether the value is missing: NaN or `None`, as [`kaskad_core::Column::is_missing`].
    pub fn is_missing(self) -> bool {
        match self {
            Cell::Number(v) => v.is_nan(),
            Cell::Level(v) => v.is_none(),
        }
    }
}

/// An input column of a frame, checked against its encoder.
#[derive(Debug, Clone, Copy)]
pub enum RawColumn<'f> {
    Numbers(&'f [f64]),
    Levels(&'f [Option<String>]),
    /// A numeric input read as a column without any value.
    AllMissing,
}

impl<'f> RawColumn<'f> {
    pub fn cell(&self, row: usize) -> Cell<'f> {
        match self {
            RawColumn::Numbers(values) => Cell::Number(values[row]),
            RawColumn::Levels(values) => Cell::Level(values[row].as_deref()),
            RawColumn::AllMissing => Cell::Number(f64::NAN),
        }
    }
}

fn fit_numeric(values: &[f64], variant: Encoding, options: &PrepareOptions) -> Encoder {
    let mut present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let missing_indicator = variant != Encoding::OneHotPlain && present.len() < values.len();
    let (low, high) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &v| {
            (low.min(v), high.max(v))
        });
    let fill = if present.is_empty() {
        0.0
    } else if options.numeric_impute == "mean" {
        present.iter().sum::<f64>() / present.len() as f64
    } else {
        median(&mut present)
    };
    let (low, high) = if present.is_empty() {
        (fill, fill)
    } else {
        (low, high)
    };
    let imputed = values
        .iter()
        .map(move |&v| if v.is_finite() { v } else { fill });
    Encoder::Numeric {
        low,
        high,
        fill,
        missing_indicator,
        scaling: Scaling::fit(imputed, options.scale),
    }
}

fn fit_categorical(
    values: &[Option<String>],
    variant: Encoding,
    options: &PrepareOptions,
) -> Encoder {
    let plain = variant == Encoding::OneHotPlain;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut missing = 0;
    for v in values {
        match v {
            Some(level) => *counts.entry(level.as_str()).or_default() += 1,
            None => missing += 1,
        }
    }
    let present = values.len() - missing;
    let min_share = if plain {
        0.0
    } else {
        options.min_category_share
    };
    let min_count = (min_share * present as f64).ceil().max(1.0) as usize;
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    // Most frequent first, ties by name so that refits are reproducible.
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rare = ranked.iter().any(|(_, n)| *n < min_count);
    let levels: Vec<String> = ranked
        .iter()
        .filter(|(_, n)| *n >= min_count)
        .map(|(l, _)| (*l).to_string())
        .collect();
    if variant == Encoding::Ordinal {
        let codes = values.iter().map(|v| ordinal_code(&levels, v.as_deref()));
        Encoder::Ordinal {
            scaling: Scaling::fit(codes, options.scale),
            levels,
            missing_indicator: missing > 0,
        }
    } else {
        Encoder::OneHot {
            levels,
            other_slot: rare,
            missing_slot: !plain && missing > 0,
        }
    }
}

/// Missing values take the most frequent level's rank (0).
fn ordinal_code(levels: &[String], v: Option<&str>) -> f64 {
    match v {
        None => 0.0,
        Some(level) => levels
            .iter()
            .position(|l| l == level)
            .unwrap_or(levels.len()) as f64,
    }
}

/// Median by selection: linear time, no full sort (reorders `values`).
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (below, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::MIN, f64::max);
        (lower + upper) / 2.0
    }
}

impl Encoder {
    fn view(&self) -> EncoderView<'_> {
        match self {
            Encoder::Numeric {
                low,
                high,
                fill,
                missing_indicator,
                scaling,
            } => EncoderView::Numeric {
                low: *low,
                high: *high,
                fill: *fill,
                missing_indicator: *missing_indicator,
                mean: scaling.mean,
                scale: scaling.scale,
            },
            Encoder::OneHot {
                levels,
                other_slot,
                missing_slot,
            } => EncoderView::OneHot {
                levels,
                other_slot: *other_slot,
                missing_slot: *missing_slot,
            },
            Encoder::Ordinal {
                levels,
                missing_indicator,
                scaling,
            } => EncoderView::Ordinal {
                levels,
                missing_indicator: *missing_indicator,
                mean: scaling.mean,
                scale: scaling.scale,
            },
            Encoder::WoeNumeric {
                edges,
                woe,
                missing_woe,
                ..
            } => EncoderView::WoeNumeric {
                edges,
                woe,
                missing_woe: *missing_woe,
            },
            Encoder::WoeCategorical {
                levels,
                woe,
                missing_woe,
                ..
            } => EncoderView::WoeCategorical {
                levels,
                woe,
                missing_woe: *missing_woe,
            },
        }
    }

    /// Writes the features of one value. The kinds are checked before
    /// (a frame's columns, a row's cells): a mismatched cell encodes as
    /// the missing value of the encoder's kind.
    fn encode(&self, cell: Cell<'_>, out: &mut [f64]) {
        match (cell, self.reads_numbers()) {
            (Cell::Number(v), true) => self.encode_number(v, out),
            (Cell::Level(v), false) => self.encode_level(v, out),
            (Cell::Level(_), true) => self.encode_number(f64::NAN, out),
            (Cell::Number(_), false) => self.encode_level(None, out),
        }
    }

    /// Whether the input column is numeric.
    fn reads_numbers(&self) -> bool {
        matches!(self, Encoder::Numeric { .. } | Encoder::WoeNumeric { .. })
    }

    fn width(&self) -> usize {
        match self {
            Encoder::Numeric {
                missing_indicator, ..
            }
            | Encoder::Ordinal {
                missing_indicator, ..
            } => 1 + usize::from(*missing_indicator),
            Encoder::OneHot {
                levels,
                other_slot,
                missing_slot,
            } => levels.len() + usize::from(*other_slot) + usize::from(*missing_slot),
            Encoder::WoeNumeric { .. } | Encoder::WoeCategorical { .. } => 1,
        }
    }

    fn feature_names(&self, column: &str) -> Vec<String> {
        match self {
            Encoder::Numeric {
                missing_indicator, ..
            }
            | Encoder::Ordinal {
                missing_indicator, ..
            } => {
                let mut names = vec![column.to_string()];
                if *missing_indicator {
                    names.push(format!("{column}_missing"));
                }
                names
            }
            Encoder::OneHot {
                levels,
                other_slot,
                missing_slot,
            } => {
                let mut names: Vec<String> =
                    levels.iter().map(|l| format!("{column}={l}")).collect();
                if *other_slot {
                    names.push(format!("{column}=__other__"));
                }
                if *missing_slot {
                    names.push(format!("{column}=__missing__"));
                }
                names
            }
            Encoder::WoeNumeric { .. } | Encoder::WoeCategorical { .. } => {
                vec![format!("{column}_woe")]
            }
        }
    }

    /// Non-finite numbers count as missing: a model never sees NaN or ±inf.
    fn encode_number(&self, v: f64, out: &mut [f64]) {
        let (low, high, fill, missing_indicator, scaling) = match self {
            Encoder::Numeric {
                low,
                high,
                fill,
                missing_indicator,
                scaling,
            } => (low, high, fill, missing_indicator, scaling),
            Encoder::WoeNumeric {
                edges,
                woe,
                missing_woe,
                ..
            } => {
                out[0] = if v.is_finite() {
                    woe[woe::bin_of(edges, v)]
                } else {
                    *missing_woe
                };
                return;
            }
            _ => unreachable!("numbers are only routed to numeric encoders"),
        };
        let present = v.is_finite();
        out[0] = scaling.apply(if present { v.clamp(*low, *high) } else { *fill });
        if *missing_indicator {
            out[1] = if present { 0.0 } else { 1.0 };
        }
    }

    fn encode_level(&self, v: Option<&str>, out: &mut [f64]) {
        match self {
            Encoder::OneHot {
                levels,
                other_slot,
                missing_slot,
            } => {
                out.fill(0.0);
                match v {
                    None if *missing_slot => out[out.len() - 1] = 1.0,
                    // Training saw no gap here, or the variant keeps no
                    // missing slot: impute the most frequent level.
                    None => {
                        if !levels.is_empty() {
                            out[0] = 1.0;
                        }
                    }
                    Some(level) => match levels.iter().position(|l| l == level) {
                        Some(i) => out[i] = 1.0,
                        None if *other_slot => out[levels.len()] = 1.0,
                        // Unseen and no pooled slot: all zeros, as scikit-learn's
                        // `handle_unknown="ignore"`.
                        None => {}
                    },
                }
            }
            Encoder::Ordinal {
                levels,
                missing_indicator,
                scaling,
            } => {
                out[0] = scaling.apply(ordinal_code(levels, v));
                if *missing_indicator {
                    out[1] = if v.is_none() { 1.0 } else { 0.0 };
                }
            }
            Encoder::WoeCategorical {
                levels,
                woe,
                missing_woe,
                ..
            } => {
                out[0] = match v {
                    None => *missing_woe,
                    Some(level) => levels
                        .iter()
                        .position(|l| l == level)
                        .map_or(0.0, |i| woe[i]),
                };
            }
            Encoder::Numeric { .. } | Encoder::WoeNumeric { .. } => {
                unreachable!("levels are only routed to categorical encoders")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskad_core::Column;

    fn options() -> PrepareOptions {
        PrepareOptions::default()
    }

    fn frame() -> Frame {
        Frame::new(vec![
            Column::numeric("income", vec![1.0, 2.0, f64::NAN, 5.0]),
            Column::categorical(
                "home",
                vec![
                    Some("rent".into()),
                    Some("own".into()),
                    None,
                    Some("rent".into()),
                ],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn imputes_flags_scales_and_one_hot_encodes() {
        let pre = Preprocessor::fit(&frame(), Encoding::OneHot, None, &options()).unwrap();
        assert_eq!(
            pre.feature_names(),
            &[
                "income",
                "income_missing",
                "home=rent",
                "home=own",
                "home=__missing__"
            ]
        );
        let m = pre.transform(&frame()).unwrap();
        // Median of 1, 2, 5 fills the gap; the imputed column has mean 2.5.
        let income = m.column(0);
        assert!((income.iter().sum::<f64>()).abs() < 1e-9);
        assert_eq!(m.column(1), vec![0.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.row(2)[2..], [0.0, 0.0, 1.0]);
        assert_eq!(m.row(3)[2..], [1.0, 0.0, 0.0]);
        assert_eq!(pre.feature_sources(), vec![0, 0, 1, 1, 1]);
    }

    #[test]
    fn large_frames_split_across_threads_encode_as_row_by_row() {
        let rows = 3 * crate::parallel::PARALLEL_ROWS + 7;
        let levels = ["rent", "own", "parents", "other"];
        let frame = Frame::new(vec![
            Column::numeric(
                "income",
                (0..rows)
                    .map(|i| {
                        if i % 11 == 0 {
                            f64::NAN
                        } else {
                            (i % 97) as f64
                        }
                    })
                    .collect(),
            ),
            Column::categorical(
                "home",
                (0..rows)
                    .map(|i| (i % 13 != 0).then(|| levels[i % 4].to_string()))
                    .collect(),
            ),
            Column::numeric("age", (0..rows).map(|i| (i % 50) as f64).collect()),
        ])
        .unwrap();
        let pre = Preprocessor::fit(&frame, Encoding::OneHot, None, &options()).unwrap();
        assert_eq!(pre.feature_names().len(), 2 + 5 + 1);
        let m = pre.transform(&frame).unwrap();
        let mut row = vec![0.0; m.cols];
        for i in 0..rows {
            let cells: Vec<Cell> = frame.columns().iter().map(|c| Cell::of(c, i)).collect();
            pre.encode_row(&cells, &mut row).unwrap();
            assert_eq!(m.row(i), row.as_slice(), "row {i}");
        }
    }

    #[test]
    fn unseen_levels_and_gaps_at_scoring_time_do_not_fail() {
        let train = Frame::new(vec![Column::categorical(
            "job",
            vec![Some("fixed".into()), Some("fixed".into())],
        )])
        .unwrap();
        let pre = Preprocessor::fit(&train, Encoding::OneHot, None, &options()).unwrap();
        let later = Frame::new(vec![Column::categorical(
            "job",
            vec![Some("pilot".into()), None],
        )])
        .unwrap();
        let m = pre.transform(&later).unwrap();
        assert_eq!(m.data, vec![0.0, 1.0]);
    }

    #[test]
    fn rare_levels_share_the_other_slot() {
        let mut values: Vec<Option<String>> = vec![Some("a".into()); 99];
        values.push(Some("b".into()));
        let train = Frame::new(vec![Column::categorical("c", values)]).unwrap();
        let opts = PrepareOptions {
            min_category_share: 0.05,
            ..options()
        };
        let pre = Preprocessor::fit(&train, Encoding::OneHot, None, &opts).unwrap();
        assert_eq!(pre.feature_names(), &["c=a", "c=__other__"]);
        let later = Frame::new(vec![Column::categorical("c", vec![Some("zzz".into())])]).unwrap();
        assert_eq!(pre.transform(&later).unwrap().data, vec![0.0, 1.0]);
    }

    #[test]
    fn the_plain_variant_flags_nothing_and_pools_nothing() {
        let mut levels: Vec<Option<String>> = vec![Some("a".into()); 300];
        levels.extend([Some("b".into()), None]);
        let mut income: Vec<f64> = (0..301).map(f64::from).collect();
        income.push(f64::NAN);
        let train = Frame::new(vec![
            Column::numeric("income", income),
            Column::categorical("c", levels),
        ])
        .unwrap();
        let pooled = Preprocessor::fit(&train, Encoding::OneHot, None, &options()).unwrap();
        assert_eq!(
            pooled.feature_names(),
            &[
                "income",
                "income_missing",
                "c=a",
                "c=__other__",
                "c=__missing__"
            ]
        );
        let plain = Preprocessor::fit(&train, Encoding::OneHotPlain, None, &options()).unwrap();
        assert_eq!(plain.variant(), Encoding::OneHotPlain);
        assert_eq!(plain.feature_names(), &["income", "c=a", "c=b"]);
        let later = Frame::new(vec![
            Column::numeric("income", vec![f64::NAN, 1.0]),
            Column::categorical("c", vec![None, Some("zzz".into())]),
        ])
        .unwrap();
        let m = plain.transform(&later).unwrap();
        // The median (150) for a missing number, the most frequent level for
        // a missing category, nothing for an unseen one.
        assert_eq!(m.row(0)[0], plain.transform(&train).unwrap().row(150)[0]);
        assert_eq!(m.row(0)[1..], [1.0, 0.0]);
        assert_eq!(m.row(1)[1..], [0.0, 0.0]);
    }

    #[test]
    fn feature_names_are_derived_on_load_and_stored_ones_still_read() {
        let pre = Preprocessor::fit(&frame(), Encoding::OneHot, None, &options()).unwrap();
        let mut json = serde_json::to_value(&pre).unwrap();
        assert!(json.get("feature_names").is_none(), "{json}");
        let back: Preprocessor = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, pre);
        // Written before: the stored names are the ones kept.
        json["feature_names"] = serde_json::json!(["a", "b", "c", "d", "e"]);
        let old: Preprocessor = serde_json::from_value(json).unwrap();
        assert_eq!(old.feature_names(), ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn the_variant_is_stored_and_old_artifacts_read_it_off_their_encoders() {
        // Complete data: both one-hot variants fit the same encoders.
        let complete = Frame::new(vec![
            Column::numeric("x", vec![1.0, 2.0, 3.0]),
            Column::categorical(
                "c",
                vec![Some("a".into()), Some("a".into()), Some("b".into())],
            ),
        ])
        .unwrap();
        for variant in [Encoding::OneHot, Encoding::OneHotPlain, Encoding::Ordinal] {
            let pre = Preprocessor::fit(&complete, variant, None, &options()).unwrap();
            let json = serde_json::to_value(&pre).unwrap();
            assert_eq!(json["variant"], variant.as_str());
            let back: Preprocessor = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back, pre);
            assert_eq!(back.variant(), variant);
            // Written before the variant was stored.
            let mut old = json;
            old.as_object_mut().unwrap().remove("variant");
            let back: Preprocessor = serde_json::from_value(old).unwrap();
            let inferred = if variant == Encoding::Ordinal {
                Encoding::Ordinal
            } else {
                Encoding::OneHot
            };
            assert_eq!(back.variant(), inferred);
        }
    }

    #[test]
    fn missing_or_mistyped_columns_are_named() {
        let pre = Preprocessor::fit(&frame(), Encoding::OneHot, None, &options()).unwrap();
        let lacking = Frame::new(vec![Column::numeric("income", vec![1.0])]).unwrap();
        let err = pre.transform(&lacking).unwrap_err().to_string();
        assert!(err.contains("`home`"), "{err}");
        let mistyped = Frame::new(vec![
            Column::categorical("income", vec![Some("high".into())]),
            Column::categorical("home", vec![None]),
        ])
        .unwrap();
        let err = pre.transform(&mistyped).unwrap_err().to_string();
        assert!(err.contains("`income`"), "{err}");
    }

    #[test]
    fn numbers_beyond_the_training_range_are_clamped() {
        let pre = Preprocessor::fit(&frame(), Encoding::OneHot, None, &options()).unwrap();
        let later = |income: f64| {
            Frame::new(vec![
                Column::numeric("income", vec![income]),
                Column::categorical("home", vec![Some("own".into())]),
            ])
            .unwrap()
        };
        let at_max = pre.transform(&later(5.0)).unwrap();
        let beyond = pre.transform(&later(1e9)).unwrap();
        assert_eq!(at_max.row(0), beyond.row(0));
    }

    #[test]
    fn infinities_are_treated_as_missing() {
        let pre = Preprocessor::fit(&frame(), Encoding::OneHot, None, &options()).unwrap();
        let later = Frame::new(vec![
            Column::numeric("income", vec![f64::INFINITY]),
            Column::categorical("home", vec![Some("own".into())]),
        ])
        .unwrap();
        let m = pre.transform(&later).unwrap();
        assert!(m.data.iter().all(|v| v.is_finite()));
        assert_eq!(m.row(0)[1], 1.0);
    }

    #[test]
    fn ordinal_encoding_ranks_by_frequency() {
        let opts = PrepareOptions {
            scale: false,
            ..options()
        };
        let pre = Preprocessor::fit(&frame(), Encoding::Ordinal, None, &opts).unwrap();
        assert_eq!(pre.variant(), Encoding::Ordinal);
        assert_eq!(
            pre.feature_names(),
            &["income", "income_missing", "home", "home_missing"]
        );
        let m = pre.transform(&frame()).unwrap();
        assert_eq!(m.column(2), vec![0.0, 1.0, 0.0, 0.0]);
        let json = serde_json::to_string(&pre).unwrap();
        let back: Preprocessor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pre);
    }

    #[test]
    fn woe_needs_labels_and_gives_one_feature_per_column() {
        let err = Preprocessor::fit(&frame(), Encoding::Woe, None, &options()).unwrap_err();
        assert!(matches!(err, PrepareError::LabelsNeeded { .. }), "{err}");
        let err =
            Preprocessor::fit(&frame(), Encoding::Woe, Some(&[1, 0]), &options()).unwrap_err();
        assert!(matches!(err, PrepareError::LabelCount { .. }), "{err}");
        let labels = [0, 1, 1, 0];
        let pre = Preprocessor::fit(&frame(), Encoding::Woe, Some(&labels), &options()).unwrap();
        assert_eq!(pre.variant(), Encoding::Woe);
        assert_eq!(pre.feature_names(), &["income_woe", "home_woe"]);
        assert_eq!(pre.feature_sources(), vec![0, 1]);
        assert_eq!(pre.information_values().len(), 2);
        let json = serde_json::to_string(&pre).unwrap();
        let back: Preprocessor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pre);
    }

    #[test]
    fn unseen_levels_get_the_neutral_woe() {
        let levels: Vec<Option<String>> = ["a", "b"]
            .iter()
            .cycle()
            .take(40)
            .map(|l| Some((*l).to_string()))
            .collect();
        let labels: Vec<u8> = (0..40).map(|i| u8::from(i % 4 == 0)).collect();
        let train = Frame::new(vec![Column::categorical("c", levels)]).unwrap();
        let pre = Preprocessor::fit(&train, Encoding::Woe, Some(&labels), &options()).unwrap();
        let later = Frame::new(vec![Column::categorical(
            "c",
            vec![Some("a".into()), Some("zzz".into()), None],
        )])
        .unwrap();
        let m = pre.transform(&later).unwrap();
        // "a" holds all 10 bads: 20 rows, ln((10.5 / 30) / (10.5 / 10)).
        assert!((m.data[0] - (10.5f64 / 30.0 / (10.5 / 10.0)).ln()).abs() < 1e-12);
        // Unseen, and missing without a missing bin in training: neutral.
        assert_eq!(m.data[1..], [0.0, 0.0]);
    }
}
