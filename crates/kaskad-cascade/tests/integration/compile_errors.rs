//! Every compile error, each with the exact JSON path it is reported at.

use serde_json::{Value, json};

use crate::support::{compiled, errors, module};

fn m(name: &str) -> Value {
    module(name, json!({"sources": ["applicant"]}))
}

fn chain(nodes: Value, output: Value) -> Value {
    json!({"name": "c", "type": "chain", "nodes": nodes, "output": output})
}

/// Nodes nested `depth` levels deep (the root is level 1), a module at the bottom.
fn nested(depth: usize) -> Value {
    let mut node = m("deep");
    for _ in 1..depth {
        node = json!({"type": "chain", "nodes": [node]});
    }
    if let Value::Object(root) = &mut node {
        root.insert("name".into(), json!("c"));
        root.insert("output".into(), json!({"score": "deep.score"}));
    }
    node
}

struct Case {
    name: &'static str,
    cascade: Value,
    /// `(path, part of the message)`, in the order reported.
    expected: Vec<(String, &'static str)>,
}

fn case(name: &'static str, cascade: Value, expected: &[(&str, &'static str)]) -> Case {
    Case {
        name,
        cascade,
        expected: expected
            .iter()
            .map(|(path, message)| ((*path).to_owned(), *message))
            .collect(),
    }
}

