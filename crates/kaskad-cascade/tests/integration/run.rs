//! Execution against the deterministic fake scorer: every node type, reuse,
//! switches, sticky splits, shadows, timeouts and rules.

use kaskad_cascade::{
    CascadeResult, ModuleFailure, ModuleRun, ModuleTarget, Outcome, OutputViolation, PathStep,
    RunError, RunOptions, Taken,
};
use serde_json::{Map, Value, json};

use crate::support::{Scorer, compiled, expected_score, module};

pub fn design_example() -> Value {
    json!({
      "name": "sme_scoring",
      "type": "chain",
      "nodes": [
        {"type": "group", "nodes": [
          {"type": "module", "name": "bureau", "model": "bureau_lr@champion", "sources": ["applicant", "bureau"]},
          {"type": "module", "name": "behaviour", "model": "behaviour_gbdt@3", "sources": ["transactions"],
           "output_rule": {"score": {"min": 0, "max": 1}}}
        ]},
        {"type": "module", "name": "final", "model": "final_lr@champion", "sources": ["applicant"],
         "reuse": {"bureau_score": "bureau.score", "behaviour_score": "behaviour.score"}}
      ],
      "output": {"score": "final.score", "reasons": "final.reasons"}
    })
}

fn applicant(income: f64) -> Value {
    json!({"applicant": {"income": income, "region": "north", "id": "c-1"}, "bureau": {"debt": 100}, "transactions": {"txn_count": 50}})
}

async fn run(cascade: &Value, request: &Value) -> (Result<CascadeResult, RunError>, Scorer) {
    let scorer = Scorer::default();
    let result = compiled(cascade.clone())
        .run(request, &scorer, RunOptions::default())
        .await;
    (result, scorer)
}

async fn ok(cascade: &Value, request: &Value) -> (CascadeResult, Scorer) {
    let (result, scorer) = run(cascade, request).await;
    match result {
        Ok(result) => (result, scorer),
        Err(error) => panic!("{error}"),
    }
}

fn get<'r>(result: &'r CascadeResult, name: &str) -> &'r ModuleRun {
    let found = result.modules.iter().find(|run| run.name == name);
    found.unwrap_or_else(|| panic!("no module {name}"))
}

