//! Answers the server looked up in the catalog (what an alias names, a
//! cascade's latest version, an API key's role), kept while fresh and
//! looked up again in the background once stale.
//!
//! A stale answer still serves while one task per key asks the catalog
//! again: a busy server would otherwise send every request that arrives
//! during the lookup to the catalog, once per time to live. Answers are
//! ordered by when they were asked, so a slow lookup that read the catalog
//! before a change this server made (or saw) cannot put the old answer
//! back.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Answers by key, each with when it was asked.
pub(crate) struct Refreshing<V> {
    ttl: Duration,
    state: Mutex<State<V>>,
}

struct State<V> {
    /// `None`: removed (by this server) at that time, so that an answer
    /// asked earlier stays out.
    entries: HashMap<String, (Instant, Option<V>)>,
    /// Keys being looked up again.
    refreshing: HashSet<String>,
    /// Answers asked before this time are dropped.
    forgotten_at: Option<Instant>,
}

/// What [`Refreshing::get`] knows of a key.
pub(crate) enum Known<V> {
    Fresh(V),
    /// Older than the time to live: still the answer, and the caller
    /// should start a refresh ([`Refreshing::begin_refresh`]).
    Stale(V),
    Unknown,
}

impl<V: Clone> Refreshing<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Refreshing {
            ttl,
            state: Mutex::new(State {
                entries: HashMap::new(),
                refreshing: HashSet::new(),
                forgotten_at: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<V>> {
        // A panic while holding the lock leaves a usable map behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str) -> Known<V> {
        match self.state().entries.get(key) {
            Some((at, Some(value))) if at.elapsed() < self.ttl => Known::Fresh(value.clone()),
            Some((_, Some(value))) => Known::Stale(value.clone()),
            _ => Known::Unknown,
        }
    }

    /// Records `value`, found by a lookup that began at `asked`, unless a
    /// later-asked answer, a removal or [`Refreshing::forget_all`] came
    /// after it began.
    pub(crate) fn store(&self, key: &str, asked: Instant, value: V) {
        let mut state = self.state();
        if state.forgotten_at.is_some_and(|at| asked < at)
            || state.entries.get(key).is_some_and(|(at, _)| asked < *at)
        {
            return;
        }
        state.entries.insert(key.to_string(), (asked, Some(value)));
    }

    /// The key no longer resolves, as of `asked` (see [`Refreshing::store`]).
    /// Only a key with an answer keeps a mark of its removal, so keys that
    /// never resolved (a flood of made-up API keys) take no memory.
    pub(crate) fn remove(&self, key: &str, asked: Instant) {
        if let Some(entry) = self.state().entries.get_mut(key)
            && asked >= entry.0
        {
            *entry = (asked, None);
        }
    }

    /// A lookup that failed: the last answer serves another time to live.
    pub(crate) fn keep(&self, key: &str) {
        if let Some((at, Some(_))) = self.state().entries.get_mut(key) {
            *at = Instant::now();
        }
    }

    /// Drops every answer, and every lookup under way.
    pub(crate) fn forget_all(&self) {
        let mut state = self.state();
        state.entries.clear();
        state.forgotten_at = Some(Instant::now());
    }

    /// Whether the caller should look `key` up again: `false` when another
    /// task already does. The caller ends it with [`Refreshing::end_refresh`].
    pub(crate) fn begin_refresh(&self, key: &str) -> bool {
        self.state().refreshing.insert(key.to_string())
    }

    pub(crate) fn end_refresh(&self, key: &str) {
        self.state().refreshing.remove(key);
    }
}

impl<V: Clone + Send + 'static> Refreshing<V> {
    /// Looks `key` up again on a new task, unless that is under way (so a
    /// request that finds the lookup started builds nothing): `look_up`
    /// makes the lookup, which stores what it finds (or removes the key);
    /// when it fails, the last answer serves another time to live and the
    /// error goes to the server's log as a lookup of `what` (never the key
    /// itself, which may be a secret).
    pub(crate) fn refresh_in_background<Fut>(
        self: &Arc<Self>,
        key: &str,
        what: &'static str,
        look_up: impl FnOnce() -> Fut,
    ) where
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        if !self.begin_refresh(key) {
            return;
        }
        let look_up = look_up();
        let cache = Arc::clone(self);
        let key = key.to_string();
        tokio::spawn(async move {
            if let Err(e) = look_up.await {
                eprintln!(
                    "kaskad serve: looking up {what} again failed, still serving the last answer: {e}"
                );
                cache.keep(&key);
            }
            cache.end_refresh(&key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(cache: &Refreshing<i64>, key: &str) -> Option<(i64, bool)> {
        match cache.get(key) {
            Known::Fresh(v) => Some((v, false)),
            Known::Stale(v) => Some((v, true)),
            Known::Unknown => None,
        }
    }

    #[test]
    fn answers_are_ordered_by_when_they_were_asked() {
        let cache = Refreshing::new(Duration::from_secs(3600));
        let early = Instant::now();
        let late = early + Duration::from_millis(1);
        cache.store("a", late, 2);
        // A slower lookup that began earlier cannot put its answer back.
        cache.store("a", early, 1);
        assert_eq!(value(&cache, "a"), Some((2, false)));
        // Removed later than an answer asked in between: it stays removed.
        cache.remove("a", late + Duration::from_millis(2));
        cache.store("a", late + Duration::from_millis(1), 3);
        assert_eq!(value(&cache, "a"), None);
        // A key that never had an answer leaves no mark.
        cache.remove("never", Instant::now());
        assert!(!cache.state().entries.contains_key("never"));
        // Forgetting drops what lookups under way will find.
        let asked = Instant::now();
        cache.forget_all();
        cache.store("b", asked, 4);
        assert_eq!(value(&cache, "b"), None);
        cache.store("b", Instant::now(), 5);
        assert_eq!(value(&cache, "b"), Some((5, false)));
    }

    #[test]
    fn a_stale_answer_serves_and_one_refresh_runs_at_a_time() {
        let cache = Refreshing::new(Duration::ZERO);
        cache.store("a", Instant::now(), 1);
        assert_eq!(value(&cache, "a"), Some((1, true)));
        assert!(cache.begin_refresh("a"));
        assert!(!cache.begin_refresh("a"), "one refresh per key");
        cache.end_refresh("a");
        assert!(cache.begin_refresh("a"));
    }
}
