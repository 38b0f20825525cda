//! `kaskad batches` (and `--rejected`), `kaskad models` and `kaskad
//! searches`: the catalog, as a table or JSON.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::{BatchesArgs, ListArgs};
use crate::home::Home;

pub fn batches(args: &BatchesArgs) -> anyhow::Result<ExitCode> {
    if args.rejected {
        return rejected(&args.list);
    }
    let args = &args.list;
    let home = Home::new(&args.home.home);
    home.options()?;
    let catalog = home.catalog()?;
    let batches = catalog.batches()?;
    let set_aside = catalog.rejected_inputs()?.len();
    if set_aside > 0 {
        eprintln!("{set_aside} rejected input(s): `kaskad batches --rejected` lists them");
    }
    if args.json {
        let rows: Vec<Value> = batches
            .iter()
            .map(|b| {
                json!({
                    "id": b.id, "origin": b.origin, "rows": b.rows, "columns": b.columns,
                    "content_hash": b.content_hash, "time_range": b.time_range,
                    "collected_at": b.collected_at, "processed": b.processed,
                    "raw_path": b.raw_path, "meta": b.meta, "quality": b.quality, "drift": b.drift,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        let width = batches
            .iter()
            .map(|b| b.origin.chars().count())
            .max()
            .unwrap_or(0)
            .max("origin".len());
        outln!(
            "{:>4}  {:<width$} {:>7} {:>4}  {:<22} {:<9}",
            "id",
            "origin",
            "rows",
            "cols",
            "time range",
            "processed"
        )?;
        for b in &batches {
            let range = b
                .time_range
                .as_ref()
                .map_or(String::new(), |(a, z)| format!("{a} … {z}"));
            outln!(
                "{:>4}  {:<width$} {:>7} {:>4}  {:<22} {:<9}",
                b.id,
                b.origin,
                b.rows,
                b.columns,
                range,
                b.processed
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The inputs collect rejected, oldest first, each with its full error.
fn rejected(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let rejected = home.catalog()?.rejected_inputs()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rejected)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rejected {
        outln!("{:>4}  {}  {}", r.id, r.rejected_at, r.origin)?;
        outln!("      {}", r.error)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn searches(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let searches = home.catalog()?.searches()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&searches)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let auc = |a: Option<f64>| a.map_or("-".into(), |x| format!("{x:.4}"));
    for s in &searches {
        let features: Vec<String> = s
            .meta_features
            .iter()
            .map(|(name, value)| format!("{name}={value:.3}"))
            .collect();
        outln!(
            "run {} (batch {}), budget {}: {}",
            s.run_id,
            s.batch_id.map_or("-".into(), |b| b.to_string()),
            if s.budget == 0 {
                "all".to_string()
            } else {
                s.budget.to_string()
            },
            features.join(" ")
        )?;
        outln!(
            "  {:>3} {:<6} {:<7} {:>9} {:>8} {:>7}  params",
            "#",
            "family",
            "variant",
            "predicted",
            "CV AUC",
            "sd"
        )?;
        for (position, c) in s.candidates.iter().enumerate() {
            outln!(
                "  {:>3} {:<6} {:<7} {:>9} {:>8} {:>7}  {}",
                position + 1,
                c.family,
                c.variant,
                auc(c.predicted_auc),
                if c.evaluated {
                    auc(c.cv_auc)
                } else {
                    "skipped".into()
                },
                auc(c.cv_auc_sd),
                c.params
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn models(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let versions = home.catalog()?.versions(None)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&versions)?)?;
    } else {
        outln!(
            "{:<24} {:<6} {:>8} {:>8} {:>8}  {:<12} params",
            "model",
            "algo",
            "AUC",
            "Gini",
            "KS",
            "aliases"
        )?;
        for v in &versions {
            let metric = |k: &str| {
                v.metrics
                    .get(k)
                    .and_then(Value::as_f64)
                    .map_or("-".into(), |x| format!("{x:.4}"))
            };
            // Variants made from another version (INT8, pruned, distilled) say so.
            let text = |k: &str| v.metrics.get(k).and_then(Value::as_str);
            let derived = match (text("model_variant"), text("derived_from")) {
                (Some(variant), Some(from)) => format!("  ({variant} of {from})"),
                (Some(variant), None) => format!("  ({variant})"),
                _ => String::new(),
            };
            outln!(
                "{:<24} {:<6} {:>8} {:>8} {:>8}  {:<12} {}{derived}",
                format!("{}@{}", v.name, v.version),
                v.algorithm,
                metric("auc"),
                metric("gini"),
                metric("ks"),
                v.aliases.join(","),
                v.params
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
