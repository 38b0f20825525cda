//! What the compiler needs to know about registry models, and the trait the
//! registry implements to tell it.

use serde::Serialize;

/// Whether a field carries a number or anything else (a category, a list of
/// reason codes). The compiler uses it to reject a reuse that would feed text
/// into a numeric model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Numeric,
    Categorical,
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Numeric => "numeric",
            Self::Categorical => "categorical",
        })
    }
}

/// One named input or output of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
}

impl Field {
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }
}

/// The interface of a registry model as the catalog resolved it at compile
/// time: e.g. inputs `income` (numeric), `region` (categorical); outputs
/// `score` (numeric), `decision` and `reasons` (categorical).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub inputs: Vec<Field>,
    pub outputs: Vec<Field>,
}

impl ModelInfo {
    pub fn input(&self, name: &str) -> Option<&Field> {
        self.inputs.iter().find(|f| f.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&Field> {
        self.outputs.iter().find(|f| f.name == name)
    }

    pub(crate) fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|f| f.name.clone()).collect()
    }

    pub(crate) fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|f| f.name.clone()).collect()
    }
}

/// Resolves a model reference (`name`, `name@3`, `name@champion`) to its
/// interface. Implemented by the registry; tests use an in-memory map.
pub trait ModelCatalog {
    /// `Err` carries the reason shown to the author of the cascade, e.g.
    /// "no alias `champion`".
    fn resolve(&self, reference: &str) -> Result<ModelInfo, String>;
}
