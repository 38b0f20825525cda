//! A home given by a relative path works from any directory afterwards.

use std::process::Command;

use crate::support::{data, last_line, stderr};

fn kaskad_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kaskad"))
        .current_dir(dir)
        .args(args)
        .env_remove("KASKAD_HOME")
        .output()
        .unwrap()
}

#[test]
fn a_home_made_with_a_relative_path_is_usable_from_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = data("credit_data.csv");
    let out = kaskad_in(
        dir.path(),
        &[
            "init",
            "--home",
            "h",
            "--dataset",
            dataset.to_str().unwrap(),
            "--target",
            "Status",
            "--positive",
            "bad",
            "--batch-rows",
            "2000",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kaskad_in(dir.path(), &["update", "--home", "h"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));

    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = kaskad_in(&elsewhere, &["update", "--home", "../h"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let out = kaskad_in(
        &elsewhere,
        &[
            "inference",
            "--home",
            "../h",
            "--file",
            dataset.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
