//! Fits gradient-boosted trees on a numeric CSV and scores another, for the
//! LightGBM comparison in `bench/peers/gbdt_check.py`.
//!
//! Both files have a header; the first column is the 0/1 label, the others
//! are features, empty meaning missing. Prints one probability per test row
//! on stdout, and the trees kept and the fit time (best of `repeats`) on
//! stderr, with the time scoring the test rows took.
//!
//!     cargo run --release -p kaskad-train --example gbdt_check -- \
//!         train.csv test.csv [n_trees learning_rate max_leaves min_samples_leaf [repeats]]

use std::error::Error;
use std::time::Instant;

use kaskad_prepare::Matrix;
use kaskad_train::{GbdtParams, GradientBoosting};

fn read(path: &str) -> Result<(Matrix, Vec<u8>), Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let (mut data, mut y, mut cols) = (Vec::new(), Vec::new(), 0);
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut fields = line.split(',');
        let label = fields.next().unwrap_or_default();
        y.push(
            label
                .parse()
                .map_err(|e| format!("{path}:{}: {e}", n + 1))?,
        );
        let before = data.len();
        for field in fields {
            data.push(if field.is_empty() {
                f64::NAN
            } else {
                field
                    .parse()
                    .map_err(|e| format!("{path}:{}: {field:?}: {e}", n + 1))?
            });
        }
        cols = data.len() - before;
    }
    let rows = y.len();
    if data.len() != rows * cols {
        return Err(format!("{path}: rows of different lengths").into());
    }
    Ok((Matrix { rows, cols, data }, y))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [train, test, rest @ ..] = args.as_slice() else {
        return Err("usage: gbdt_check train.csv test.csv [n_trees learning_rate max_leaves min_samples_leaf [repeats]]".into());
    };
    let number = |i: usize, default: f64| -> Result<f64, Box<dyn Error>> {
        Ok(rest
            .get(i)
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let params = GbdtParams {
        n_trees: number(0, 200.0)? as usize,
        learning_rate: number(1, 0.1)?,
        max_leaves: number(2, 31.0)? as usize,
        min_samples_leaf: number(3, 20.0)? as usize,
        ..GbdtParams::default()
    };
    let repeats = number(4, 3.0)? as usize;
    let (x, y) = read(train)?;
    let (x_test, _) = read(test)?;
    let mut best = f64::INFINITY;
    let mut model = None;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let fitted = GradientBoosting::fit(&x, &y, &params)?;
        best = best.min(start.elapsed().as_secs_f64());
        model = Some(fitted);
    }
    let model = model.ok_or("no fit")?;
    let start = Instant::now();
    let p = model.predict_proba(&x_test);
    eprintln!(
        "trees {} fit_seconds {best:.4} predict_seconds {:.4}",
        model.trees.len(),
        start.elapsed().as_secs_f64()
    );
    let out: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
    println!("{}", out.join("\n"));
    Ok(())
}