fn cases() -> Vec<Case> {
    let score = json!({"score": "a.score"});
    vec![
        case("not an object", json!([1]), &[("$", "expected an object, found an array")]),
        case(
            "missing name and output",
            json!({"type": "chain", "nodes": [m("a")]}),
            &[("$", "missing required key `name`"), ("$", "missing required key `output`")],
        ),
        case(
            "unknown top-level key",
            json!({"name": "c", "type": "chain", "nodes": [m("a")], "output": score, "colour": 1}),
            &[("$.colour", "unknown key `colour`")],
        ),
        case(
            "unknown module key",
            chain(json!([module("a", json!({"colour": "red"}))]), score.clone()),
            &[("$.nodes[0].colour", "unknown key `colour` (expected one of: type, name, model")],
        ),
        case(
            "unknown node type",
            chain(json!([m("a"), {"type": "loop", "nodes": []}]), score.clone()),
            &[("$.nodes[1].type", "unknown node type `loop`")],
        ),
        case(
            "nodes of the wrong type",
            json!({"name": "c", "type": "group", "nodes": {"a": 1}, "output": {"s": "a.score"}}),
            &[("$.nodes", "expected an array, found an object"), ("$.output.s", "no module named `a`")],
        ),
        case(
            "empty chain",
            chain(json!([]), json!({"s": "x.score"})),
            &[("$.nodes", "`nodes` must not be empty"), ("$.output.s", "no module named `x`")],
        ),
        case(
            "empty nested group",
            chain(json!([m("a"), {"type": "group", "nodes": []}]), score.clone()),
            &[("$.nodes[1].nodes", "`nodes` must not be empty")],
        ),
        case(
            "invalid module name",
            chain(json!([m("a"), module("b.c", json!({}))]), score.clone()),
            &[("$.nodes[1].name", "`b.c` is not a valid name")],
        ),
        case(
            "unknown model",
            chain(json!([m("a"), {"type": "module", "name": "b", "model": "missing@3"}]), score.clone()),
            &[("$.nodes[1].model", "unknown model `missing@3`: no model `missing@3` in the registry")],
        ),
        case(
            "model and remote",
            chain(
                json!([{"type": "module", "name": "a", "model": "a@1", "remote": {"url": "http://x", "model": "y"}}]),
                score.clone(),
            ),
            &[("$.nodes[0]", "exactly one of `model` and `remote`")],
        ),
        case(
            "remote with a bad url and an unknown key",
            chain(json!([{"type": "module", "name": "a", "remote": {"url": "ftp://x", "model": "y", "v": 2}}]), score.clone()),
            &[("$.nodes[0].remote.v", "unknown key `v`"), ("$.nodes[0].remote.url", "`ftp://x` is not an http")],
        ),
        case(
            "duplicate module names",
            chain(json!([m("a"), {"type": "group", "nodes": [m("b"), m("a")]}]), score.clone()),
            &[("$.nodes[1].nodes[1].name", "module name `a` is already used at $.nodes[0]")],
        ),
        case(
            "wrong types in module fields",
            chain(
                json!([module("a", json!({"sources": "applicant", "params": [1], "timeout_ms": -5, "on_failure": "retry"}))]),
                score.clone(),
            ),
            &[
                ("$.nodes[0].params", "expected an object, found an array"),
                ("$.nodes[0].sources", "expected an array, found a string"),
                ("$.nodes[0].timeout_ms", "expected a whole number of milliseconds, found a number"),
                ("$.nodes[0].on_failure", "expected \"fail\" or {\"fallback\": {...}}, found a string"),
            ],
        ),
        case(
            "timeout out of range and duplicate source",
            chain(json!([module("a", json!({"sources": ["x", "x"], "timeout_ms": 0}))]), score.clone()),
            &[
                ("$.nodes[0].sources[1]", "`x` is listed twice"),
                ("$.nodes[0].timeout_ms", "timeout_ms must be between 1 and 600000, found 0"),
            ],
        ),
        case(
            "output rule min above max",
            chain(json!([module("a", json!({"output_rule": {"score": {"min": 1, "max": 0}}}))]), score.clone()),
            &[("$.nodes[0].output_rule.score.min", "min 1 is greater than max 0")],
        ),
        case(
            "output rule min of the wrong type, unknown rule key, unknown field",
            chain(
                json!([module("a", json!({"output_rule": {"score": {"min": "0", "above": 1}, "colour": {"required": true}}}))]),
                score.clone(),
            ),
            &[
                ("$.nodes[0].output_rule.colour", "module `a` does not output `colour` (it outputs: score, decision, reasons)"),
                ("$.nodes[0].output_rule.score.above", "unknown key `above`"),
                ("$.nodes[0].output_rule.score.min", "expected a number, found a string"),
            ],
        ),
        case(
            "range on a categorical output",
            chain(json!([module("a", json!({"output_rule": {"decision": {"max": 1}}}))]), score.clone()),
            &[("$.nodes[0].output_rule.decision", "output `decision` is categorical")],
        ),
        case(
            "invalid JSON Schema",
            chain(json!([module("a", json!({"input_rule": {"type": "object", "properties": {"income": {"minimum": "zero"}}}}))]), score.clone()),
            &[("$.nodes[0].input_rule.properties.income.minimum", "invalid JSON Schema")],
        ),
        case(
            "fallback with an unknown field and a non-numeric score",
            chain(json!([module("a", json!({"on_failure": {"fallback": {"score": "high", "colour": 1}}}))]), score.clone()),
            &[
                ("$.nodes[0].on_failure.fallback.colour", "module `a` does not output `colour`"),
                ("$.nodes[0].on_failure.fallback.score", "fallback value for numeric output `score` must be a number"),
            ],
        ),
        case(
            "reuse of a later module (the cycle case)",
            chain(
                json!([module("a", json!({"reuse": {"prev": "b.score"}})), module("b", json!({"reuse": {"prev": "a.score"}}))]),
                json!({"s": "b.score"}),
            ),
            &[("$.nodes[0].reuse.prev", "module `b` has not run at this point: it runs later, at $.nodes[1], in the chain at $")],
        ),
        case(
            "reuse of its own result",
            chain(json!([module("a", json!({"reuse": {"prev": "a.score"}}))]), score.clone()),
            &[("$.nodes[0].reuse.prev", "a module cannot read its own result")],
        ),
        case(
            "reuse within the same group",
            chain(json!([{"type": "group", "nodes": [m("a"), module("b", json!({"reuse": {"prev": "a.score"}}))]}]), score.clone()),
            &[("$.nodes[0].nodes[1].reuse.prev", "it runs concurrently, in the same group at $.nodes[0]")],
        ),
        case(
            "reuse of a module in a switch branch",
            chain(
                json!([
                    {"type": "switch", "cases": [{"when": {"field": "applicant.income", "op": "lt", "value": 10}, "node": m("a")}]},
                    module("b", json!({"reuse": {"prev": "a.score"}}))
                ]),
                json!({"s": "b.score"}),
            ),
            &[("$.nodes[1].reuse.prev", "it runs only when case 0 of the switch at $.nodes[0] holds")],
        ),
        case(
            "reuse of another switch branch",
            chain(
                json!([{"type": "switch",
                        "cases": [{"when": {"field": "applicant.income", "op": "lt", "value": 10}, "node": m("a")}],
                        "default": module("b", json!({"reuse": {"prev": "a.score"}}))}]),
                json!({"s": ["a.score", "b.score"]}),
            ),
            &[("$.nodes[0].default.reuse.prev", "it is in another branch of the switch at $.nodes[0]")],
        ),
        case(
            "reuse of an unknown module and an unknown field",
            chain(
                json!([m("a"), module("b", json!({"reuse": {"prev": "ghost.score", "debt": "a.colour", "income": "a"}}))]),
                json!({"s": "b.score"}),
            ),
            &[
                ("$.nodes[1].reuse.debt", "module `a` does not output `colour`"),
                ("$.nodes[1].reuse.income", "`a` is not a reference of the form `module.field`"),
                ("$.nodes[1].reuse.prev", "no module named `ghost` in this cascade"),
            ],
        ),
        case(
            "reuse into an input the model does not have",
            chain(json!([m("a"), module("b", json!({"reuse": {"colour": "a.score"}}))]), json!({"s": "b.score"})),
            &[("$.nodes[1].reuse.colour", "model `b_lr@champion` has no input `colour`")],
        ),
        case(
            "type mismatch: categorical output into a numeric input",
            chain(json!([m("a"), module("b", json!({"reuse": {"prev": "a.reasons", "label": "a.decision"}}))]), json!({"s": "b.score"})),
            &[("$.nodes[1].reuse.prev", "input `prev` of model `b_lr@champion` is numeric but `a.reasons` is categorical")],
        ),
        case(
            "reuse of a field the fallback does not set",
            chain(
                json!([module("a", json!({"on_failure": {"fallback": {"decision": "refer"}}})), module("b", json!({"reuse": {"prev": "a.score"}}))]),
                json!({"s": "b.score"}),
            ),
            &[("$.nodes[1].reuse.prev", "the fallback of module `a` does not set `score`")],
        ),
        case(
            "output of unknown modules and fields",
            chain(json!([m("a")]), json!({"s": "ghost.score", "t": "a.colour", "u": 3})),
            &[
                ("$.output.s", "no module named `ghost`"),
                ("$.output.t", "module `a` does not output `colour`"),
                ("$.output.u", "expected a \"module.field\" string or a list of them, found a number"),
            ],
        ),
        case(
            "output of a split branch alone, and of a shadow",
            json!({"name": "c", "type": "split", "key": "applicant.id",
                   "branches": [{"weight": 1, "node": m("a")}, {"weight": 1, "node": m("b")}],
                   "shadow": [m("s")],
                   "output": {"a": "a.score", "s": "s.score", "ok": ["a.score", "b.score"]}}),
            &[
                ("$.output.a", "it runs only for requests sent to branch 0 of the split at $"),
                ("$.output.s", "it runs in a shadow branch of the split at $, whose results are never used"),
            ],
        ),
        case(
            "alternatives that do not cover every path",
            chain(
                json!([{"type": "switch", "cases": [{"when": {"field": "applicant.x", "op": "present"}, "node": m("a")},
                                                    {"when": {"field": "applicant.y", "op": "present"}, "node": m("b")}]}]),
                json!({"s": ["a.score", "b.score"]}),
            ),
            &[("$.output.s", "on some path none of the modules `a`, `b` has run at this point")],
        ),
        case(
            "shadow reading the main branch",
            json!({"name": "c", "type": "split", "key": "applicant.id",
                   "branches": [{"weight": 1, "node": m("a")}],
                   "shadow": [module("s", json!({"reuse": {"prev": "a.score"}}))],
                   "output": {"a": "a.score"}}),
            &[("$.shadow[0].reuse.prev", "shadow branches run beside the branches of the split at $")],
        ),
        case(
            "split weights not positive, missing key",
            json!({"name": "c", "type": "split",
                   "branches": [{"weight": 0, "node": m("a")}, {"weight": -2.5, "node": m("b")}, {"weight": "1", "node": m("d")}],
                   "output": {"s": ["a.score", "b.score", "d.score"]}}),
            &[
                ("$", "missing required key `key`"),
                ("$.branches[0].weight", "split weights must be positive and finite, found 0"),
                ("$.branches[1].weight", "found -2.5"),
                ("$.branches[2].weight", "expected a number, found a string"),
            ],
        ),
        case(
            "conditions: unknown op, value for missing, wrong value type, bad shape, bad field",
            chain(
                json!([m("a"), {"type": "switch", "cases": [
                    {"when": {"field": "applicant.income", "op": "between", "value": 1}, "node": m("b")},
                    {"when": {"field": "applicant.income", "op": "missing", "value": 1}, "node": m("d")},
                    {"when": {"all": [{"field": "a.score", "op": "gt", "value": [1]}, {"field": "income", "op": "present"}]}, "node": m("e")},
                    {"when": {"any": [], "all": []}, "node": m("f")},
                    {"when": {"field": "a.colour", "op": "eq", "value": 1}, "node": m("g")}],
                 "default": m("h")}]),
                score.clone(),
            ),
            &[
                ("$.nodes[1].cases[0].when.op", "unknown op `between`"),
                ("$.nodes[1].cases[1].when.value", "op `missing` takes no `value`"),
                ("$.nodes[1].cases[2].when.all[0].value", "expected a number or a string, found an array"),
                ("$.nodes[1].cases[3].when", "a condition is either"),
                ("$.nodes[1].cases[2].when.all[1].field", "`income` is not a reference of the form `source.field` or `module.field`"),
                ("$.nodes[1].cases[4].when.field", "module `a` does not output `colour`"),
            ],
        ),
        case(
            "condition on a module inside the switch",
            chain(
                json!([{"type": "switch", "cases": [{"when": {"field": "a.score", "op": "gt", "value": 0.5}, "node": m("a")}], "default": m("b")}]),
                json!({"s": ["a.score", "b.score"]}),
            ),
            &[("$.nodes[0].cases[0].when.field", "it is inside the switch at $.nodes[0], which reads this before any branch runs")],
        ),
        case(
            "split key of an unknown shape",
            json!({"name": "c", "type": "split", "key": "id", "branches": [{"weight": 1, "node": m("a")}], "output": score.clone()}),
            &[("$.key", "`id` is not a reference of the form `source.field` or `module.field`")],
        ),
        case(
            "too deep",
            nested(33),
            &[
                (&format!("${}", ".nodes[0]".repeat(32)), "nodes are nested deeper than 32 levels"),
                ("$.output.score", "no module named `deep`"),
            ],
        ),
    ]
    .into_iter()
    .map(|mut case| {
        case.expected.sort_by(|a, b| a.0.cmp(&b.0));
        case
    })
    .collect()
}

