//! Running the binary and preparing data for the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled data folder.
pub fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

/// Set to 1 to skip the checks with other projects' tools (promtool,
/// tritonclient) where they are not installed; `.ci/run` installs them.
const SKIP_PEER_TOOLS: &str = "KASKAD_SKIP_PEER_TOOLS";

/// Whether `probe` (a command that succeeds when a peer tool is there)
/// runs; a missing tool fails the test with how to install it, unless
/// KASKAD_SKIP_PEER_TOOLS=1.
pub fn peer_tool(probe: &mut Command, install: &str) -> bool {
    let why = match probe.output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        Err(e) => e.to_string(),
    };
    let what = format!("{probe:?}");
    if std::env::var(SKIP_PEER_TOOLS).as_deref() == Ok("1") {
        eprintln!("skipped ({SKIP_PEER_TOOLS}=1): {what} failed: {why}");
        return false;
    }
    panic!("{what} failed ({why}): `{install}`, or {SKIP_PEER_TOOLS}=1 to skip this check");
}

/// Runs `kaskad` with `args`.
pub fn kaskad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaskad"))
        .args(args)
        .env_remove("KASKAD_HOME")
        .output()
        .expect("the kaskad binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The last line of stdout: the machine-readable answer of every command.
pub fn last_line(output: &Output) -> String {
    stdout(output)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Splits a CSV file into its first `share` of rows and the rest, as files in `dir`.
pub fn split(source: &Path, share: f64, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(source).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let cut = (rows.len() as f64 * share).floor() as usize;
    let write = |name: &str, part: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{header}\n{}\n", part.join("\n"))).unwrap();
        path
    };
    (
        write("stream.csv", &rows[..cut]),
        write("newest.csv", &rows[cut..]),
    )
}

/// `kaskad init` on credit data; panics with stderr when it fails.
pub fn init(home: &Path, dataset: &Path, extra: &[&str]) {
    let mut args = vec![
        "init",
        "--home",
        home.to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--target",
        "Status",
        "--positive",
        "bad",
    ];
    args.extend_from_slice(extra);
    let out = kaskad(&args);
    assert!(out.status.success(), "init failed: {}", stderr(&out));
}

/// `kaskad init` on germancredit (`creditability` = bad) in batches of `batch_rows`.
pub fn init_germancredit(home: &Path, batch_rows: &str) {
    let out = kaskad(&[
        "init",
        "--home",
        home.to_str().unwrap(),
        "--dataset",
        data("germancredit.csv").to_str().unwrap(),
        "--target",
        "creditability",
        "--positive",
        "bad",
        "--batch-rows",
        batch_rows,
    ]);
    assert!(out.status.success(), "init failed: {}", stderr(&out));
}

/// Replaces `from` by `to` in the home's `kaskad.toml`. Panics when `from`
/// is not there, so a renamed option cannot leave a test silently running
/// on the defaults.
pub fn edit_config(home: &Path, from: &str, to: &str) {
    let path = home.join("kaskad.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "kaskad.toml has no `{from}`:\n{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// AUC of `score` against `Status == bad` in a scored CSV (Mann–Whitney, ties halved).
pub fn scored_auc(path: &Path) -> f64 {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (status, score) = (at("Status"), at("score"));
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    for r in reader.records() {
        let r = r.unwrap();
        let s: f64 = r[score].parse().unwrap();
        if &r[status] == "bad" {
            pos.push(s)
        } else {
            neg.push(s)
        }
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}
