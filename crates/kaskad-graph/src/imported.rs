//! An external ONNX model bound to kaskad's raw columns: which column feeds
//! which graph input, and which output is the probability of default.

use kaskad_core::{ColumnData, ColumnKind, Frame};
use serde::{Deserialize, Serialize};

use crate::GraphError;
use crate::program::{OnnxModel, Program, ValueSpec};
use crate::proto::data_type;
use crate::tensor::{Data, Tensor};

/// How the graph's inputs and output are chosen; stored with the model so
/// that loading it binds it the same way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSpec {
    /// The columns of the graph's single 2-D input, in order; `None` when
    /// every input is one column, named as the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// The output to read; `None` picks the only non-label output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Feed {
    Float,
    Double,
    Text,
}

#[derive(Debug)]
enum Binding {
    /// One `[N, 1]` (or `[N]`) input per column, named as the column.
    Columns(Vec<(Feed, usize)>),
    /// One `[N, F]` input holding the columns in order.
    Matrix(Feed),
}

/// A graph ready to score frames.
#[derive(Debug)]
pub struct ImportedModel {
    program: Program,
    binding: Binding,
    columns: Vec<(String, ColumnKind)>,
    output: String,
    description: String,
}

fn feed(input: &ValueSpec) -> Result<Feed, GraphError> {
    match input.elem_type {
        Some(data_type::FLOAT) => Ok(Feed::Float),
        Some(data_type::DOUBLE) => Ok(Feed::Double),
        Some(data_type::STRING) => Ok(Feed::Text),
        other => Err(GraphError::Input {
            input: input.name.clone(),
            message: format!(
                "element type {}: kaskad feeds float or double numbers and string categories",
                other.map_or("unknown".into(), |t| t.to_string())
            ),
        }),
    }
}

fn kind(feed: Feed) -> ColumnKind {
    match feed {
        Feed::Text => ColumnKind::Categorical,
        Feed::Float | Feed::Double => ColumnKind::Numeric,
    }
}

