//! Bad input gets a clear error that names the file, line or value, and
//! nothing already stored is lost.

use crate::support::{data, init, kaskad, last_line, split, stderr, stdout};

fn init_error(dataset: &std::path::Path, target: &str, positive: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = kaskad(&[
        "init",
        "--home",
        home.to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--target",
        target,
        "--positive",
        positive,
    ]);
    assert!(
        !out.status.success(),
        "init should fail on {}",
        dataset.display()
    );
    assert!(
        !home.join("kaskad.toml").exists(),
        "no home is created on bad input"
    );
    stderr(&out)
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_csv_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.csv",
        "Status,Income\nbad,10\ngood,20,30\n",
    );
    let err = init_error(&file, "Status", "bad");
    assert!(
        err.contains("broken.csv:3:") && err.contains("expected 2 fields, found 3"),
        "{err}"
    );
}

#[test]
fn missing_target_column_lists_the_known_columns() {
    let err = init_error(&data("credit_data.csv"), "Default", "bad");
    assert!(
        err.contains("unknown column `Default`") && err.contains("Status"),
        "{err}"
    );
}

#[test]
fn target_without_positive_rows_says_which_values_exist() {
    let err = init_error(&data("credit_data.csv"), "Status", "defaulted");
    assert!(
        err.contains("no rows equal to defaulted") && err.contains("good"),
        "{err}"
    );
}

#[test]
fn empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = init_error(&write(dir.path(), "empty.csv", ""), "Status", "bad");
    assert!(
        err.contains("empty.csv: the file holds no data rows"),
        "{err}"
    );
    let err = init_error(
        &write(dir.path(), "header.csv", "Status,Income\n"),
        "Status",
        "bad",
    );
    assert!(
        err.contains("header.csv: the file holds no data rows"),
        "{err}"
    );
}