#[test]
fn every_error_is_reported_at_its_path() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut found: Vec<(String, String)> = errors(case.cascade)
            .into_iter()
            .map(|error| (error.path.clone(), error.to_string()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let matches = found.len() == case.expected.len()
            && found
                .iter()
                .zip(&case.expected)
                .all(|((path, message), (want_path, want))| {
                    path == want_path && message.contains(want)
                });
        if !matches {
            failures.push(format!(
                "{}:\n  expected {:?}\n  found    {:?}",
                case.name, case.expected, found
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn depth_32_is_accepted() {
    compiled(nested(32));
}

#[test]
fn the_design_example_compiles() {
    let cascade = compiled(crate::run::design_example());
    assert_eq!(cascade.name(), "sme_scoring");
    let names: Vec<_> = cascade
        .modules()
        .iter()
        .map(|module| module.name())
        .collect();
    assert_eq!(names, ["bureau", "behaviour", "final"]);
    assert_eq!(cascade.modules()[1].path(), "$.nodes[0].nodes[1]");
    // serde_json's map keeps keys sorted.
    assert_eq!(
        cascade.output_names().collect::<Vec<_>>(),
        ["reasons", "score"]
    );
}

#[test]
fn errors_display_path_and_message() {
    let found = errors(chain(json!([m("a")]), json!({"s": "ghost.score"})));
    assert_eq!(
        found[0].to_string(),
        "$.output.s: no module named `ghost` in this cascade"
    );
}
