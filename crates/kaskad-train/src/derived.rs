//! What a model derives from its fitted parameters for scoring (a search
//! index, kernel layouts, TreeSHAP tables) and keeps beside them.

use std::sync::OnceLock;

/// A value computed from a model's parameters on first use: not
/// serialized, and equal whatever it holds, since the parameters it comes
/// from are what the model's equality compares. The parameters must not
/// change once it is built (an update makes a new model).
#[derive(Clone)]
pub(crate) struct Derived<T>(OnceLock<T>);

impl<T> Derived<T> {
    pub(crate) fn get_or_init(&self, build: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(build)
    }
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Derived(OnceLock::new())
    }
}

impl<T> PartialEq for Derived<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Derived(built)"
        } else {
            "Derived(empty)"
        })
    }
}
