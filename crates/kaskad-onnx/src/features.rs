//! The preprocessing as graph nodes: one `[N, 1]` input per raw column in,
//! the `[N, F]` double feature matrix out, column for column what
//! `Preprocessor::transform` computes, in the same order and in the same
//! floating-point operations, so the two agree to the last bit.

use kaskad_prepare::{EncoderView, Preprocessor};

use crate::OnnxError;
use crate::graph::{Graph, int};
use crate::proto::data_type;

/// A raw column as a graph input.
pub(crate) struct Input {
    pub name: String,
    /// A [`data_type`] value: `DOUBLE` or `STRING`.
    pub elem_type: i32,
}

/// The graph inputs the preprocessing reads, in the preprocessor's order.
pub(crate) fn inputs(pre: &Preprocessor) -> Vec<Input> {
    pre.encoders()
        .map(|(name, encoder)| Input {
            name: name.to_string(),
            elem_type: match encoder {
                EncoderView::Numeric { .. } | EncoderView::WoeNumeric { .. } => data_type::DOUBLE,
                EncoderView::OneHot { .. }
                | EncoderView::Ordinal { .. }
                | EncoderView::WoeCategorical { .. } => data_type::STRING,
            },
        })
        .collect()
}

/// Appends the preprocessing to `graph`; returns the feature matrix's name.
pub(crate) fn build(graph: &mut Graph, pre: &Preprocessor) -> Result<String, OnnxError> {
    let mut parts: Vec<String> = Vec::new();
    let mut width = 0;
    for (column, encoder) in pre.encoders() {
        let (built, w) = match encoder {
            EncoderView::Numeric {
                low,
                high,
                fill,
                missing_indicator,
                mean,
                scale,
            } => numeric(
                graph,
                column,
                [low, high, fill],
                missing_indicator,
                mean,
                scale,
            ),
            EncoderView::OneHot {
                levels,
                other_slot,
                missing_slot,
            } => {
                check_levels(column, levels)?;
                one_hot(graph, column, levels, other_slot, missing_slot)
            }
            EncoderView::Ordinal {
                levels,
                missing_indicator,
                mean,
                scale,
            } => {
                check_levels(column, levels)?;
                ordinal(graph, column, levels, missing_indicator, mean, scale)
            }
            EncoderView::WoeNumeric {
                edges,
                woe,
                missing_woe,
            } => woe_numeric(graph, column, edges, woe, missing_woe),
            EncoderView::WoeCategorical {
                levels,
                woe,
                missing_woe,
            } => {
                check_levels(column, levels)?;
                woe_categorical(graph, column, levels, woe, missing_woe)
            }
        };
        parts.extend(built);
        width += w;
    }
    let expected = pre.feature_names().len();
    if width != expected {
        return Err(OnnxError::FeatureCount {
            built: width,
            expected,
        });
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(graph.op_with("Concat", &refs, vec![int("axis", 1)], "features"))
}

/// The empty string is how a missing category reaches the graph, so it
/// cannot also be a level.
fn check_levels(column: &str, levels: &[String]) -> Result<(), OnnxError> {
    if levels.iter().any(String::is_empty) {
        return Err(OnnxError::EmptyLevel {
            column: column.to_string(),
        });
    }
    Ok(())
}

/// `(v - mean) / scale`, left out when it is the identity (exactly so in
/// floating point too).
fn scaled(graph: &mut Graph, column: &str, v: String, mean: f64, scale: f64) -> String {
    if mean == 0.0 && scale == 1.0 {
        return v;
    }
    let mean = graph.doubles(&format!("{column}/mean"), &[], vec![mean]);
    let scale = graph.doubles(&format!("{column}/scale"), &[], vec![scale]);
    let centred = graph.op("Sub", &[&v, &mean], &format!("{column}/centred"));
    graph.op("Div", &[&centred, &scale], &format!("{column}/scaled"))
}

/// The `[N, 1]` boolean "finite": non-finite numbers (NaN, ±inf) are
/// missing, as in `Preprocessor`.
fn present(graph: &mut Graph, column: &str) -> String {
    // `-inf < x < inf` is false exactly for NaN and ±inf, with comparisons
    // every runtime has for doubles (tract lacks `IsInf` and `Abs` on them).
    let infinity = graph.doubles(&format!("{column}/infinity"), &[], vec![f64::INFINITY]);
    let minus_infinity = graph.doubles(
        &format!("{column}/minus_infinity"),
        &[],
        vec![f64::NEG_INFINITY],
    );
    let below = graph.op(
        "Less",
        &[column, &infinity],
        &format!("{column}/below_infinity"),
    );
    let above = graph.op(
        "Greater",
        &[column, &minus_infinity],
        &format!("{column}/above_minus_infinity"),
    );
    graph.op("And", &[&below, &above], &format!("{column}/present"))
}

fn numeric(
    graph: &mut Graph,
    column: &str,
    [low, high, fill]: [f64; 3],
    missing_indicator: bool,
    mean: f64,
    scale: f64,
) -> (Vec<String>, usize) {
    let present = present(graph, column);
    let low = graph.doubles(&format!("{column}/low"), &[], vec![low]);
    let high = graph.doubles(&format!("{column}/high"), &[], vec![high]);
    let clamped = graph.op("Clip", &[column, &low, &high], &format!("{column}/clamped"));
    let fill = graph.doubles(&format!("{column}/fill"), &[], vec![fill]);
    let imputed = graph.op(
        "Where",
        &[&present, &clamped, &fill],
        &format!("{column}/imputed"),
    );
    let mut parts = vec![scaled(graph, column, imputed, mean, scale)];
    if missing_indicator {
        let missing = graph.op("Not", &[&present], &format!("{column}/missing"));
        parts.push(graph.cast_double(&missing, &format!("{column}/missing_flag")));
    }
    let width = parts.len();
    (parts, width)
}

/// What every categorical encoding starts from: the `[N, L]` 0/1 match of
/// each level (none without levels) and the `[N, 1]` missing flag.
struct Matches {
    levels: Option<String>,
    missing: String,
}

fn matches(graph: &mut Graph, column: &str, levels: &[String]) -> Matches {
    let empty = graph.strings(&format!("{column}/empty"), &[], &[String::new()]);
    let is_empty = graph.op("Equal", &[column, &empty], &format!("{column}/is_empty"));
    let missing = graph.cast_double(&is_empty, &format!("{column}/missing"));
    let levels = (!levels.is_empty()).then(|| {
        let known = graph.strings(&format!("{column}/levels"), &[1, levels.len()], levels);
        let equal = graph.op("Equal", &[column, &known], &format!("{column}/is_level"));
        graph.cast_double(&equal, &format!("{column}/level_flags"))
    });
    Matches { levels, missing }
}

impl Matches {
    /// The `[N, 1]` flag of a present value that is no level:
    /// `1 - missing - Σ matches`, exact in doubles.
    fn other(&self, graph: &mut Graph, column: &str) -> String {
        let one = graph.doubles(&format!("{column}/one"), &[], vec![1.0]);
        let present = graph.op("Sub", &[&one, &self.missing], &format!("{column}/present"));
        let Some(matched) = &self.levels else {
            return present;
        };
        let axis = graph.int64s(&format!("{column}/axis"), &[1], vec![1]);
        let count = graph.op_with(
            "ReduceSum",
            &[matched, &axis],
            vec![int("keepdims", 1)],
            &format!("{column}/level_count"),
        );
        graph.op("Sub", &[&present, &count], &format!("{column}/other"))
    }
}

fn one_hot(
    graph: &mut Graph,
    column: &str,
    levels: &[String],
    other_slot: bool,
    missing_slot: bool,
) -> (Vec<String>, usize) {
    let m = matches(graph, column, levels);
    let mut parts = Vec::new();
    if let Some(mut slots) = m.levels.clone() {
        if !missing_slot {
            // Training saw no gap here: a missing value counts as the most
            // frequent level, the first slot.
            let mut first = vec![0.0; levels.len()];
            first[0] = 1.0;
            let first = graph.doubles(&format!("{column}/first_level"), &[1, levels.len()], first);
            let imputed = graph.op(
                "Mul",
                &[&m.missing, &first],
                &format!("{column}/imputed_level"),
            );
            slots = graph.op("Add", &[&slots, &imputed], &format!("{column}/slots"));
        }
        parts.push(slots);
    }
    if other_slot {
        parts.push(m.other(graph, column));
    }
    if missing_slot {
        parts.push(m.missing);
    }
    let width = levels.len() + usize::from(other_slot) + usize::from(missing_slot);
    (parts, width)
}

fn ordinal(
    graph: &mut Graph,
    column: &str,
    levels: &[String],
    missing_indicator: bool,
    mean: f64,
    scale: f64,
) -> (Vec<String>, usize) {
    let m = matches(graph, column, levels);
    let rank_of_other = graph.doubles(
        &format!("{column}/other_rank"),
        &[],
        vec![levels.len() as f64],
    );
    let other = m.other(graph, column);
    let mut rank = graph.op("Mul", &[&other, &rank_of_other], &format!("{column}/rank"));
    if let Some(matched) = &m.levels {
        let ranks = graph.doubles(
            &format!("{column}/ranks"),
            &[levels.len(), 1],
            (0..levels.len()).map(|r| r as f64).collect(),
        );
        let level_rank = graph.op(
            "MatMul",
            &[matched, &ranks],
            &format!("{column}/level_rank"),
        );
        rank = graph.op("Add", &[&level_rank, &rank], &format!("{column}/rank"));
    }
    let mut parts = vec![scaled(graph, column, rank, mean, scale)];
    if missing_indicator {
        parts.push(m.missing);
    }
    let width = parts.len();
    (parts, width)
}

/// The bin index (how many edges lie below the value), as a one-hot row
/// times the WoE column: one product by 1 and sums of zeros, so exactly the
/// WoE `Preprocessor` looks up; a non-finite value takes the missing WoE.
fn woe_numeric(
    graph: &mut Graph,
    column: &str,
    edges: &[f64],
    woe: &[f64],
    missing_woe: f64,
) -> (Vec<String>, usize) {
    let present = present(graph, column);
    let bins = woe.len();
    let binned = if edges.is_empty() {
        graph.doubles(&format!("{column}/woe_single"), &[1, 1], woe.to_vec())
    } else {
        let edges = graph.doubles(
            &format!("{column}/woe_edges"),
            &[1, edges.len()],
            edges.to_vec(),
        );
        let above = graph.op(
            "Greater",
            &[column, &edges],
            &format!("{column}/above_edge"),
        );
        let above = graph.cast_double(&above, &format!("{column}/above_edge_flags"));
        let axis = graph.int64s(&format!("{column}/axis"), &[1], vec![1]);
        let bin = graph.op_with(
            "ReduceSum",
            &[&above, &axis],
            vec![int("keepdims", 1)],
            &format!("{column}/bin"),
        );
        let indices = graph.doubles(
            &format!("{column}/bin_indices"),
            &[1, bins],
            (0..bins).map(|b| b as f64).collect(),
        );
        let is_bin = graph.op("Equal", &[&bin, &indices], &format!("{column}/is_bin"));
        let one_hot = graph.cast_double(&is_bin, &format!("{column}/bin_flags"));
        let woe = graph.doubles(&format!("{column}/woe"), &[bins, 1], woe.to_vec());
        graph.op("MatMul", &[&one_hot, &woe], &format!("{column}/bin_woe"))
    };
    let missing = graph.doubles(&format!("{column}/missing_woe"), &[], vec![missing_woe]);
    let value = graph.op(
        "Where",
        &[&present, &binned, &missing],
        &format!("{column}/woe_value"),
    );
    (vec![value], 1)
}

/// The level matches times the WoE column (no match, an unseen level, is
/// 0), plus the missing flag times the missing WoE.
fn woe_categorical(
    graph: &mut Graph,
    column: &str,
    levels: &[String],
    woe: &[f64],
    missing_woe: f64,
) -> (Vec<String>, usize) {
    let m = matches(graph, column, levels);
    let missing_woe = graph.doubles(&format!("{column}/missing_woe"), &[], vec![missing_woe]);
    let mut value = graph.op(
        "Mul",
        &[&m.missing, &missing_woe],
        &format!("{column}/woe_missing"),
    );
    if let Some(matched) = &m.levels {
        let woe = graph.doubles(&format!("{column}/woe"), &[levels.len(), 1], woe.to_vec());
        let level_woe = graph.op("MatMul", &[matched, &woe], &format!("{column}/level_woe"));
        value = graph.op("Add", &[&level_woe, &value], &format!("{column}/woe_value"));
    }
    (vec![value], 1)
}