#[test]
fn infinity_and_words_in_numbers_are_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Status,Income\n");
    for i in 0..50 {
        text.push_str(&format!(
            "{},{}\n",
            if i % 3 == 0 { "bad" } else { "good" },
            100 + i
        ));
    }
    let file = write(dir.path(), "inf.csv", &format!("{text}good,inf\n"));
    let err = init_error(&file, "Status", "bad");
    assert!(
        err.contains("inf.csv:52:") && err.contains("infinite"),
        "{err}"
    );
    let file = write(dir.path(), "word.csv", &format!("{text}good,lots\n"));
    let err = init_error(&file, "Status", "bad");
    assert!(
        err.contains("word.csv:52:") && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn unknown_model_reference_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "2500"]);
    let file = data("credit_data.csv");
    let out = kaskad(&["inference", "--home", h, "--file", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no model is registered yet"),
        "{}",
        stderr(&out)
    );
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let out = kaskad(&[
        "inference",
        "--home",
        h,
        "--file",
        file.to_str().unwrap(),
        "--model",
        "default_risk@99",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`default_risk` has no version or alias `99`"),
        "{}",
        stderr(&out)
    );
    let out = kaskad(&[
        "inference",
        "--home",
        h,
        "--file",
        file.to_str().unwrap(),
        "--model",
        "pd_model",
    ]);
    assert!(
        stderr(&out).contains("no model called `pd_model` (known: default_risk)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scoring_a_file_without_a_needed_column_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &data("credit_data.csv"), &["--batch-rows", "2500"]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");
    let text = std::fs::read_to_string(data("credit_data.csv")).unwrap();
    let without_income: String = text
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(9);
            f.join(",") + "\n"
        })
        .collect();
    assert!(text.lines().next().unwrap().split(',').nth(9) == Some("Income"));
    let file = write(dir.path(), "no_income.csv", &without_income);
    let out = kaskad(&["inference", "--home", h, "--file", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lacks: Income"), "{}", stderr(&out));
}

#[test]
fn unwritable_home_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = write(dir.path(), "not-a-folder", "x");
    let home = blocker.join("home");
    let out = kaskad(&[
        "init",
        "--home",
        home.to_str().unwrap(),
        "--dataset",
        data("credit_data.csv").to_str().unwrap(),
        "--target",
        "Status",
        "--positive",
        "bad",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not-a-folder/home"),
        "{}",
        stderr(&out)
    );
}

fn rejected(home: &str) -> Vec<serde_json::Value> {
    let out = kaskad(&["batches", "--home", home, "--rejected", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn stored(home: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&stdout(&kaskad(&["batches", "--home", home, "--json"]))).unwrap()
}

#[test]
fn bad_files_are_rejected_in_place_and_the_good_ones_flow_on() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let (first, rest) = split(&data("credit_data.csv"), 0.5, dir.path());
    std::fs::copy(&first, inbox.join("a.csv")).unwrap();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    init(&home, &inbox, &[]);
    assert_eq!(last_line(&kaskad(&["update", "--home", h])), "true");

    // b: a malformed line; c: a word where earlier batches had numbers
    // (Income, the tenth column); d: good.
    let text = std::fs::read_to_string(&rest).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let malformed = write(
        &inbox,
        "b.csv",
        &format!("{header}\n{}\n{},extra\n", rows[0], rows[1]),
    );
    let c_file = |income: &str| {
        let mut fields: Vec<&str> = rows[2].split(',').collect();
        fields[9] = income;
        format!(
            "{header}\n{}\n{}\n",
            fields.join(","),
            rows[3..300].join("\n")
        )
    };
    let wrong_type = c_file("none");
    let mistyped = write(&inbox, "c.csv", &wrong_type);
    write(
        &inbox,
        "d.csv",
        &format!("{header}\n{}\n", rows[300..].join("\n")),
    );

    let out = kaskad(&["update", "--home", h]);
    let message = stderr(&out);
    assert!(out.status.success(), "{message}");
    assert_eq!(last_line(&out), "true");
    assert!(
        message.contains("rejected b.csv") && message.contains("b.csv:3:"),
        "{message}"
    );
    assert!(
        message.contains("rejected c.csv") && message.contains("c.csv:2:"),
        "{message}"
    );
    let batches = stored(h);
    assert_eq!(batches.len(), 2, "d.csv is stored after the rejected files");
    assert_eq!(batches[1]["origin"], "d.csv");
    assert!(batches.iter().all(|b| b["processed"] == true));
    assert_eq!(
        std::fs::read_to_string(&mistyped).unwrap(),
        wrong_type,
        "a rejected file stays as it was"
    );
    assert!(malformed.exists());
    let listed = rejected(h);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["origin"], "b.csv");
    let error = listed[0]["error"].as_str().unwrap();
    assert!(error.contains("expected 14 fields, found 15"), "{error}");
    assert_eq!(listed[1]["origin"], "c.csv");
    assert!(listed[1]["error"].as_str().unwrap().contains("none"));

    // Unchanged, they are not reported or recorded again.
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    assert!(!stderr(&out).contains("rejected b.csv"), "{}", stderr(&out));
    assert_eq!(rejected(h).len(), 2);

    // Corrected under the same name, c.csv is collected.
    write(&inbox, "c.csv", &c_file("120"));
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let batches = stored(h);
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[2]["origin"], "c.csv");

    // An update that finds nothing but rejected input fails and names it.
    write(&inbox, "e.csv", "Status,Income,Colour\nbad,10,red\n");
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "false");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error: no new batch; rejected e.csv"),
        "{}",
        stderr(&out)
    );
    assert_eq!(rejected(h).len(), 3);
    let out = kaskad(&["summary", "--home", h]);
    let report = std::fs::read_to_string(last_line(&out)).unwrap();
    assert!(
        report.contains("<h2>Rejected input</h2>") && report.contains("columns Colour"),
        "the summary lists rejected input"
    );
}
