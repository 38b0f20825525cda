//! `kaskad models explain`: what a registered version learned, in the form
//! its family allows: LR coefficients and scorecard points, the tree's
//! structure, GBDT split counts per feature; and, with `--input`, why it
//! scored one application as it did: its reason codes (for the MLP,
//! integrated gradients) and, for kNN, the kept training rows nearest to it.

use std::path::Path;
use std::process::ExitCode;

use kaskad_prepare::EncoderView;
use kaskad_registry::ModelArtifact;
use kaskad_train::{Model, Node};
use serde_json::{Value, json};

use crate::cli::ExplainArgs;
use crate::commands::inference::read_applications;
use crate::home::Home;

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let catalog = home.catalog()?;
    let (record, servable) = catalog.load_model(&args.model)?;
    let Some(artifact) = servable.trained() else {
        anyhow::bail!(
            "{}@{} is an imported ONNX model: kaskad cannot say what it learned (see `kaskad models` for its inputs and output)",
            record.name,
            record.version
        );
    };
    let names = artifact.preprocessor.feature_names();
    let explanation = match &artifact.model {
        Model::Lr(lr) => scorecard(artifact, &lr.coefficients, lr.intercept, args),
        Model::LrInt8(lr) => {
            let coefficients: Vec<f64> = lr
                .coefficients
                .iter()
                .map(|&q| f64::from(q) * lr.scale)
                .collect();
            scorecard(artifact, &coefficients, lr.intercept, args)
        }
        Model::Tree(tree) => {
            let features: Vec<(String, Reading)> = names
                .iter()
                .cloned()
                .zip(feature_readings(artifact))
                .collect();
            let mut text = String::new();
            render_tree(&tree.nodes, 0, 0, &features, &mut text);
            json!({ "structure": text })
        }
        Model::Gbdt(gbdt) => {
            let mut splits = vec![0usize; names.len()];
            for tree in &gbdt.trees {
                for (node, &child) in tree.children.iter().enumerate() {
                    if child != 0 {
                        splits[tree.feature[node] as usize] += 1;
                    }
                }
            }
            let mut importance: Vec<(usize, usize)> = splits.into_iter().enumerate().collect();
            importance.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
            json!({
                "trees": gbdt.trees.len(),
                "splits_per_feature": importance
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(f, n)| json!({"feature": names[*f], "splits": n}))
                    .collect::<Vec<_>>(),
            })
        }
        Model::Knn(knn) => json!({
            "note": "kNN has no global explanation: a score is the default rate of the k stored rows nearest to the application (see them with --input FILE --row N)",
            "k": knn.k,
            "stored_rows": knn.labels.len(),
        }),
        Model::Mlp(mlp) => json!({
            "note": MLP_NOTE,
            "layers": mlp.layers.iter().map(|l| l.outputs).collect::<Vec<_>>(),
        }),
        Model::MlpInt8(mlp) => json!({
            "note": MLP_NOTE,
            "layers": mlp.layers.iter().map(|l| l.outputs).collect::<Vec<_>>(),
            "precision": "int8",
        }),
    };
    let mut out = json!({
        "model": format!("{}@{}", record.name, record.version),
        "algorithm": record.algorithm,
        "explanation": explanation,
    });
    if let Some(file) = &args.input {
        out["application"] = application(artifact, file, args.row)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        print_text(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Scorecard points in the usual convention: higher is safer; `pdo` points
/// double the odds of good; `base` points at `odds`:1 good to bad. Points
/// of a one-hot level or missing flag are those of the row that has it;
/// a numeric feature gets points per unit of the raw column; a
/// weight-of-evidence feature gets points per bin, the classic scorecard.
fn scorecard(artifact: &ModelArtifact, w: &[f64], intercept: f64, args: &ExplainArgs) -> Value {
    let factor = args.pdo / std::f64::consts::LN_2;
    let offset = args.base - factor * args.odds.ln();
    let names = artifact.preprocessor.feature_names();
    let readings = feature_readings(artifact);
    let features: Vec<Value> = names
        .iter()
        .zip(w)
        .zip(&readings)
        .map(|((name, &coefficient), reading)| match reading {
            Reading::Scaled { scale, .. } => json!({
                "feature": name,
                "coefficient": coefficient,
                "points_per_unit": -factor * coefficient / scale,
            }),
            Reading::Flag => json!({
                "feature": name,
                "coefficient": coefficient,
                "points": -factor * coefficient,
            }),
            Reading::Woe(view) => json!({
                "feature": name,
                "coefficient": coefficient,
                "bins": woe_bins(*view)
                    .into_iter()
                    .map(|(bin, woe)| json!({
                        "bin": bin,
                        "woe": woe,
                        "points": -factor * coefficient * woe,
                    }))
                    .collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({
        "intercept": intercept,
        "scorecard": {"base": args.base, "pdo": args.pdo, "odds": args.odds},
        // Points of a row whose features all sit at 0 (the training mean of
        // every scaled number; no level present; WoE 0, the neutral bin).
        "base_points": offset - factor * intercept,
        "features": features,
    })
}

/// Why `artifact` scored data row `row` (from 1) of `file` as it did: the
/// score, every column that raised it (the reason codes `inference` takes
/// the first three of) and, for kNN, the `k` kept training rows nearest to
/// it with the features on which each differs most. A kNN model keeps
/// encoded rows and labels only, so values are read back from the
/// encoding: scaled numbers in raw units, levels and missing flags as
/// present or absent, weight-of-evidence features as their WoE.
fn application(artifact: &ModelArtifact, file: &Path, row: usize) -> anyhow::Result<Value> {
    let frame = read_applications(artifact.input_columns(), file)?;
    if row == 0 || row > frame.n_rows() {
        anyhow::bail!(
            "--row {row}: {} has {} data rows (counted from 1)",
            file.display(),
            frame.n_rows()
        );
    }
    let one = frame.take(&[row - 1]);
    let score = artifact.score(&one)?[0];
    let reasons = artifact.explain(&one, usize::MAX)?.remove(0);
    let mut out = json!({"row": row, "score": score, "reasons": reasons});
    let Model::Knn(knn) = &artifact.model else {
        return Ok(out);
    };
    let x = artifact.preprocessor.transform(&one)?;
    let query = x.row(0);
    let names = artifact.preprocessor.feature_names();
    let readings = feature_readings(artifact);
    let neighbours: Vec<Value> = knn
        .neighbours(query, knn.k)
        .iter()
        .map(|n| {
            let kept = knn.rows.row(n.index);
            let mut features: Vec<usize> =
                (0..query.len()).filter(|&j| query[j] != kept[j]).collect();
            features.sort_by(|&a, &b| {
                (query[b] - kept[b])
                    .abs()
                    .total_cmp(&(query[a] - kept[a]).abs())
            });
            json!({
                "kept_row": n.index,
                "distance": n.distance,
                "default": n.label == 1,
                "differences": features
                    .iter()
                    .take(MOST_DIFFERENT)
                    .map(|&j| json!({
                        "feature": names[j],
                        "application": readings[j].read(query[j]),
                        "neighbour": readings[j].read(kept[j]),
                    }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    out["neighbours"] = json!(neighbours);
    Ok(out)
}

/// The MLP's weights have no reading of their own; its reasons do.
const MLP_NOTE: &str = "MLP weights have no direct reading; an application's reasons (--input FILE --row N) are integrated gradients of its log-odds against the mean training row";

/// Features named per neighbour: those on which it differs most.
const MOST_DIFFERENT: usize = 3;

/// How a feature's value reads in terms of its raw column.
enum Reading<'a> {
    /// A numeric column's scaled value: `(raw - mean) / scale`.
    Scaled { mean: f64, scale: f64 },
    /// A 0/1 feature: a level or a missing flag.
    Flag,
    /// The weight of evidence of the column's bin.
    Woe(EncoderView<'a>),
}

impl Reading<'_> {
    /// An encoded value as the raw column reads it.
    fn read(&self, value: f64) -> Value {
        match self {
            Reading::Scaled { mean, scale } => json!(value * scale + mean),
            Reading::Flag => json!(if value >= 0.5 { "present" } else { "absent" }),
            Reading::Woe(_) => json!(format!("WoE {value:.3}")),
        }
    }
}

fn feature_readings(artifact: &ModelArtifact) -> Vec<Reading<'_>> {
    let views: Vec<EncoderView<'_>> = artifact.preprocessor.encoders().map(|(_, v)| v).collect();
    let sources = artifact.preprocessor.feature_sources();
    sources
        .iter()
        .enumerate()
        .map(|(j, &source)| {
            let first = j == 0 || sources[j - 1] != source;
            match views[source] {
                EncoderView::Numeric { mean, scale, .. } if first => {
                    Reading::Scaled { mean, scale }
                }
                view @ (EncoderView::WoeNumeric { .. } | EncoderView::WoeCategorical { .. }) => {
                    Reading::Woe(view)
                }
                _ => Reading::Flag,
            }
        })
        .collect()
}

/// Every bin of a weight-of-evidence column, described, with its WoE.
fn woe_bins(view: EncoderView<'_>) -> Vec<(String, f64)> {
    let mut bins = Vec::new();
    let missing = match view {
        EncoderView::WoeNumeric {
            edges,
            woe,
            missing_woe,
        } => {
            for (k, &w) in woe.iter().enumerate() {
                let bin = match (k.checked_sub(1).map(|i| edges[i]), edges.get(k)) {
                    (None, Some(high)) => format!("<= {high}"),
                    (Some(low), Some(high)) => format!("({low}, {high}]"),
                    (Some(low), None) => format!("> {low}"),
                    (None, None) => "any".to_string(),
                };
                bins.push((bin, w));
            }
            missing_woe
        }
        EncoderView::WoeCategorical {
            levels,
            woe,
            missing_woe,
        } => {
            bins.extend(levels.iter().cloned().zip(woe.iter().copied()));
            bins.push(("other or unseen".to_string(), 0.0));
            missing_woe
        }
        _ => return bins,
    };
    bins.push(("missing".to_string(), missing));
    bins
}

/// Thresholds in raw units: a scaled number is mapped back, a 0/1 feature
/// reads as absent / present.
fn render_tree(
    nodes: &[Node],
    at: usize,
    depth: usize,
    features: &[(String, Reading<'_>)],
    out: &mut String,
) {
    let indent = "  ".repeat(depth);
    match &nodes[at] {
        Node::Leaf {
            samples,
            probability,
        } => out.push_str(&format!(
            "{indent}→ default rate {probability:.3} ({samples} rows)\n"
        )),
        Node::Split {
            feature,
            threshold,
            left,
            right,
            samples,
            ..
        } => {
            let (name, reading) = &features[*feature];
            let condition = match reading {
                Reading::Scaled { mean, scale } => {
                    format!("{name} <= {:.4}", threshold * scale + mean)
                }
                Reading::Woe(_) => format!("{name} <= {threshold:.4}"),
                Reading::Flag => format!("not {name}"),
            };
            out.push_str(&format!("{indent}if {condition} ({samples} rows)\n"));
            render_tree(nodes, *left, depth + 1, features, out);
            out.push_str(&format!("{indent}else\n"));
            render_tree(nodes, *right, depth + 1, features, out);
        }
    }
}

fn print_text(out: &Value) -> std::io::Result<()> {
    outln!(
        "{} ({})",
        out["model"].as_str().unwrap_or(""),
        out["algorithm"].as_str().unwrap_or("")
    )?;
    let e = &out["explanation"];
    if let Some(text) = e["structure"].as_str() {
        out!("{text}")?;
    } else {
        outln!("{}", serde_json::to_string_pretty(e).unwrap_or_default())?;
    }
    let a = &out["application"];
    if a.is_null() {
        return Ok(());
    }
    outln!(
        "row {}: score {:.4}",
        a["row"],
        a["score"].as_f64().unwrap_or(f64::NAN)
    )?;
    let reasons: Vec<String> = a["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} (+{:.4})",
                r["column"].as_str().unwrap_or("?"),
                r["contribution"].as_f64().unwrap_or(f64::NAN)
            )
        })
        .collect();
    outln!(
        "reasons (raised the score, strongest first): {}",
        if reasons.is_empty() {
            "none".to_string()
        } else {
            reasons.join(", ")
        }
    )?;
    let Some(neighbours) = a["neighbours"].as_array() else {
        return Ok(());
    };
    outln!(
        "{} nearest kept training rows (encoded; the model keeps no raw values):",
        neighbours.len()
    )?;
    outln!(
        "  {:>8} {:>9} {:>7}  most different (application vs neighbour)",
        "kept row",
        "distance",
        "default"
    )?;
    for n in neighbours {
        let differences: Vec<String> = n["differences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                // Raw numbers to 4 decimals, without trailing zeros.
                let show = |v: &Value| match v.as_f64() {
                    Some(x) => format!("{}", (x * 1e4).round() / 1e4),
                    None => v.as_str().unwrap_or("?").to_string(),
                };
                format!(
                    "{} {} vs {}",
                    d["feature"].as_str().unwrap_or("?"),
                    show(&d["application"]),
                    show(&d["neighbour"])
                )
            })
            .collect();
        outln!(
            "  {:>8} {:>9.4} {:>7}  {}",
            n["kept_row"].as_u64().unwrap_or_default(),
            n["distance"].as_f64().unwrap_or(f64::NAN),
            if n["default"] == true { "yes" } else { "no" },
            differences.join("; ")
        )?;
    }
    Ok(())
}
