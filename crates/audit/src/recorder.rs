//! Producing events: put them on the durable `audit` stream, off the hot path.

use crate::event::AuditEvent;
use anno_bus::Bus;
use std::time::Duration;

/// The durable stream events travel on, from the gateways to the store.
pub const STREAM: &str = "audit";

/// Hands events to the bus without ever holding up the call they describe.
#[derive(Clone)]
pub struct Recorder {
    bus: Bus,
}

impl Recorder {
    pub fn new(bus: Bus) -> Self {
        Recorder { bus }
    }

    /// Appends the event to the stream in a task of its own; a failure is
    /// retried a few times, then logged with the event id.
    pub fn record(&self, event: AuditEvent) {
        let payload = match serde_json::to_string(&event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, event.id = %event.id, "an audit event could not be encoded");
                return;
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(event.id = %event.id, "an audit event was dropped: no runtime to send it from");
            return;
        };
        let bus = self.bus.clone();
        runtime.spawn(async move {
            let mut backoff = Duration::from_millis(100);
            for attempt in 1..=5 {
                match bus.append(STREAM, &payload).await {
                    Ok(()) => return,
                    Err(e) if attempt == 5 => {
                        tracing::error!(error = %e, event.id = %event.id, "an audit event could not be recorded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, event.id = %event.id, attempt, "recording an audit event failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        });
    }
}