fn score_of(run: &ModuleRun) -> f64 {
    run.result
        .as_ref()
        .and_then(|result| result["score"].as_f64())
        .expect("score")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn the_design_example_passes_reused_scores_to_the_final_model() {
    let (result, scorer) = ok(&design_example(), &applicant(300.0)).await;
    assert!(close(score_of(get(&result, "bureau")), 0.4)); // (300 + 100) / 1000
    assert!(close(score_of(get(&result, "behaviour")), 0.05));
    let input = scorer.input_of("final");
    assert_eq!(
        input["bureau_score"],
        get(&result, "bureau").result.as_ref().expect("result")["score"]
    );
    assert!(close(
        input["behaviour_score"].as_f64().expect("number"),
        0.05
    ));
    assert_eq!(input["region"], "north");
    let expected = expected_score(&input, 0.0);
    assert!(close(
        result.output["score"].as_f64().expect("score"),
        expected
    ));
    assert_eq!(result.output["reasons"], json!(["final_reason"]));
    assert_eq!(result.output.len(), 2);
    assert!(
        result
            .modules
            .iter()
            .all(|run| run.outcome == Outcome::Ok && !run.shadow)
    );
    assert!(result.path.is_empty());
}

#[tokio::test]
async fn switch_on_a_request_field_picks_the_first_case_that_holds() {
    let cascade = json!({"name": "c", "type": "switch",
        "cases": [{"when": {"field": "applicant.income", "op": "lt", "value": 100}, "node": module("thin", json!({"sources": ["applicant"], "params": {"bias": 0.3}}))}],
        "default": module("full", json!({"sources": ["applicant", "bureau"]})),
        "output": {"score": ["thin.score", "full.score"]}});
    let (low, _) = ok(&cascade, &applicant(50.0)).await;
    assert!(close(low.output["score"].as_f64().expect("score"), 0.35));
    assert_eq!(
        low.path,
        [PathStep {
            node: "$".into(),
            taken: Taken::Case(0),
            shadow: false
        }]
    );
    assert_eq!(get(&low, "full").outcome, Outcome::Skipped);

    let (high, scorer) = ok(&cascade, &applicant(500.0)).await;
    assert!(close(high.output["score"].as_f64().expect("score"), 0.6));
    assert_eq!(high.path[0].taken, Taken::Default);
    assert!(!scorer.called("thin"));
}

#[tokio::test]
async fn switch_on_an_earlier_result_with_all_and_any() {
    let cascade = json!({"name": "c", "type": "chain", "nodes": [
        module("bureau", json!({"sources": ["applicant", "bureau"]})),
        {"type": "switch", "cases": [{"when": {"all": [
                {"field": "bureau.score", "op": "gt", "value": 0.5},
                {"any": [{"field": "applicant.region", "op": "eq", "value": "south"}, {"field": "applicant.flag", "op": "missing"}]}]},
             "node": module("review", json!({"reuse": {"prev": "bureau.score"}}))}],
         "default": module("approve", json!({"params": {"emit": {"score": 0.0, "decision": "accept", "reasons": []}}}))}],
        "output": {"decision": ["review.decision", "approve.decision"], "bureau": "bureau.score"}});
    let (risky, _) = ok(&cascade, &applicant(600.0)).await; // bureau.score = 0.7
    assert_eq!(risky.path[0].taken, Taken::Case(0));
    assert_eq!(risky.output["decision"], "accept"); // review scores prev / 1000
    assert!(close(score_of(get(&risky, "review")), 0.0007));
    let (safe, _) = ok(&cascade, &applicant(100.0)).await; // 0.2
    assert_eq!(safe.path[0].taken, Taken::Default);
    assert_eq!(get(&safe, "review").outcome, Outcome::Skipped);
    let mut flagged = applicant(600.0);
    flagged["applicant"]["flag"] = json!(true);
    let (flagged, _) = ok(&cascade, &flagged).await;
    assert_eq!(flagged.path[0].taken, Taken::Default);
}

#[tokio::test]
async fn a_switch_without_default_may_run_nothing() {
    let cascade = json!({"name": "c", "type": "chain", "nodes": [
        {"type": "switch", "cases": [{"when": {"field": "applicant.income", "op": "ge", "value": 1e6}, "node": module("rich", json!({}))}]},
        module("base", json!({"sources": ["applicant"]}))],
        "output": {"score": "base.score"}});
    let (result, _) = ok(&cascade, &applicant(10.0)).await;
    assert_eq!(result.path[0].taken, Taken::NoCase);
    assert_eq!(get(&result, "rich").outcome, Outcome::Skipped);
}

#[tokio::test]
async fn nested_four_levels_deep_reuses_across_levels() {
    // chain > group > chain > switch > group > module
    let cascade = json!({"name": "deep", "type": "chain", "nodes": [
        {"type": "group", "nodes": [
            {"type": "chain", "nodes": [
                module("m1", json!({"sources": ["applicant"]})),
                {"type": "switch",
                 "cases": [{"when": {"field": "m1.score", "op": "gt", "value": 0.1},
                            "node": {"type": "group", "nodes": [
                                module("m2", json!({"reuse": {"prev": "m1.score"}})),
                                module("m3", json!({"sources": ["bureau"]}))]}}],
                 "default": module("m4", json!({}))}]},
            module("m5", json!({"sources": ["transactions"]}))]},
        module("final", json!({"reuse": {"prev": "m1.score", "txn_count": "m5.score", "debt": ["m3.score", "m4.score"]}}))],
        "output": {"score": "final.score"}});
    let (result, scorer) = ok(&cascade, &applicant(300.0)).await;
    assert_eq!(
        result.path,
        [PathStep {
            node: "$.nodes[0].nodes[0].nodes[1]".into(),
            taken: Taken::Case(0),
            shadow: false
        }]
    );
    assert!(close(
        scorer.input_of("m2")["prev"].as_f64().expect("prev"),
        0.3
    ));
    let input = scorer.input_of("final");
    assert_eq!(input.len(), 3);
    assert!(close(input["debt"].as_f64().expect("debt"), 0.1)); // m3 ran, not m4
    assert!(close(
        result.output["score"].as_f64().expect("score"),
        (0.3 + 0.05 + 0.1) / 1000.0
    ));
    let (low, scorer) = ok(&cascade, &applicant(50.0)).await;
    assert_eq!(low.path[0].taken, Taken::Default);
    assert_eq!(scorer.input_of("final")["debt"], json!(0.0)); // m4 has no input
}

fn ab_split(shadow: Value) -> Value {
    json!({"name": "ab", "type": "chain", "nodes": [
        {"type": "split", "key": "applicant.id",
         "branches": [{"weight": 90, "node": module("champion", json!({"sources": ["applicant"]}))},
                      {"weight": 10, "node": module("challenger", json!({"sources": ["applicant"], "params": {"bias": 1}}))}],
         "shadow": shadow},
        module("final", json!({"reuse": {"prev": ["champion.score", "challenger.score"]}}))],
        "output": {"score": ["champion.score", "challenger.score"], "final": "final.score"}})
}

#[tokio::test]
async fn split_is_sticky_and_follows_the_weights() {
    let cascade = compiled(ab_split(json!([])));
    let scorer = Scorer::default();
    let mut challenger = 0;
    for id in 0..10_000 {
        let request = json!({"applicant": {"id": format!("customer-{id}"), "income": 100}});
        let result = cascade
            .run(&request, &scorer, RunOptions::default())
            .await
            .expect("run");
        let again = cascade
            .run(&request, &scorer, RunOptions::default())
            .await
            .expect("run");
        assert_eq!(
            result.path, again.path,
            "customer-{id} moved between branches"
        );
        if result.path[0].taken == Taken::Branch(1) {
            challenger += 1;
            assert!(close(result.output["score"].as_f64().expect("score"), 1.1));
            assert_eq!(get(&result, "champion").outcome, Outcome::Skipped);
        } else {
            assert!(close(result.output["score"].as_f64().expect("score"), 0.1));
        }
    }
    // 10 % of 10,000; 4.5 standard deviations either side.
    assert!(
        (865..=1135).contains(&challenger),
        "{challenger} of 10000 in the 10 % branch"
    );

    // A numeric key hashes like its text.
    let numeric = cascade
        .run(
            &json!({"applicant": {"id": 42}}),
            &scorer,
            RunOptions::default(),
        )
        .await
        .expect("run");
    let text = cascade
        .run(
            &json!({"applicant": {"id": "42"}}),
            &scorer,
            RunOptions::default(),
        )
        .await
        .expect("run");
    assert_eq!(numeric.path, text.path);
}

#[tokio::test]
async fn shadows_run_are_reported_and_never_returned_and_their_failure_is_not_fatal() {
    let shadow = json!([
        {"type": "chain", "nodes": [
            module("s1", json!({"sources": ["applicant"], "params": {"bias": 0.5}})),
            module("s2", json!({"reuse": {"prev": "s1.score"}}))]},
        module("s3", json!({"params": {"fail": "boom"}})),
        module("s4", json!({"sources": ["missing_source"]}))]);
    let cascade = ab_split(shadow);
    let request = json!({"applicant": {"id": "c-7", "income": 200}});
    let (result, scorer) = ok(&cascade, &request).await;
    assert_eq!(result.output.keys().collect::<Vec<_>>(), ["final", "score"]);
    assert!(
        close(result.output["score"].as_f64().expect("score"), 0.2)
            || close(result.output["score"].as_f64().expect("score"), 1.2)
    );
    for name in ["s1", "s2", "s3", "s4"] {
        assert!(get(&result, name).shadow, "{name}");
    }
    assert_eq!(get(&result, "s1").outcome, Outcome::Ok);
    assert!(close(
        scorer.input_of("s2")["prev"].as_f64().expect("prev"),
        0.7
    ));
    let s3 = get(&result, "s3");
    assert_eq!(
        (s3.outcome, s3.error.as_deref()),
        (Outcome::Failed, Some("scorer failed: boom"))
    );
    assert_eq!(get(&result, "s4").outcome, Outcome::Failed);
    assert!(!get(&result, "final").shadow);

    let scorer = Scorer::default();
    let options = RunOptions {
        run_shadow: false,
        module_results: false,
    };
    let quiet = compiled(cascade)
        .run(&request, &scorer, options)
        .await
        .expect("run");
    assert!(!scorer.called("s1"));
    assert_eq!(get(&quiet, "s1").outcome, Outcome::Skipped);
    assert!(quiet.modules.iter().all(|run| run.result.is_none()));
    assert_eq!(quiet.output, result.output);
}

fn slow(on_failure: Value) -> Value {
    json!({"name": "c", "type": "chain", "nodes": [
        module("fast", json!({"sources": ["applicant"]})),
        module("slow", json!({"sources": ["applicant"], "timeout_ms": 100, "params": {"sleep_ms": 5000}, "on_failure": on_failure}))],
        "output": {"score": "slow.score", "decision": "slow.decision"}})
}

#[tokio::test(start_paused = true)]
async fn a_timeout_falls_back() {
    let started = tokio::time::Instant::now();
    let (result, _) = ok(
        &slow(json!({"fallback": {"score": 0.5, "decision": "refer"}})),
        &applicant(1.0),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_millis(150));
    assert_eq!(
        result.output,
        json!({"score": 0.5, "decision": "refer"})
            .as_object()
            .cloned()
            .expect("object")
    );
    let run = get(&result, "slow");
    assert_eq!(
        (run.outcome, run.error.as_deref()),
        (Outcome::Fallback, Some("timed out after 100 ms"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_run_naming_the_module() {
    let (result, _) = run(&slow(json!("fail")), &applicant(1.0)).await;
    let error = result.expect_err("timeout");
    assert_eq!(
        error,
        RunError::Module {
            module: "slow".into(),
            path: "$.nodes[1]".into(),
            failure: ModuleFailure::Timeout { ms: 100 }
        }
    );
    assert_eq!(
        error.to_string(),
        "module `slow` at $.nodes[1]: timed out after 100 ms"
    );
    assert_eq!(
        (
            error.module(),
            error.path().as_str(),
            error.is_request_error()
        ),
        (Some("slow"), "$.nodes[1]", false)
    );
}

#[tokio::test(start_paused = true)]
async fn group_children_run_concurrently() {
    let cascade = json!({"name": "c", "type": "group", "nodes": [
        module("a", json!({"params": {"sleep_ms": 300}})),
        module("b", json!({"params": {"sleep_ms": 300}})),
        module("c", json!({"params": {"sleep_ms": 300}}))],
        "output": {"a": "a.score", "b": "b.score", "c": "c.score"}});
    let started = tokio::time::Instant::now();
    ok(&cascade, &json!({})).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(400),
        "{elapsed:?}"
    );
}

fn emitting(emit: Value, rule: Value, on_failure: Value) -> Value {
    json!({"name": "c", "type": "module", "model": "m@1", "params": {"emit": emit},
           "output_rule": rule, "on_failure": on_failure, "output": {"score": "c.score"}})
}

#[tokio::test]
async fn output_rule_violations_are_failures() {
    let range = json!({"score": {"min": 0, "max": 1}});
    let (result, _) = run(
        &emitting(json!({"score": 1.7}), range.clone(), json!("fail")),
        &json!({}),
    )
    .await;
    let Err(RunError::Module { failure, .. }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        failure,
        ModuleFailure::OutputRule {
            field: "score".into(),
            violation: OutputViolation::Above {
                value: 1.7,
                max: 1.0
            }
        }
    );

    let (result, _) = run(
        &emitting(json!({"score": "high"}), range.clone(), json!("fail")),
        &json!({}),
    )
    .await;
    let Err(RunError::Module { failure, .. }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        failure.to_string(),
        "output `score` violates output_rule: expected a number, found a string"
    );

    let required = json!({"score": {"required": true}});
    let (result, _) = ok(
        &emitting(
            json!({"decision": "x"}),
            required,
            json!({"fallback": {"score": 0.9}}),
        ),
        &json!({}),
    )
    .await;
    assert_eq!(result.output["score"], 0.9);
    let run = get(&result, "c");
    assert_eq!(
        (run.outcome, run.error.as_deref()),
        (
            Outcome::Fallback,
            Some("output `score` violates output_rule: required but missing")
        )
    );

    let (result, _) = ok(
        &emitting(json!({"score": 0.25}), range, json!("fail")),
        &json!({}),
    )
    .await;
    assert_eq!(result.output["score"], 0.25);
}

#[tokio::test]
async fn input_rule_violations_are_failures_and_skip_the_scorer() {
    let cascade = |on_failure: Value| {
        json!({"name": "c", "type": "module", "model": "m@1", "sources": ["applicant"],
               "input_rule": {"type": "object", "required": ["income"], "properties": {"income": {"type": "number", "minimum": 0}}},
               "on_failure": on_failure, "output": {"score": "c.score"}})
    };
    let (result, scorer) = run(&cascade(json!("fail")), &applicant(-5.0)).await;
    let Err(RunError::Module {
        module,
        failure: ModuleFailure::InputRule { errors },
        ..
    }) = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(module, "c");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("/income: -5"), "{errors:?}");
    assert!(!scorer.called("c"));

    let (result, _) = ok(
        &cascade(json!({"fallback": {"score": 1}})),
        &json!({"applicant": {"region": "x"}}),
    )
    .await;
    assert_eq!(result.output["score"], 1);
    assert!(
        get(&result, "c")
            .error
            .as_deref()
            .is_some_and(|error| error.contains("\"income\" is a required property"))
    );

    let (result, _) = ok(&cascade(json!("fail")), &applicant(5.0)).await;
    assert!(close(
        result.output["score"].as_f64().expect("score"),
        0.005
    ));
}

#[tokio::test]
async fn malformed_requests_fail_whatever_on_failure_says() {
    let cascade = json!({"name": "c", "type": "chain", "nodes": [
        {"type": "split", "key": "applicant.id", "branches": [{"weight": 1, "node": module("a", json!({"sources": ["applicant"]}))}]},
        module("b", json!({"sources": ["bureau"], "on_failure": {"fallback": {"score": 0}}}))],
        "output": {"score": "b.score"}});
    let (result, _) = run(&cascade, &json!([1, 2])).await;
    assert_eq!(
        result.expect_err("array"),
        RunError::RequestNotObject { found: "an array" }
    );

    let (result, _) = run(&cascade, &json!({"applicant": {"income": 1}})).await;
    let error = result.expect_err("no id");
    assert_eq!(
        error.to_string(),
        "split at $.nodes[0]: key `applicant.id` must be a string or a number, found no value"
    );
    assert!(error.is_request_error());

    let (result, _) = run(&cascade, &json!({"applicant": {"id": 1}, "bureau": "none"})).await;
    assert_eq!(
        result.expect_err("string source"),
        RunError::SourceNotObject {
            module: "b".into(),
            path: "$.nodes[1]".into(),
            source_key: "bureau".into(),
            found: "a string"
        }
    );
}

#[tokio::test]
async fn a_failing_group_member_fails_the_run() {
    let cascade = json!({"name": "c", "type": "chain", "nodes": [{"type": "group", "nodes": [
        module("a", json!({})), module("b", json!({"params": {"fail": "model not loaded"}}))]}],
        "output": {"score": "a.score"}});
    let (result, _) = run(&cascade, &json!({})).await;
    assert_eq!(
        result.expect_err("b fails").to_string(),
        "module `b` at $.nodes[0].nodes[1]: scorer failed: model not loaded"
    );
}

#[tokio::test]
async fn a_result_without_the_output_field_is_an_error() {
    let cascade = emitting(json!({"decision": "x"}), json!({}), json!("fail"));
    let (result, _) = run(&cascade, &json!({})).await;
    let error = result.expect_err("no score");
    assert_eq!(
        error,
        RunError::MissingOutput {
            name: "score".into(),
            reference: "c.score".into()
        }
    );
    assert_eq!(error.path(), "$.output.score");
}

#[tokio::test]
async fn remote_modules_reach_the_scorer_with_their_endpoint() {
    let cascade = json!({"name": "r", "type": "module", "remote": {"url": "http://127.0.0.1:9/v2/models/x/infer", "model": "x"},
                         "sources": ["applicant"], "params": {"bias": 0.5}, "output": {"score": "r.score", "anything": "r.decision"}});
    let compiled = compiled(cascade.clone());
    assert_eq!(
        compiled.modules()[0].target(),
        &ModuleTarget::Remote {
            url: "http://127.0.0.1:9/v2/models/x/infer".into(),
            model: "x".into()
        }
    );
    assert_eq!(
        compiled.modules()[0].timeout(),
        std::time::Duration::from_millis(1000)
    );
    let (result, _) = ok(&cascade, &applicant(0.0)).await;
    assert_eq!(result.output["score"], 0.5);
}

#[tokio::test]
async fn the_result_serializes_for_logging() {
    let (result, _) = ok(&ab_split(json!([])), &applicant(1.0)).await;
    let value = serde_json::to_value(&result).expect("json");
    assert!(value["path"][0]["taken"]["branch"].is_u64(), "{value}");
    assert_eq!(value["modules"][2]["outcome"], "ok");
    assert!(value["modules"][2]["latency_us"].is_u64());
    let outcomes: Map<String, Value> = result
        .modules
        .iter()
        .map(|run| {
            (
                run.name.clone(),
                serde_json::to_value(run.outcome).expect("json"),
            )
        })
        .collect();
    assert!(outcomes.values().any(|outcome| outcome == "skipped"));
}

#[test]
fn the_run_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let cascade = compiled(design_example());
    let (request, scorer) = (applicant(1.0), Scorer::default());
    let future = cascade.run(&request, &scorer, RunOptions::default());
    assert_send(&future);
}
