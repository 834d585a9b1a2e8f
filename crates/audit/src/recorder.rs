//! Producing events: put them on the durable `audit` stream, off the hot path.

use crate::event::AuditEvent;
use anno_bus::Bus;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// The durable stream events travel on, from the gateways to the store.
pub const STREAM: &str = "audit";

/// Most events sent to Redis in one round trip.
const BATCH: usize = 256;
/// How long the sender lets events gather before it sends them: one Redis
/// round trip for all of them rather than one per call under load.
const LINGER: Duration = Duration::from_millis(5);
/// Attempts at sending a batch before its events are given up.
const ATTEMPTS: u32 = 5;

/// Hands events to the bus without ever holding up the call they describe.
///
/// In process an event goes straight onto the stream's queue. With Redis, events
/// wait in a queue of their own for one sender task, which appends whatever
/// has gathered since its last round trip as one pipeline: a gateway sends one
/// command per batch, not one per call.
#[derive(Clone)]
pub struct Recorder {
    bus: Bus,
    sender: Arc<OnceLock<mpsc::UnboundedSender<String>>>,
}

impl Recorder {
    pub fn new(bus: Bus) -> Self {
        Recorder { bus, sender: Arc::default() }
    }

    /// Puts the event on the stream, or in the queue of the task that does.
    pub fn record(&self, event: AuditEvent) {
        // In process the event goes over as it is; only Redis needs JSON.
        if self.bus.stream_key(STREAM).is_none() {
            self.bus.append_value(STREAM, event);
            return;
        }
        let payload = match serde_json::to_string(&event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, event.id = %event.id, "an audit event could not be encoded");
                return;
            }
        };
        let sender = match self.sender.get() {
            Some(sender) => sender,
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    tracing::error!(event.id = %event.id, "an audit event was dropped: no runtime to send it from");
                    return;
                };
                self.sender.get_or_init(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    runtime.spawn(send(self.bus.clone(), rx));
                    tx
                })
            }
        };
        if sender.send(payload).is_err() {
            tracing::error!(event.id = %event.id, "an audit event was dropped: its sender has stopped");
        }
    }
}

/// Sends queued events in batches until every recorder is gone. A batch that
/// fails is retried with backoff; after the last attempt it is given up, with
/// what queued meanwhile, so an outage holds at most a few seconds of events.
async fn send(bus: Bus, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::with_capacity(BATCH);
    while anno_bus::next_batch(&mut rx, &mut batch, BATCH, LINGER).await > 0 {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=ATTEMPTS {
            match bus.append_many(STREAM, &batch).await {
                Ok(()) => break,
                Err(e) if attempt == ATTEMPTS => {
                    let mut lost = batch.len();
                    while rx.try_recv().is_ok() {
                        lost += 1;
                    }
                    tracing::error!(error = %e, events = lost, "audit events could not be recorded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), attempt, "recording audit events failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::event;
    use anno_bus::testing::{redis_available, redis_url};
    use anno_bus::{Entry, Handler};

    /// Everything recorded reaches the stream, in order, across batches.
    #[tokio::test]
    async fn events_recorded_through_redis_arrive_in_order() {
        if !redis_available().await {
            return;
        }
        let namespace = format!("anno-recorder-test-{}-{}", std::process::id(), anno_tenancy::now_ms());
        let bus = Bus::redis(&redis_url(), &namespace).await.unwrap();
        let recorder = Recorder::new(bus.clone());
        let sent: Vec<AuditEvent> = (0..600).map(|n| event(None, n)).collect();
        for e in &sent {
            recorder.record(e.clone());
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let tx = tx.clone();
            Box::pin(async move {
                for entry in entries {
                    let _ = tx.send(serde_json::from_str::<AuditEvent>(&entry.payload)?.id);
                }
                Ok(())
            })
        });
        let _task = bus.consume(STREAM, "test", "test", handler);
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let id = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("events within 10 s");
            got.push(id.expect("the consumer is running"));
        }
        assert_eq!(got, sent.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
        let (mut conn, _) = bus.redis_connection().unwrap();
        let _: () = redis::cmd("DEL").arg(bus.stream_key(STREAM).unwrap()).query_async(&mut conn).await.unwrap();
    }
}
