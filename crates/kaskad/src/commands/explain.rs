//! `kaskad models explain`: what a registered version learned, in the form
//! its family allows: LR coefficients and scorecard points, the tree's
//! structure, GBDT split counts per feature.

use std::process::ExitCode;

use kaskad_prepare::EncoderView;
use kaskad_registry::ModelArtifact;
use kaskad_train::{Model, Node};
use serde_json::{Value, json};

use crate::cli::ExplainArgs;
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
            "note": "kNN has no global explanation: a score is the default rate of the k stored rows nearest to the application",
            "k": knn.k,
            "stored_rows": knn.labels.len(),
        }),
        Model::Mlp(mlp) => json!({
            "note": "MLP weights have no direct reading; reason codes are not available for this family yet",
            "layers": mlp.layers.iter().map(|l| l.outputs).collect::<Vec<_>>(),
        }),
    };
    let out = json!({
        "model": format!("{}@{}", record.name, record.version),
        "algorithm": record.algorithm,
        "explanation": explanation,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
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

/// How a feature's value reads in terms of its raw column.
enum Reading<'a> {
    /// A numeric column's scaled value: `(raw - mean) / scale`.
    Scaled { mean: f64, scale: f64 },
    /// A 0/1 feature: a level or a missing flag.
    Flag,
    /// The weight of evidence of the column's bin.
    Woe(EncoderView<'a>),
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

fn print_text(out: &Value) {
    println!(
        "{} ({})",
        out["model"].as_str().unwrap_or(""),
        out["algorithm"].as_str().unwrap_or("")
    );
    let e = &out["explanation"];
    if let Some(text) = e["structure"].as_str() {
        print!("{text}");
    } else {
        println!("{}", serde_json::to_string_pretty(e).unwrap_or_default());
    }
}
