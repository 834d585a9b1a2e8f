//! A circuit breaker per host, in process: after `threshold` consecutive failures
//! the host is left alone for `open_for`, then one trial request decides.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Past this many hosts, settled entries are dropped.
const PRUNE_AT: usize = 10_000;

pub(crate) struct Breaker {
    threshold: u32,
    open_for: Duration,
    hosts: Mutex<HashMap<String, State>>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A half-open trial is in flight since then. A trial that never reports back
    /// (its fetch was dropped) is forgotten after `open_for`.
    trial_since: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker { threshold, open_for, hosts: Mutex::new(HashMap::new()) }
    }

    fn hosts(&self) -> MutexGuard<'_, HashMap<String, State>> {
        self.hosts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a request to the host would be refused now (does not take the trial).
    pub(crate) fn is_open(&self, host: &str) -> bool {
        let now = Instant::now();
        self.hosts().get(host).is_some_and(|state| self.refuses(state, now))
    }

    fn refuses(&self, state: &State, now: Instant) -> bool {
        match state.open_until {
            Some(until) if now < until => true,
            Some(_) => state.trial_since.is_some_and(|since| now.duration_since(since) < self.open_for),
            None => false,
        }
    }

    /// May a request go to the host? In the half-open state, the first caller gets
    /// the trial and the others are refused until it reports.
    pub(crate) fn permit(&self, host: &str) -> bool {
        if self.threshold == 0 {
            return true;
        }
        let now = Instant::now();
        let mut hosts = self.hosts();
        let Some(state) = hosts.get_mut(host) else { return true };
        if self.refuses(state, now) {
            return false;
        }
        if state.open_until.is_some() {
            state.trial_since = Some(now);
        }
        true
    }

    pub(crate) fn success(&self, host: &str) {
        if self.threshold > 0 {
            self.hosts().remove(host);
        }
    }

    pub(crate) fn failure(&self, host: &str) {
        if self.threshold == 0 {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.hosts();
        if hosts.len() >= PRUNE_AT {
            hosts.retain(|_, state| state.open_until.is_some_and(|until| until > now));
        }
        let state = hosts.entry(host.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        if state.trial_since.is_some() || state.failures >= self.threshold {
            if state.open_until.is_none_or(|until| until <= now) {
                tracing::warn!(host, failures = state.failures, "circuit opened for a failing host");
            }
            state.open_until = Some(now + self.open_for);
            state.trial_since = None;
        }
    }

    /// The request ended without saying anything about the host's health (it was
    /// refused before connecting): give the trial back.
    pub(crate) fn release(&self, host: &str) {
        if let Some(state) = self.hosts().get_mut(host) {
            state.trial_since = None;
        }
    }
}
