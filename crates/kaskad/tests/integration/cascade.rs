//! Cascades end to end: a home with two batches of lr/tree/knn versions, a
//! cascade of chain, switch, group and split (with a shadow) stored over
//! HTTP and with `kaskad cascades apply`, scored over HTTP and with
//! `kaskad cascades run`; compile errors with their JSON paths, roles,
//! remote modules on a second `kaskad serve`, timeouts and fallbacks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kaskad_registry::Catalog;
use reqwest::StatusCode;
use reqwest::blocking::RequestBuilder;
use serde_json::{Map, Value, json};

use crate::server::{Server, client, key};
use crate::support::{data, init, kaskad, last_line, stderr, stdout};

/// The first application of credit_data.csv, every column the models read.
fn applicant() -> Value {
    json!({
        "Seniority": 9, "Home": "rent", "Time": 60, "Age": 30, "Marital": "married",
        "Records": "no", "Job": "freelance", "Expenses": 73, "Income": 129.0,
        "Assets": 0.0, "Debt": 0.0, "Amount": 800, "Price": 846
    })
}

fn request(customer: &str) -> Value {
    json!({"applicant": applicant(), "customer": {"id": customer}})
}

/// A home with two processed batches: versions 1–3 and 4–6 of
/// `default_risk`, one per family each time.
fn home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    init(&home, &data("credit_data.csv"), &["--batch-rows", "1500"]);
    for _ in 0..2 {
        let out = kaskad(&["update", "--home", home.to_str().unwrap()]);
        assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    }
    home
}

/// `default_risk@N` of each family, oldest first.
fn versions(home: &Path, algorithm: &str) -> Vec<String> {
    let catalog = Catalog::open(&home.join("kaskad.db")).unwrap();
    let found: Vec<String> = catalog
        .versions(Some("default_risk"))
        .unwrap()
        .into_iter()
        .filter(|v| v.algorithm == algorithm)
        .map(|v| format!("default_risk@{}", v.version))
        .collect();
    assert_eq!(found.len(), 2, "{algorithm}: {found:?}");
    found
}

fn send(request: RequestBuilder, key: &str) -> (StatusCode, Value) {
    let response = request.bearer_auth(key).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
    (status, body)
}

/// The cascade of the tests, by the versions it scores with: a switch
/// sends applications without an income to the oldest lr, the others to a
/// group of lr and tree; then a sticky 50/50 split between the champion
/// and the newest knn, with the oldest knn as a shadow.
fn credit_cascade(lr: &[String], tree: &[String], knn: &[String]) -> Value {
    json!({
        "type": "chain",
        "nodes": [
            {"type": "switch",
             "cases": [{"when": {"field": "applicant.Income", "op": "missing"},
                        "node": {"type": "module", "name": "fallback", "model": lr[0], "sources": ["applicant"]}}],
             "default": {"type": "group", "nodes": [
                 {"type": "module", "name": "lr", "model": lr[1], "sources": ["applicant"]},
                 {"type": "module", "name": "tree", "model": tree[1], "sources": ["applicant"]}
             ]}},
            {"type": "split", "key": "customer.id",
             "branches": [
                 {"weight": 1, "node": {"type": "module", "name": "champion", "model": "default_risk@champion", "sources": ["applicant"]}},
                 {"weight": 1, "node": {"type": "module", "name": "challenger", "model": knn[1], "sources": ["applicant"]}}
             ],
             "shadow": [{"type": "module", "name": "shadow_knn", "model": knn[0], "sources": ["applicant"]}]}
        ],
        "output": {
            "score": ["champion.score", "challenger.score"],
            "decision": ["champion.decision", "challenger.decision"],
            "first": ["lr.score", "fallback.score"]
        }
    })
}

fn modules(answer: &Value) -> Map<String, Value> {
    answer["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules: {answer}"))
        .iter()
        .map(|run| (run["name"].as_str().unwrap().to_string(), run.clone()))
        .collect()
}

