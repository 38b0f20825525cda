//! `kaskad serve` as a client sees it: a real home, a real process on a
//! free port, every route, role and error status, the Open Inference
//! Protocol, metrics, hot reload of the champion, and graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kaskad_registry::Catalog;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::server::{Server, client, key};
use crate::support::{data, edit_config, init, kaskad, last_line, peer_tool, stderr, stdout};

/// The first application of credit_data.csv, as a client sends it.
fn application() -> Value {
    json!({
        "Seniority": 9, "Home": "rent", "Time": 60, "Age": 30, "Marital": "married",
        "Records": "no", "Job": "freelance", "Expenses": 73, "Income": 129.0,
        "Assets": 0.0, "Debt": 0.0, "Amount": 800, "Price": 846
    })
}

/// A home on `dataset` with every batch processed.
fn home(dir: &Path, dataset: &Path) -> PathBuf {
    let home = dir.join("home");
    init(&home, dataset, &[]);
    let out = kaskad(&["update", "--home", home.to_str().unwrap(), "--all"]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    home
}

/// Status and JSON body of a response; every answer of the API is JSON.
fn answer(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
    (status, body)
}

fn post(c: &Client, url: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    answer(c.post(url).bearer_auth(key).json(body).send().unwrap())
}

fn get(c: &Client, url: &str, key: &str) -> (StatusCode, Value) {
    answer(c.get(url).bearer_auth(key).send().unwrap())
}

#[test]
fn serve_scores_guards_every_route_and_reports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let (admin, scorer, viewer) = (
        key(&home, "admin"),
        key(&home, "scorer"),
        key(&home, "viewer"),
    );
    let server = Server::start(
        &home,
        &["--max-body-bytes", "65536", "--timeout-ms", "1000"],
    );
    let c = client();
    let champion = Catalog::open(&home.join("kaskad.db"))
        .unwrap()
        .resolve("default_risk")
        .unwrap();
    let champion = format!("default_risk@{}", champion.version);

    // Probes and metrics are open.
    assert_eq!(
        answer(c.get(server.url("/health/live")).send().unwrap()).0,
        200
    );
    let (status, ready) = answer(c.get(server.url("/health/ready")).send().unwrap());
    assert_eq!(
        (status, ready["model"].as_str()),
        (StatusCode::OK, Some(champion.as_str()))
    );

    // One application: score, decision, three reasons, model, request id.
    let score_url = server.url("/v1/models/default_risk/score");
    let (status, one) = post(&c, &score_url, &scorer, &application());
    assert_eq!(status, 200, "{one}");
    let score = one["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert!(matches!(
        one["decision"].as_str(),
        Some("approve" | "decline")
    ));
    assert_eq!(one["model"], champion.as_str());
    assert_eq!(one["request_id"].as_str().unwrap().len(), 36, "uuid");
    let reasons = one["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty() && reasons.len() <= 3, "{one}");
    assert!(reasons[0]["column"].is_string() && reasons[0]["contribution"].as_f64().unwrap() > 0.0);

    // A list; numbers as strings; a missing column is a missing value.
    let mut partial = application();
    partial.as_object_mut().unwrap().remove("Income");
    partial["Amount"] = json!("800");
    let (status, many) = post(
        &c,
        &score_url,
        &admin,
        &json!({"applications": [application(), partial, {}]}),
    );
    assert_eq!(status, 200, "{many}");
    let results = many["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["score"].as_f64(),
        Some(score),
        "same application, same score"
    );
    assert_ne!(results[0]["request_id"], results[1]["request_id"]);

    // Another version by number and by alias.
    let (status, v1) = post(
        &c,
        &server.url("/v1/models/default_risk@1/score"),
        &scorer,
        &application(),
    );
    assert_eq!(
        (status, v1["model"].as_str()),
        (StatusCode::OK, Some("default_risk@1"))
    );
    let (status, by_alias) = post(
        &c,
        &server.url("/v1/models/default_risk@champion/score"),
        &scorer,
        &application(),
    );
    assert_eq!(
        (status, by_alias["model"].as_str()),
        (StatusCode::OK, Some(champion.as_str()))
    );

    // Authentication and roles.
    let (status, e) = answer(c.post(&score_url).json(&application()).send().unwrap());
    assert_eq!(status, 401, "{e}");
    assert!(e["error"].as_str().unwrap().contains("Authorization"));
    assert_eq!(post(&c, &score_url, "ksk_0000", &application()).0, 401);
    assert_eq!(post(&c, &score_url, &viewer, &application()).0, 403);
    assert_eq!(get(&c, &server.url("/v1/models"), &viewer).0, 200);
    let alias_url = server.url("/v1/models/default_risk/aliases/challenger");
    let put =
        |k: &str, body: Value| answer(c.put(&alias_url).bearer_auth(k).json(&body).send().unwrap());
    assert_eq!(put(&scorer, json!({"version": 1})).0, 403);
    assert_eq!(put(&viewer, json!({"version": 1})).0, 403);
    assert_eq!(get(&c, &server.url("/v2/models/default_risk"), "").0, 401);

    // Rejections, each JSON with a reason and, for values, the path.
    let (status, e) = post(
        &c,
        &server.url("/v1/models/nope/score"),
        &scorer,
        &application(),
    );
    assert_eq!(status, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("nope"));
    let mut bad = vec![application(); 4];
    bad[3]["Income"] = json!("abc");
    let (status, e) = post(&c, &score_url, &scorer, &json!({"applications": bad}));
    assert_eq!(status, 422);
    assert_eq!(e["path"], "$.applications[3].Income");
    assert_eq!(e["error"], r#"expected a number, got "abc""#);
    let mut bad = application();
    bad["Incme"] = json!(1);
    bad["Status"] = json!("good");
    let (status, e) = post(&c, &score_url, &scorer, &bad);
    assert_eq!(status, 422);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown columns Incme, Status"),
        "{e}"
    );
    let (status, e) = post(
        &c,
        &score_url,
        &scorer,
        &json!({"applications": [{"Home": 3}]}),
    );
    assert_eq!(
        (status, e["path"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("$.applications[0].Home")
        )
    );
    let big = json!({"applications": vec![application(); 400]});
    let (status, e) = post(&c, &score_url, &scorer, &big);
    assert_eq!(status, 413, "{e}");
    assert!(e["error"].as_str().unwrap().contains("65536"));
    let (status, e) = answer(
        c.post(&score_url)
            .bearer_auth(&scorer)
            .body("{")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{e}");
    let (status, e) = answer(
        c.delete(server.url("/v1/models"))
            .bearer_auth(&admin)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 405, "{e}");
    assert_eq!(get(&c, &server.url("/v1/nothing"), &admin).0, 404);

    // A request slower than --timeout-ms: the body never arrives.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    write!(
        slow,
        "POST /v1/models/default_risk/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scorer}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let mut reply = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = slow.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.contains("longer than the server's limit of 1000 ms"),
        "{reply}"
    );

    // The registry.
    let (status, models) = get(&c, &server.url("/v1/models"), &viewer);
    assert_eq!(status, 200);
    let model = &models["models"][0];
    assert_eq!(model["name"], "default_risk");
    assert_eq!(
        format!("default_risk@{}", model["aliases"]["champion"]),
        champion
    );
    assert!(model["latest"]["metrics"]["auc"].is_f64());
    assert!(
        model["latest"].get("artifact_path").is_none(),
        "no server paths"
    );
    let (status, versions) = get(&c, &server.url("/v1/models/default_risk/versions"), &viewer);
    assert_eq!(status, 200);
    let n_versions = versions["versions"].as_array().unwrap().len();
    assert!(n_versions >= 3);
    assert_eq!(
        get(&c, &server.url("/v1/models/nope/versions"), &viewer).0,
        404
    );
    let (status, e) = put(&admin, json!({"version": 9999}));
    assert_eq!(status, 404, "{e}");
    let (status, e) = put(&admin, json!({"version": "one"}));
    assert_eq!(
        (status, e["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("$.version"))
    );
    let (status, moved) = put(&admin, json!({"version": 2}));
    assert_eq!(
        (status, moved["version"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    let (_, by_new_alias) = post(
        &c,
        &server.url("/v1/models/default_risk@challenger/score"),
        &scorer,
        &application(),
    );
    assert_eq!(by_new_alias["model"], "default_risk@2");

    // Outcomes of earlier requests; batches need a directory source.
    let outcomes = json!({"outcomes": [
        {"request_id": one["request_id"], "outcome": 1},
        {"request_id": results[1]["request_id"], "outcome": 0}
    ]});
    let outcomes_url = server.url("/v1/outcomes");
    assert_eq!(post(&c, &outcomes_url, &scorer, &outcomes).0, 403);
    let (status, stored) = post(&c, &outcomes_url, &admin, &outcomes);
    assert_eq!(
        (status, stored["stored"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (status, e) = post(
        &c,
        &outcomes_url,
        &admin,
        &json!({"outcomes": [{"request_id": "r", "outcome": 2}]}),
    );
    assert_eq!(
        (status, e["path"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("$.outcomes[0].outcome")
        )
    );
    let csv = "Status,Seniority\ngood,9\n";
    let push = |content_type: &str| {
        answer(
            c.post(server.url("/v1/batches"))
                .bearer_auth(&admin)
                .header("content-type", content_type)
                .body(csv)
                .send()
                .unwrap(),
        )
    };
    let (status, e) = push("text/csv");
    assert_eq!(status, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("not a directory"));
    assert_eq!(push("application/json").0, 415);

    // The Open Inference Protocol, JSON tensors.
    let (status, meta) = get(&c, &server.url("/v2/models/default_risk"), &viewer);
    assert_eq!(status, 200);
    assert_eq!(meta["platform"], "kaskad");
    assert_eq!(meta["versions"].as_array().unwrap().len(), n_versions);
    let inputs = meta["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 13);
    let kind = |name: &str| inputs.iter().find(|i| i["name"] == name).unwrap()["datatype"].clone();
    assert_eq!(
        (kind("Income"), kind("Home")),
        (json!("FP64"), json!("BYTES"))
    );
    assert_eq!(
        meta["outputs"][0],
        json!({"name": "score", "datatype": "FP64", "shape": [-1]})
    );
    assert_eq!(
        get(&c, &server.url("/v2/models/default_risk/ready"), &viewer).0,
        200
    );
    assert_eq!(
        get(&c, &server.url("/v2/models/nope/ready"), &viewer).0,
        404
    );
    assert_eq!(get(&c, &server.url("/v2/health/ready"), &viewer).0, 200);
    let app = application();
    let tensors: Vec<Value> = app
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let (datatype, data) = if v.is_string() {
                ("BYTES", json!([v, ""]))
            } else {
                ("FP64", json!([v, null]))
            };
            json!({"name": name, "datatype": datatype, "shape": [2], "data": data})
        })
        .collect();
    let infer_url = server.url("/v2/models/default_risk/infer");
    let (status, inferred) = post(
        &c,
        &infer_url,
        &scorer,
        &json!({"id": "oip-1", "inputs": tensors}),
    );
    assert_eq!(status, 200, "{inferred}");
    assert_eq!(inferred["id"], "oip-1");
    let outputs = inferred["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["shape"], json!([2]));
    assert!(
        (outputs[0]["data"][0].as_f64().unwrap() - score).abs() < 1e-12,
        "same score as /v1"
    );
    assert_eq!(outputs[1]["datatype"], "BYTES");
    assert_eq!(
        post(&c, &infer_url, &viewer, &json!({"inputs": tensors})).0,
        403
    );
    let bad =
        json!({"inputs": [{"name": "Income", "datatype": "FP64", "shape": [1], "data": ["x"]}]});
    let (status, e) = post(&c, &infer_url, &scorer, &bad);
    assert_eq!(
        (status, e["path"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("$.inputs[0].data[0]")
        )
    );
    let bad = json!({"inputs": [{"name": "Incme", "datatype": "FP64", "shape": [1], "data": [1]}]});
    let (status, e) = post(&c, &infer_url, &scorer, &bad);
    assert_eq!(status, 422);
    assert!(e["error"].as_str().unwrap().contains("Incme"));

    // Metrics: Prometheus text with the kaskad_ prefix.
    let text = server.metrics(&c);
    for needle in [
        "kaskad_http_requests_total{route=\"/v1/models/{name}/score\",model=\"",
        "kaskad_http_request_duration_seconds_bucket{",
        "kaskad_http_errors_total{route=\"/v1/models/{name}/score\",status=\"422\"}",
        "kaskad_http_errors_total{route=\"/v1/models/{name}/score\",status=\"401\"}",
        "kaskad_http_errors_total{route=\"/v1/models/{name}/score\",status=\"413\"}",
        "kaskad_score_probability_bucket{model=\"",
        "kaskad_request_log_dropped_total 0",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }

    // The tools users point at a server accept it unchanged: Prometheus's
    // linter, and Triton's Python client over the Open Inference Protocol.
    if peer_tool(
        Command::new("promtool").arg("--version"),
        "apt-get install prometheus",
    ) {
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if peer_tool(
        Command::new("python3").args(["-c", "import tritonclient.http, numpy"]),
        "pip install 'tritonclient[http]' numpy",
    ) {
        let check =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/oip_client_check.py");
        let out = Command::new("python3")
            .arg(check)
            .args([
                "--url",
                &server.addr,
                "--key",
                &scorer,
                "--model",
                "default_risk",
            ])
            .arg("--data")
            .arg(data("credit_data.csv"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tritonclient against kaskad serve:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // SIGTERM stops it cleanly, and the request log reached the catalog.
    assert!(server.terminate().success());
    let catalog = Catalog::open(&home.join("kaskad.db")).unwrap();
    let logged = catalog.logged_requests().unwrap();
    let ids: Vec<&str> = logged.iter().map(|r| r.request_id.as_str()).collect();
    assert!(
        ids.contains(&one["request_id"].as_str().unwrap()),
        "{ids:?}"
    );
    assert!(ids.contains(&"oip-1:1"), "{ids:?}");
    let first = logged
        .iter()
        .find(|r| r.request_id == one["request_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(first.model, champion);
    let input: Value = serde_json::from_str(&first.input).unwrap();
    assert_eq!(input["Home"], "rent");
    assert_eq!(catalog.outcomes().unwrap().len(), 2);
}

#[test]
fn a_new_champion_is_served_without_restart_and_sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let scorer = key(&home, "scorer");
    let server = Server::start(&home, &[]);
    let c = client();
    let url = server.url("/v1/models/default_risk/score");
    let before = post(&c, &url, &scorer, &application()).1["model"].clone();

    // Another process promotes version 1 (as `kaskad update` would).
    Catalog::open(&home.join("kaskad.db"))
        .unwrap()
        .set_alias("default_risk", "champion", 1)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, now) = post(&c, &url, &scorer, &application());
        if now["model"] == "default_risk@1" {
            break;
        }
        assert_eq!(now["model"], before, "only the old or the new champion");
        assert!(
            Instant::now() < deadline,
            "the new champion was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A request whose body is half sent when SIGTERM arrives still gets its answer.
    let body = application().to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "POST /v1/models/default_risk/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scorer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(tail.as_bytes()).unwrap();
    let mut reply = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"model\":\"default_risk@1\""), "{reply}");
    assert!(server.terminate().success());
}

/// `kaskad keys revoke` on a running server's home: the key is refused
/// within the alias time to live, other keys go on working, and `keys
/// list` keeps the revoked one with its time.
#[test]
fn a_revoked_key_is_refused_by_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let h = home.to_str().unwrap();
    let (revoked, kept) = (key(&home, "scorer"), key(&home, "scorer"));
    let server = Server::start(&home, &[]);
    let c = client();
    let url = server.url("/v1/models/default_risk/score");
    assert_eq!(post(&c, &url, &revoked, &application()).0, StatusCode::OK);

    let listed = kaskad(&["keys", "list", "--home", h, "--json"]);
    let keys: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let id = keys[0]["id"].as_i64().unwrap().to_string();
    let out = kaskad(&["keys", "revoke", "--home", h, &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the revoked key refused", || {
        post(&c, &url, &revoked, &application()).0 == StatusCode::UNAUTHORIZED
    });
    assert_eq!(post(&c, &url, &kept, &application()).0, StatusCode::OK);

    let listed = kaskad(&["keys", "list", "--home", h, "--json"]);
    let keys: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert!(keys[0]["revoked_at"].is_string(), "{keys}");
    assert!(keys[1]["revoked_at"].is_null(), "{keys}");
    let out = kaskad(&["keys", "revoke", "--home", h, "999"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no key 999"), "{}", stderr(&out));
    assert!(server.terminate().success());
}

/// One client's requests: when each was sent and the model that answered,
/// or what went wrong.
type Answers = Vec<(Instant, Result<String, String>)>;

/// Hot reload under load: clients score without pause while the champion
/// moves twice, once through this server's alias API and once by another
/// process (`kaskad train --promote`, which promotes as `kaskad update`
/// does). No request may fail, every answer must come from a version that
/// was champion, and a request sent after the new champion first answered
/// must be answered by it.
#[test]
fn the_champion_moves_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let h = home.to_str().unwrap();
    let scorer = key(&home, "scorer");
    let admin = key(&home, "admin");
    let server = Server::start(&home, &[]);
    let c = client();
    let url = server.url("/v1/models/default_risk/score");
    let model_of = |key: &str| -> String {
        let (status, body) = post(&c, &url, key, &application());
        assert_eq!(status, StatusCode::OK, "{body}");
        body["model"].as_str().unwrap().to_string()
    };
    let first = model_of(&scorer);
    assert_ne!(first, "default_risk@1");

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<std::thread::JoinHandle<Answers>> = (0..4)
        .map(|_| {
            let (stop, url, scorer) = (Arc::clone(&stop), url.clone(), scorer.clone());
            std::thread::spawn(move || {
                let c = client();
                let mut answers = Answers::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let answer = match c
                        .post(&url)
                        .bearer_auth(&scorer)
                        .json(&application())
                        .send()
                    {
                        Ok(r) if r.status() == StatusCode::OK => r
                            .json::<Value>()
                            .map_err(|e| e.to_string())
                            .and_then(|body| {
                                body["model"]
                                    .as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| format!("no model in {body}"))
                            }),
                        Ok(r) => Err(format!("{}: {}", r.status(), r.text().unwrap_or_default())),
                        Err(e) => Err(e.to_string()),
                    };
                    answers.push((sent, answer));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Through this server's alias API: the next request already sees it.
    let (status, body) = answer(
        c.put(server.url("/v1/models/default_risk/aliases/champion"))
            .bearer_auth(&admin)
            .json(&json!({"version": 1}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let moved_by_api = Instant::now();
    assert_eq!(model_of(&scorer), "default_risk@1");
    std::thread::sleep(Duration::from_millis(300));

    // By another process: served within the alias time to live (1 s).
    let promoting = Instant::now();
    let out = kaskad(&[
        "train",
        "--home",
        h,
        "--algo",
        "lr",
        "--param",
        "c=0.5",
        "--promote",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let promoted = last_line(&out);
    let deadline = Instant::now() + Duration::from_secs(30);
    let picked_up = loop {
        let now = Instant::now();
        if model_of(&scorer) == promoted {
            break now;
        }
        assert!(now < deadline, "{promoted} was not picked up");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);

    let champions = [first.as_str(), "default_risk@1", promoted.as_str()];
    let mut after_pick_up = 0;
    for answers in clients.into_iter().map(|t| t.join().unwrap()) {
        let mut previous = 0;
        for (sent, answer) in answers {
            let model =
                answer.unwrap_or_else(|e| panic!("a request failed during the switch: {e}"));
            let rank = champions
                .iter()
                .position(|c| *c == model)
                .unwrap_or_else(|| panic!("{model} was never champion ({champions:?})"));
            assert!(
                rank >= previous,
                "{model} answered after {}",
                champions[previous]
            );
            previous = rank;
            if sent > moved_by_api && sent < promoting {
                assert_eq!(model, "default_risk@1", "sent after the alias moved");
            }
            if sent > picked_up {
                assert_eq!(model, promoted, "sent after the new champion answered");
                after_pick_up += 1;
            }
        }
    }
    assert!(
        after_pick_up > 0,
        "the clients kept scoring after the switch"
    );
    assert!(server.terminate().success());
}

#[test]
fn batches_pushed_over_http_are_collected_by_the_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("credit_data.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(
        inbox.join("0001.csv"),
        format!("{}\n", lines[..2001].join("\n")),
    )
    .unwrap();
    let home = home(dir.path(), &inbox);
    let admin = key(&home, "admin");
    let server = Server::start(&home, &[]);
    let pushed = format!("{}\n{}\n", lines[0], lines[2001..3001].join("\n"));
    let (status, stored) = answer(
        client()
            .post(server.url("/v1/batches"))
            .bearer_auth(&admin)
            .header("content-type", "text/csv; charset=utf-8")
            .body(pushed)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["rows"], 1000);
    let (status, e) = answer(
        client()
            .post(server.url("/v1/batches"))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body("Seniority\n9\n")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("Status"));
    let h = home.to_str().unwrap();
    let out = kaskad(&["update", "--home", h]);
    assert_eq!(last_line(&out), "true", "{}", stderr(&out));
    let out = kaskad(&["batches", "--home", h, "--json"]);
    let batches: Value = serde_json::from_str(&crate::support::stdout(&out)).unwrap();
    let origins: Vec<&str> = batches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins.len(), 2, "{origins:?}");
    assert_eq!(origins[1], stored["file"].as_str().unwrap());
    assert!(server.terminate().success());
}

#[test]
fn unusual_applications_are_scored_by_the_fallback_model_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    edit_config(
        &home,
        "fallback_model = \"\"",
        "fallback_model = \"default_risk@2\"",
    );
    let scorer = key(&home, "scorer");
    let server = Server::start(&home, &[]);
    let mut far = application();
    far["Income"] = json!(99_999_999.0);
    let sparse = json!({"Seniority": 9});
    let (status, body) = post(
        &client(),
        &server.url("/v1/models/default_risk/score"),
        &scorer,
        &json!({"applications": [application(), sparse, far]}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(results[0].get("fallback").is_none(), "{}", results[0]);
    assert_ne!(results[0]["model"], "default_risk@2");
    assert!(
        results[1]["fallback"]
            .as_str()
            .unwrap()
            .contains("inputs missing")
    );
    assert_eq!(results[1]["model"], "default_risk@2");
    assert!(results[2]["fallback"].as_str().unwrap().contains("Income"));
    assert_eq!(results[2]["model"], "default_risk@2");
    for r in results {
        assert!((0.0..=1.0).contains(&r["score"].as_f64().unwrap()));
    }
}

/// A request-log counter of `server`, as `/metrics` shows it.
fn log_counter(c: &Client, server: &Server, name: &str) -> u64 {
    let text = server.metrics(c);
    let prefix = format!("kaskad_request_log_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} in\n{text}"))
        .parse()
        .unwrap()
}

/// The nice value of process `pid`'s thread named `name` (as the kernel
/// shows it, cut to 15 bytes).
fn thread_nice(pid: u32, name: &str) -> Option<i64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks.map(|t| t.unwrap().path()).find_map(|task| {
        let comm = std::fs::read_to_string(task.join("comm")).ok()?;
        if comm.trim_end() != name {
            return None;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // Fields after the parenthesised name start at the third, the state;
        // the nineteenth is the nice value.
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(16)?.parse().ok()
    })
}

/// Waits up to 10 s for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--log-retention-days`: entries older than the retention leave the
/// catalog while the server runs (and are counted), newer ones stay; a
/// retention that is not a positive number of days is refused.
#[test]
fn request_log_entries_older_than_the_retention_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let h = home.to_str().unwrap();
    let scorer = key(&home, "scorer");
    let three_seconds = format!("{}", 3.0 / 86_400.0);
    let server = Server::start(
        &home,
        &[
            "--log-retention-days",
            &three_seconds,
            "--log-import-pause-seconds",
            "0.2",
        ],
    );
    let c = client();
    let url = server.url("/v1/models/default_risk/score");
    for _ in 0..3 {
        assert_eq!(post(&c, &url, &scorer, &application()).0, StatusCode::OK);
    }
    wait_for("3 entries imported", || {
        log_counter(&c, &server, "imported") == 3
    });
    wait_for("3 entries pruned", || {
        log_counter(&c, &server, "pruned") == 3
    });
    let catalog = Catalog::open(&home.join("kaskad.db")).unwrap();
    assert!(catalog.logged_requests().unwrap().is_empty());

    let (_, newer) = post(&c, &url, &scorer, &application());
    wait_for("the newer entry imported", || {
        log_counter(&c, &server, "imported") == 4
    });
    let logged = catalog.logged_requests().unwrap();
    assert_eq!(logged.len(), 1, "younger than the retention, it stays");
    assert_eq!(logged[0].request_id, newer["request_id"].as_str().unwrap());
    assert!(server.terminate().success());

    let out = kaskad(&["serve", "--home", h, "--log-retention-days=-1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("positive number of days"),
        "{}",
        stderr(&out)
    );
}

/// The request log outlives a SIGKILL: what the server had written to its
/// segment file is imported by the next server on the home and joins the
/// outcomes reported for it; a queue too small for the traffic drops
/// entries and counts them instead of holding up the answer.
#[test]
fn a_killed_servers_request_log_is_imported_by_the_next_and_a_full_queue_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), &data("credit_data.csv"));
    let (admin, scorer) = (key(&home, "admin"), key(&home, "scorer"));
    let segments = || std::fs::read_dir(home.join("request-log")).unwrap().count();
    let c = client();
    // Imports only at shutdown, which a SIGKILL skips.
    let never = [
        "--log-import-seconds",
        "3600",
        "--log-import-pause-seconds",
        "3600",
    ];
    let mut server = Server::start(&home, &never);
    let url = server.url("/v1/models/default_risk/score");
    let ids: Vec<String> = (0..5)
        .map(|_| {
            post(&c, &url, &scorer, &application()).1["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let outcomes = json!({"outcomes": [
        {"request_id": ids[0], "outcome": 1}, {"request_id": ids[3], "outcome": 0}
    ]});
    assert_eq!(
        post(&c, &server.url("/v1/outcomes"), &admin, &outcomes).0,
        200
    );
    wait_for("5 entries written", || {
        log_counter(&c, &server, "written") == 5
    });
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let catalog = Catalog::open(&home.join("kaskad.db")).unwrap();
    assert!(catalog.logged_requests().unwrap().is_empty());
    assert_eq!(segments(), 1);

    let server = Server::start(&home, &["--log-queue", "1"]);
    wait_for("the segment imported", || {
        log_counter(&c, &server, "imported") == 5
    });
    // The importer leaves the cores to scoring.
    assert_eq!(thread_nice(server.child.id(), "request-log-imp"), Some(19));
    assert_eq!(segments(), 0);
    let joined = catalog
        .outputs_with_outcomes("/v1/models/{name}/score", "default_risk")
        .unwrap();
    let joined: Vec<(String, u8)> = joined
        .into_iter()
        .map(|(output, outcome)| {
            let output: Value = serde_json::from_str(&output).unwrap();
            (output["request_id"].as_str().unwrap().to_string(), outcome)
        })
        .collect();
    assert_eq!(joined, [(ids[0].clone(), 1), (ids[3].clone(), 0)]);

    // 50 applications in one request reach a queue of one entry faster
    // than the writer (which lets entries gather for a tick) takes them.
    let list = json!({"applications": vec![application(); 50]});
    let url = server.url("/v1/models/default_risk/score");
    let (status, answer) = post(&c, &url, &scorer, &list);
    assert_eq!(status, 200, "{answer}");
    let (mut written, mut dropped) = (0, 0);
    wait_for("50 entries written or dropped", || {
        written = log_counter(&c, &server, "written");
        dropped = log_counter(&c, &server, "dropped");
        written + dropped == 50
    });
    assert!(
        dropped > 0 && written > 0,
        "{written} written, {dropped} dropped"
    );
    assert!(server.terminate().success());
    assert_eq!(catalog.logged_requests().unwrap().len() as u64, 5 + written);
    assert_eq!(segments(), 0);
}
