//! Compilation: cascade JSON in, a [`CompiledCascade`] or every error out.

mod module;
mod parse;
mod refs;

use serde_json::Value;

use crate::catalog::ModelCatalog;
use crate::error::{CascadeError, CascadeErrorKind as Kind};
use crate::path;
use crate::plan::{CompiledCascade, ModuleSpec};

use parse::{Draft, Parser};
use refs::{Reader, Resolver};

/// Checks a cascade and compiles it for [`CompiledCascade::run`].
///
/// Every problem is reported, each with the JSON path of the offending
/// value: unknown or missing keys, wrong types, unknown models, duplicate
/// module names, reuse of a module that has not run on every path before the
/// reader, fields a model does not output, text fed into numeric inputs,
/// invalid JSON Schemas, non-positive split weights, empty lists and trees
/// deeper than 32 levels.
///
/// Two extensions of the format are accepted: a `reuse` or `output` value
/// may be a list of alternatives (`["champion.score", "challenger.score"]`,
/// the first module that ran is used), which is how a value after a `split`
/// or `switch` is read; and a condition field may go deeper than one level
/// (`applicant.address.zip`).
pub fn compile(
    json: &Value,
    models: &dyn ModelCatalog,
) -> Result<CompiledCascade, Vec<CascadeError>> {
    let mut parser = Parser::new(models);
    let Some(top) = parser.object(json, "$") else {
        return Err(parser.errors);
    };
    let name = match top.get("name") {
        None => {
            parser.error("$", Kind::MissingKey { key: "name" });
            None
        }
        Some(name) => parser.string(name, "$.name").map(str::to_owned),
    };
    // A module root validates `name` as its own module name.
    if let Some(name) = &name
        && top.get("type").and_then(Value::as_str) != Some("module")
    {
        parser.valid_name(name, "$.name");
    }
    let root = parser.node(json, "$", 1, true);
    let mut outputs = Vec::new();
    match top.get("output") {
        None => parser.error("$", Kind::MissingKey { key: "output" }),
        Some(output) => {
            if let Some(map) = parser.object(output, "$.output") {
                if map.is_empty() {
                    parser.error("$.output", Kind::Empty { what: "`output`" });
                }
                for (key, value) in map {
                    let key_path = path::key("$.output", key);
                    let refs = parser.references(value, &key_path);
                    outputs.push((key.clone(), key_path, refs));
                }
            }
        }
    }

    let salt_prefix = name.clone().unwrap_or_default();
    let mut resolver = Resolver {
        salt_prefix: &salt_prefix,
        modules: &parser.modules,
        names: &parser.names,
        errors: std::mem::take(&mut parser.errors),
        reuse: parser.modules.iter().map(|_| Vec::new()).collect(),
    };
    let node = resolver.walk(&root, &mut Vec::new(), &mut Vec::new());
    let prefix: [&Draft; 1] = [&root];
    let mut output = Vec::with_capacity(outputs.len());
    for (key, key_path, refs) in &outputs {
        if refs.is_empty() {
            continue;
        }
        if let Some(resolved) = resolver.results(refs, key_path, Reader::Output, &prefix) {
            output.push((key.clone(), resolved));
        }
    }
    let Resolver { errors, reuse, .. } = resolver;
    if !errors.is_empty() {
        return Err(errors);
    }
    // No error recorded means every part was built.
    let (Some(name), Some(root)) = (name, node) else {
        return Err(errors);
    };
    let mut modules = Vec::with_capacity(parser.modules.len());
    for (draft, reuse) in parser.modules.into_iter().zip(reuse) {
        let Some(target) = draft.target else {
            return Err(errors);
        };
        modules.push(ModuleSpec {
            name: draft.name,
            path: draft.path,
            target,
            params: draft.params,
            sources: draft.sources,
            reuse,
            input_rule: draft.input_rule,
            output_rule: draft.output_rule,
            timeout: draft.timeout,
            on_failure: draft.on_failure,
            shadow: draft.shadow,
        });
    }
    Ok(CompiledCascade {
        name,
        root,
        modules,
        output,
    })
}