fn outcome(answer: &Value, module: &str) -> String {
    modules(answer)[module]["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

fn module_score(answer: &Value, module: &str) -> f64 {
    modules(answer)[module]["result"]["score"]
        .as_f64()
        .unwrap_or_else(|| panic!("{module} has no score: {answer}"))
}

fn errors_at(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cascades_are_stored_scored_and_logged_over_http_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let h = home.to_str().unwrap();
    let (lr, tree, knn) = (
        versions(&home, "lr"),
        versions(&home, "tree"),
        versions(&home, "knn"),
    );
    let (admin, scorer, viewer) = (
        key(&home, "admin"),
        key(&home, "scorer"),
        key(&home, "viewer"),
    );
    let server = Server::start(&home, &[]);
    let c = client();
    let cascade_url = server.url("/v1/cascades/credit");
    let score_url = server.url("/v1/cascades/credit/score");
    let cascade = credit_cascade(&lr, &tree, &knn);

    // Only admins store; the name comes from the path.
    for k in [&viewer, &scorer] {
        assert_eq!(send(c.put(&cascade_url).json(&cascade), k).0, 403);
    }
    let (status, stored) = send(c.put(&cascade_url).json(&cascade), &admin);
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored, json!({"name": "credit", "version": 1}));

    // Listed and shown to every role.
    let (status, listed) = send(c.get(server.url("/v1/cascades")), &viewer);
    assert_eq!(status, 200);
    assert_eq!(listed["cascades"][0]["name"], "credit");
    assert_eq!(listed["cascades"][0]["version"], 1);
    let (status, shown) = send(c.get(&cascade_url), &viewer);
    assert_eq!(status, 200);
    assert_eq!(shown["definition"]["name"], "credit");
    assert_eq!(shown["definition"]["nodes"], cascade["nodes"]);

    // Scored by a scorer, not by a viewer; modules on request.
    assert_eq!(
        send(c.post(&score_url).json(&request("c-1")), &viewer).0,
        403
    );
    let (status, plain) = send(c.post(&score_url).json(&request("c-1")), &scorer);
    assert_eq!(status, 200, "{plain}");
    assert!(plain.get("modules").is_none(), "{plain}");
    assert_eq!(plain["cascade"], "credit@1");
    assert_eq!(plain["request_id"].as_str().unwrap().len(), 36);
    let with_modules = format!("{score_url}?modules=true");
    let (status, full) = send(c.post(&with_modules).json(&request("c-1")), &scorer);
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["output"], plain["output"], "same request, same answer");

    // The group ran and the fallback did not; the shadow ran but is not in
    // the output, which has exactly the three declared fields.
    let output = full["output"].as_object().unwrap();
    let keys: BTreeSet<&str> = output.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["decision", "first", "score"]));
    assert_eq!(outcome(&full, "fallback"), "skipped");
    assert_eq!(
        (outcome(&full, "lr"), outcome(&full, "tree")),
        ("ok".into(), "ok".into())
    );
    assert_eq!(output["first"].as_f64(), Some(module_score(&full, "lr")));
    let runs = modules(&full);
    assert_eq!(runs.len(), 6);
    assert_eq!(runs["shadow_knn"]["outcome"], "ok");
    assert_eq!(runs["shadow_knn"]["shadow"], true);
    assert_eq!(runs["lr"]["result"]["model"], lr[1].as_str());
    assert!(runs["lr"]["result"]["reasons"].as_array().unwrap().len() <= 3);
    let branch = full["path"][1]["taken"]["branch"].as_u64().unwrap() as usize;
    let chosen = ["champion", "challenger"][branch];
    assert_eq!(outcome(&full, chosen), "ok");
    assert_eq!(
        outcome(&full, ["champion", "challenger"][1 - branch]),
        "skipped"
    );
    assert_eq!(output["score"].as_f64(), Some(module_score(&full, chosen)));
    assert_eq!(
        full["path"],
        json!([
            {"node": "$.nodes[0]", "taken": "default", "shadow": false},
            {"node": "$.nodes[1]", "taken": {"branch": branch}, "shadow": false}
        ])
    );

    // A module's score is the model's own score of the application.
    let (status, direct) = send(
        c.post(server.url(&format!("/v1/models/{}/score", lr[1])))
            .json(&applicant()),
        &scorer,
    );
    assert_eq!(status, 200, "{direct}");
    assert_eq!(direct["score"].as_f64(), Some(module_score(&full, "lr")));
    assert_eq!(runs["lr"]["result"]["decision"], direct["decision"]);

    // No income: the switch takes the fallback model.
    let mut sparse = request("c-1");
    sparse["applicant"]
        .as_object_mut()
        .unwrap()
        .remove("Income");
    let (status, fell) = send(c.post(&with_modules).json(&sparse), &scorer);
    assert_eq!(status, 200, "{fell}");
    assert_eq!(fell["path"][0]["taken"], json!({"case": 0}));
    assert_eq!(outcome(&fell, "fallback"), "ok");
    assert_eq!(
        (outcome(&fell, "lr"), outcome(&fell, "tree")),
        ("skipped".into(), "skipped".into())
    );
    assert_eq!(
        fell["output"]["first"].as_f64(),
        Some(module_score(&fell, "fallback"))
    );
    assert_eq!(
        modules(&fell)["fallback"]["result"]["model"],
        lr[0].as_str()
    );

    // The split is sticky by customer and uses both branches.
    let mut taken = BTreeSet::new();
    for i in 0..24 {
        let customer = format!("customer-{i}");
        let branch = |_: u8| {
            let (status, answer) = send(c.post(&score_url).json(&request(&customer)), &scorer);
            assert_eq!(status, 200, "{answer}");
            answer["path"][1]["taken"]["branch"].clone()
        };
        let first = branch(0);
        assert_eq!(branch(1), first, "{customer} changed branch");
        taken.insert(first.to_string());
    }
    assert_eq!(taken.len(), 2, "{taken:?}");

    // A malformed request is the client's fault, with its path.
    let (status, e) = send(
        c.post(&score_url)
            .json(&json!({"applicant": 3, "customer": {"id": "x"}})),
        &scorer,
    );
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["path"], "$.applicant");
    assert!(
        e["error"].as_str().unwrap().contains("must be an object"),
        "{e}"
    );
    let (status, e) = send(
        c.post(&score_url).json(&json!({"applicant": applicant()})),
        &scorer,
    );
    assert_eq!(
        (status, e["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("$.customer.id"))
    );
    // A value of the wrong kind for the models is rejected before any runs.
    let mut typo = request("c-1");
    typo["applicant"]["Income"] = json!("abc");
    let (status, e) = send(c.post(&score_url).json(&typo), &scorer);
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["path"], "$.applicant.Income");
    assert_eq!(e["error"], r#"expected a number, got "abc""#);
    assert_eq!(
        send(
            c.post(format!("{score_url}?module=1")).json(&request("x")),
            &scorer
        )
        .0,
        400
    );
    assert_eq!(
        send(
            c.post(server.url("/v1/cascades/nope/score"))
                .json(&request("x")),
            &scorer
        )
        .0,
        404
    );

    // Invalid cascades: every error, each at its exact path.
    let bad = json!({
        "type": "chain",
        "nodes": [
            {"type": "module", "name": "a", "model": lr[1], "sources": ["applicant"],
             "reuse": {"Amount": "b.score"}},
            {"type": "module", "name": "b", "model": "default_risk@999", "sources": ["applicant"],
             "colour": "red"},
            {"type": "module", "name": "c", "remote": {"url": "https://scores.example", "model": "m"}}
        ],
        "output": {"score": "a.score"}
    });
    let (status, e) = send(c.put(server.url("/v1/cascades/bad")).json(&bad), &admin);
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        errors_at(&e),
        [
            "$.nodes[1].colour",
            "$.nodes[1].model",
            "$.nodes[0].reuse.Amount",
            "$.nodes[2].remote.url"
        ]
    );
    let messages = e["errors"].to_string();
    assert!(messages.contains("unknown key `colour`"), "{messages}");
    assert!(
        messages.contains("unknown model `default_risk@999`"),
        "{messages}"
    );
    assert!(
        messages.contains("module `b` has not run at this point"),
        "{messages}"
    );
    let mut tls = bad.clone();
    tls["nodes"] = json!([bad["nodes"][2], {"type": "module", "name": "a", "model": lr[1]}]);
    let (status, e) = send(c.put(server.url("/v1/cascades/bad")).json(&tls), &admin);
    assert_eq!(status, 422, "{e}");
    assert_eq!(errors_at(&e), ["$.nodes[0].remote.url"]);
    let mut renamed = cascade.clone();
    renamed["name"] = json!("other");
    let (status, e) = send(c.put(&cascade_url).json(&renamed), &admin);
    assert_eq!(
        (status, errors_at(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["$.name".to_string()])
    );
    assert_eq!(
        send(c.get(server.url("/v1/cascades/bad")), &viewer).0,
        404,
        "nothing stored"
    );

    // The command line runs the stored cascade in-process, with the same answer.
    let out = kaskad(&[
        "cascades",
        "run",
        "--home",
        h,
        "credit",
        "--input",
        &request("c-1").to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ran: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(ran["cascade"], "credit@1");
    assert_eq!(ran["output"], full["output"]);
    assert_eq!(ran["path"], full["path"]);
    assert_eq!(modules(&ran)["shadow_knn"]["outcome"], "ok");
    let out = kaskad(&[
        "cascades",
        "run",
        "--home",
        h,
        "credit",
        "--input",
        r#"{"applicant": []}"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`applicant` must be an object"),
        "{}",
        stderr(&out)
    );

    // `cascades apply` reports every error with its path and stores nothing...
    let file = dir.path().join("bad.json");
    let mut named = bad.clone();
    named["name"] = json!("bad");
    std::fs::write(&file, named.to_string()).unwrap();
    let out = kaskad(&["cascades", "apply", "--home", h, file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    for path in [
        "$.nodes[1].colour",
        "$.nodes[1].model",
        "$.nodes[0].reuse.Amount",
        "$.nodes[2].remote.url",
    ] {
        assert!(
            stderr(&out).contains(&format!("bad.json: {path}: ")),
            "{path}: {}",
            stderr(&out)
        );
    }
    // ...and stores a valid one as the next version, which the server
    // picks up within a second.
    let mut next = cascade.clone();
    next["name"] = json!("credit");
    next["output"]["tree"] = json!(["tree.score", "fallback.score"]);
    let file = dir.path().join("credit.json");
    std::fs::write(&file, next.to_string()).unwrap();
    let out = kaskad(&["cascades", "apply", "--home", h, file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), "credit@2");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, answer) = send(c.post(&score_url).json(&request("c-1")), &scorer);
        assert_eq!(status, 200, "{answer}");
        if answer["cascade"] == "credit@2" {
            assert_eq!(
                answer["output"]["tree"].as_f64(),
                Some(module_score(&full, "tree"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "credit@2 was not picked up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, old) = send(
        c.post(server.url("/v1/cascades/credit@1/score"))
            .json(&request("c-1")),
        &scorer,
    );
    assert_eq!(
        (status, old["cascade"].as_str()),
        (StatusCode::OK, Some("credit@1"))
    );
    let out = kaskad(&["cascades", "list", "--home", h, "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed[0]["name"], "credit");
    assert_eq!(listed[0]["version"], 2);

    // Metrics per cascade and per module.
    let text = server.metrics(&c);
    for needle in [
        "kaskad_cascade_requests_total{cascade=\"credit@1\",outcome=\"ok\"}",
        "kaskad_cascade_requests_total{cascade=\"credit@1\",outcome=\"rejected\"} 3",
        "kaskad_cascade_latency_seconds_bucket{cascade=\"credit@1\",",
        "kaskad_module_latency_seconds_bucket{cascade=\"credit@1\",module=\"lr\",",
        "kaskad_module_latency_seconds_bucket{cascade=\"credit@1\",module=\"shadow_knn\",",
        "kaskad_module_requests_total{cascade=\"credit@1\",module=\"fallback\",outcome=\"ok\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }

    // Deleting stops all traffic to the name, every version included.
    assert_eq!(send(c.delete(&cascade_url), &scorer).0, 403);
    let (status, deleted) = send(c.delete(&cascade_url), &admin);
    assert_eq!(
        (status, deleted["deleted_version"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(
        send(c.post(&score_url).json(&request("c-1")), &scorer).0,
        404
    );
    assert_eq!(
        send(
            c.post(server.url("/v1/cascades/credit@1/score"))
                .json(&request("c-1")),
            &scorer
        )
        .0,
        404
    );
    assert_eq!(send(c.delete(&cascade_url), &admin).0, 404);
    let (_, listed) = send(c.get(server.url("/v1/cascades")), &viewer);
    assert_eq!(listed["cascades"], json!([]));

    // Every run is in the request log: the cascade as its model, the modules in its output.
    server.terminate();
    let logged = Catalog::open(&home.join("kaskad.db"))
        .unwrap()
        .logged_requests()
        .unwrap();
    let entry = logged
        .iter()
        .find(|r| r.request_id == full["request_id"].as_str().unwrap())
        .expect("the run is logged");
    assert_eq!(
        (entry.model.as_str(), entry.route.as_str()),
        ("credit@1", "/v1/cascades/{name}/score")
    );
    let output: Value = serde_json::from_str(&entry.output).unwrap();
    assert_eq!(output["output"], full["output"]);
    assert_eq!(modules(&output).len(), 6);
    let input: Value = serde_json::from_str(&entry.input).unwrap();
    assert_eq!(input, request("c-1"));
    let rejected = logged
        .iter()
        .filter(|r| r.model == "credit@1")
        .filter(|r| r.output.contains("must be an object"))
        .count();
    assert_eq!(rejected, 1);
}

#[test]
fn remote_modules_score_on_another_server_and_time_out_into_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let (admin, scorer) = (key(&home, "admin"), key(&home, "scorer"));
    // The remote: another `kaskad serve` of the same home.
    let remote = Server::start(&home, &[]);
    let server = Server::start(&home, &["--remote-key", &scorer]);
    // A server that accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    // A port where nothing listens.
    let closed_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let c = client();
    let remote_url = format!("http://{}", remote.addr);
    let put = |name: &str, cascade: Value| {
        send(
            c.put(server.url(&format!("/v1/cascades/{name}")))
                .json(&cascade),
            &admin,
        )
    };
    let score = |name: &str| {
        send(
            c.post(server.url(&format!("/v1/cascades/{name}/score?modules=true")))
                .json(&request("c-1")),
            &scorer,
        )
    };

    // `customer` is not an input of the remote model: the remote module
    // sends only what the model's V2 metadata lists.
    let cascade = json!({
        "type": "chain",
        "nodes": [
            {"type": "group", "nodes": [
                {"type": "module", "name": "local", "model": "default_risk@champion", "sources": ["applicant"]},
                {"type": "module", "name": "far", "remote": {"url": remote_url, "model": "default_risk"},
                 "sources": ["applicant", "customer"], "output_rule": {"score": {"min": 0, "max": 1, "required": true}}}
            ]},
            {"type": "module", "name": "slow", "remote": {"url": hung_url, "model": "m"}, "sources": ["applicant"],
             "timeout_ms": 300, "on_failure": {"fallback": {"score": 0.5}}}
        ],
        "output": {"local": "local.score", "far": "far.score", "slow": "slow.score"}
    });
    let (status, stored) = put("remote", cascade);
    assert_eq!(status, 201, "{stored}");
    let (status, answer) = score("remote");
    assert_eq!(status, 200, "{answer}");
    let output = &answer["output"];
    assert!(output["local"].as_f64().unwrap() > 0.0);
    assert_eq!(
        output["far"], output["local"],
        "the same champion, scored remotely"
    );
    assert_eq!(output["slow"], 0.5);
    let runs = modules(&answer);
    assert_eq!(runs["far"]["outcome"], "ok");
    assert_eq!(
        runs["far"]["result"]["decision"],
        runs["local"]["result"]["decision"]
    );
    assert_eq!(runs["slow"]["outcome"], "fallback");
    assert!(
        runs["slow"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300 ms"),
        "{answer}"
    );
    assert!(runs["slow"]["latency_us"].as_u64().unwrap() >= 300_000);

    // `kaskad cascades run` calls the remote too.
    let out = kaskad(&[
        "cascades",
        "run",
        "--home",
        home.to_str().unwrap(),
        "remote",
        "--input",
        &request("c-1").to_string(),
        "--remote-key",
        &scorer,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ran: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(ran["output"], answer["output"]);

    // Without a fallback, a timeout is 504 and any other failure 502, each
    // naming the module.
    let strict = |url: &str| {
        json!({"type": "chain", "nodes": [
                   {"type": "module", "name": "edge", "remote": {"url": url, "model": "default_risk"},
                    "sources": ["applicant"], "timeout_ms": 300}],
               "output": {"score": "edge.score"}})
    };
    assert_eq!(put("hung", strict(&hung_url)).0, 201);
    let (status, e) = score("hung");
    assert_eq!(status, 504, "{e}");
    assert_eq!(
        (e["module"].as_str(), e["node"].as_str()),
        (Some("edge"), Some("$.nodes[0]"))
    );
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300 ms"),
        "{e}"
    );
    assert_eq!(put("closed", strict(&closed_url)).0, 201);
    let (status, e) = score("closed");
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["module"], "edge");
    assert!(e["error"].as_str().unwrap().contains(&closed_url), "{e}");

    // A remote that refuses the key: the remote's reason comes through.
    let unauthorized = Server::start(&home, &["--remote-key", "ksk_wrong"]);
    let (status, e) = send(
        c.post(unauthorized.url("/v1/cascades/remote/score"))
            .json(&request("c-1")),
        &scorer,
    );
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["module"], "far");
    assert!(e["error"].as_str().unwrap().contains("401"), "{e}");
    drop(hung);
}

#[test]
fn split_branches_are_compared_on_reported_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    let (lr, knn) = (versions(&home, "lr"), versions(&home, "knn"));
    let (admin, viewer) = (key(&home, "admin"), key(&home, "viewer"));
    let server = Server::start(&home, &[]);
    let c = client();
    let cascade = json!({
        "type": "split", "key": "customer.id",
        "branches": [
            {"weight": 1, "node": {"type": "module", "name": "a", "model": lr[1], "sources": ["applicant"]}},
            {"weight": 1, "node": {"type": "module", "name": "b", "model": knn[1], "sources": ["applicant"]}}
        ],
        "output": {"score": ["a.score", "b.score"]}
    });
    let (status, body) = send(c.put(server.url("/v1/cascades/ab")).json(&cascade), &admin);
    assert_eq!(status, 201, "{body}");
    let mut outcomes = Vec::new();
    for i in 0..60 {
        let (status, answer) = send(
            c.post(server.url("/v1/cascades/ab/score"))
                .json(&request(&format!("customer-{i}"))),
            &admin,
        );
        assert_eq!(status, 200, "{answer}");
        outcomes.push(json!({"request_id": answer["request_id"], "outcome": u8::from(i % 3 == 0)}));
    }
    let (status, body) = send(
        c.post(server.url("/v1/outcomes"))
            .json(&json!({"outcomes": outcomes})),
        &admin,
    );
    assert_eq!(status, 200, "{body}");

    // The request log is written in the background; the report imports
    // what is queued before it reads.
    let (status, report) = send(c.get(server.url("/v1/cascades/ab/ab")), &viewer);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["requests_with_outcomes"], 60, "{report}");
    let split = &report["splits"][0];
    assert_eq!(split["split"], "$");
    let branches = split["branches"].as_array().unwrap();
    assert_eq!(branches.len(), 2, "both branches were used: {report}");
    let total: u64 = branches
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    let defaults: u64 = branches
        .iter()
        .map(|b| b["defaults"].as_u64().unwrap())
        .sum();
    assert_eq!((total, defaults), (60, 20));
    let p = split["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));

    // The summary report shows the same comparison.
    let out = kaskad(&["summary", "--home", home.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(last_line(&out)).unwrap();
    let section = &html[html.find("<h2>A/B results</h2>").expect("an A/B section")..];
    assert!(section.contains("<td>ab</td>"), "{section}");
}