impl ImportedModel {
    /// Decodes `bytes`, binds its inputs to columns and picks its output
    /// as `spec` says, and compiles the nodes that output needs.
    pub fn new(bytes: &[u8], spec: &ImportSpec) -> Result<ImportedModel, GraphError> {
        let model = OnnxModel::decode(bytes)?;
        let inputs = model.inputs();
        let (binding, columns) = bind(&inputs, spec.features.as_deref())?;
        let output = choose_output(&model, spec.output.as_deref())?;
        let program = model.compile(&[output.name.as_str()])?;
        if let Some(&Some(width)) = output.dims.get(1)
            && !(1..=2).contains(&width)
        {
            return Err(GraphError::Output(format!(
                "`{}` has {width} columns; kaskad scores binary models ([N, 2] probabilities or one [N, 1] score)",
                output.name
            )));
        }
        let description = format!(
            "{}; {}; score = {}",
            if model.producer().is_empty() {
                "unknown producer"
            } else {
                model.producer()
            },
            match &binding {
                Binding::Columns(_) => format!("{} per-column inputs", columns.len()),
                Binding::Matrix(_) => format!(
                    "input `{}` [N, {}] = {}",
                    inputs[0].name,
                    columns.len(),
                    columns
                        .iter()
                        .map(|c| c.0.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            },
            reading(&output.name, model.producer_of(&output.name)),
        );
        Ok(ImportedModel {
            program,
            binding,
            columns,
            output: output.name,
            description,
        })
    }

    /// Raw columns the model reads, with their kinds.
    pub fn input_columns(&self) -> &[(String, ColumnKind)] {
        &self.columns
    }

    /// The output the score is read from.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Producer, inputs, and how the score is read, in one line.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The positive-class probability of every row of `frame`: column 1 of
    /// a two-column output (ZipMap's class 1), else the only column.
    pub fn score(&self, frame: &Frame) -> Result<Vec<f64>, GraphError> {
        let n = frame.n_rows();
        let column = |name: &str, expected: ColumnKind| {
            let column = frame.column(name).ok_or_else(|| GraphError::Input {
                input: name.to_string(),
                message: "the rows lack this column".into(),
            })?;
            if column.kind() != expected {
                return Err(GraphError::Input {
                    input: name.to_string(),
                    message: format!(
                        "the model reads {expected:?} values, the rows hold {:?}",
                        column.kind()
                    ),
                });
            }
            Ok(&column.data)
        };
        let feeds = match &self.binding {
            Binding::Columns(feeds) => self
                .columns
                .iter()
                .zip(feeds)
                .map(|((name, kind), &(feed, rank))| {
                    let data = column(name, *kind)?;
                    let shape = if rank == 1 { vec![n] } else { vec![n, 1] };
                    Ok(Tensor::new(shape, convert(feed, data)))
                })
                .collect::<Result<Vec<_>, GraphError>>()?,
            Binding::Matrix(feed) => {
                let width = self.columns.len();
                let mut parts = Vec::with_capacity(width);
                for (name, kind) in &self.columns {
                    parts.push(column(name, *kind)?);
                }
                vec![Tensor::new(vec![n, width], interleave(*feed, &parts, n))]
            }
        };
        let [out] = &self.program.run(feeds)?[..] else {
            unreachable!("the program was compiled for one output")
        };
        let values = out
            .to_f64()
            .map_err(|e| GraphError::Output(format!("`{}`: {e}", self.output)))?;
        let (rows, cols) = out.matrix();
        let rows = if out.shape.len() == 1 {
            out.len()
        } else {
            rows
        };
        let cols = if out.shape.len() == 1 { 1 } else { cols };
        if rows != n || !(1..=2).contains(&cols) {
            return Err(GraphError::Output(format!(
                "`{}` has shape {:?} for {n} rows; expected [{n}, 2] probabilities or one score per row",
                self.output, out.shape
            )));
        }
        Ok(values.chunks(cols).map(|row| row[cols - 1]).collect())
    }
}

/// How the chosen output becomes the score, for the description.
fn reading(output: &str, producer: Option<&str>) -> String {
    match producer {
        Some("ZipMap") => format!("class 1 of ZipMap output `{output}`"),
        _ => format!("column 1 of `{output}` ([N, 2]) or its only column"),
    }
}

fn bind(
    inputs: &[ValueSpec],
    features: Option<&[String]>,
) -> Result<(Binding, Vec<(String, ColumnKind)>), GraphError> {
    if inputs.is_empty() {
        return Err(GraphError::Input {
            input: String::new(),
            message: "the graph has no inputs".into(),
        });
    }
    if let Some(features) = features {
        let [input] = inputs else {
            return Err(GraphError::Input {
                input: names(inputs),
                message: format!(
                    "--features maps columns onto a single 2-D input, but the graph has {} inputs (they map to columns by name)",
                    inputs.len()
                ),
            });
        };
        if input.dims.len() != 2 {
            return Err(GraphError::Input {
                input: input.name.clone(),
                message: format!(
                    "--features needs a 2-D input, this one has {} dimensions",
                    input.dims.len()
                ),
            });
        }
        if let Some(width) = input.dims[1].filter(|&w| w != features.len()) {
            return Err(GraphError::Input {
                input: input.name.clone(),
                message: format!(
                    "the input has {width} columns but --features names {}",
                    features.len()
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = features.iter().find(|f| !seen.insert(f.as_str())) {
            return Err(GraphError::Input {
                input: input.name.clone(),
                message: format!("--features names `{twice}` twice"),
            });
        }
        let feed = feed(input)?;
        let columns = features.iter().map(|f| (f.clone(), kind(feed))).collect();
        return Ok((Binding::Matrix(feed), columns));
    }
    let mut feeds = Vec::with_capacity(inputs.len());
    let mut columns = Vec::with_capacity(inputs.len());
    for input in inputs {
        let rank = input.dims.len();
        let width = input.dims.get(1).copied().flatten();
        if rank > 2 || (rank == 2 && width.is_some_and(|w| w != 1)) {
            return Err(GraphError::Input {
                input: input.name.clone(),
                message: format!(
                    "shape [N, {}]: a per-column input is [N, 1]; for one input holding several columns, name them in order with --features",
                    width.map_or("?".into(), |w| w.to_string())
                ),
            });
        }
        feeds.push((feed(input)?, rank.max(1)));
        columns.push((input.name.clone(), kind(feeds.last().expect("pushed").0)));
    }
    Ok((Binding::Columns(feeds), columns))
}

fn names(values: &[ValueSpec]) -> String {
    values
        .iter()
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The output `wanted` names, or else the only output that is not a label
/// (an int64 or string tensor).
fn choose_output(model: &OnnxModel, wanted: Option<&str>) -> Result<ValueSpec, GraphError> {
    let outputs = model.outputs();
    if let Some(name) = wanted {
        return outputs
            .iter()
            .find(|o| o.name == name)
            .cloned()
            .ok_or_else(|| {
                GraphError::Output(format!("no output `{name}` (outputs: {})", names(&outputs)))
            });
    }
    let scores: Vec<&ValueSpec> = outputs
        .iter()
        .filter(|o| match o.elem_type {
            Some(t) => t == data_type::FLOAT || t == data_type::DOUBLE,
            None => model.producer_of(&o.name) == Some("ZipMap"),
        })
        .collect();
    match scores[..] {
        [one] => Ok(one.clone()),
        [] => Err(GraphError::Output(format!(
            "no float, double or ZipMap output among {}",
            names(&outputs)
        ))),
        _ => Err(GraphError::Output(format!(
            "several outputs could be the score ({}); choose one with --output",
            scores
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A column as `feed` values; missing categories become `""`.
fn convert(feed: Feed, data: &ColumnData) -> Data {
    match (feed, data) {
        (Feed::Float, ColumnData::Numeric(v)) => Data::Float(v.iter().map(|&x| x as f32).collect()),
        (Feed::Double, ColumnData::Numeric(v)) => Data::Double(v.clone()),
        (Feed::Text, ColumnData::Categorical(v)) => {
            Data::Str(v.iter().map(|s| s.clone().unwrap_or_default()).collect())
        }
        _ => unreachable!("column kinds are checked against the feeds before"),
    }
}

/// Columns as the rows of one `[N, F]` matrix.
fn interleave(feed: Feed, parts: &[&ColumnData], n: usize) -> Data {
    let number = |c: &ColumnData, i: usize| match c {
        ColumnData::Numeric(v) => v[i],
        ColumnData::Categorical(_) => f64::NAN,
    };
    let text = |c: &ColumnData, i: usize| match c {
        ColumnData::Categorical(v) => v[i].clone().unwrap_or_default(),
        ColumnData::Numeric(v) => v[i].to_string(),
    };
    let cells = (0..n).flat_map(|i| parts.iter().map(move |c| (*c, i)));
    match feed {
        Feed::Float => Data::Float(cells.map(|(c, i)| number(c, i) as f32).collect()),
        Feed::Double => Data::Double(cells.map(|(c, i)| number(c, i)).collect()),
        Feed::Text => Data::Str(cells.map(|(c, i)| text(c, i)).collect()),
    }
}
