//! The store's contract, against SQLite and against Postgres: chains verify,
//! every kind of tampering is found, storing is idempotent and safe with
//! several consumers; the consumer and the exporter on top.

use crate::chain::{Chain, Fault};
use crate::event::{Actor, ActorKind, AuditEvent, Timestamp};
use crate::export::{ExportKind, Exporter};
use crate::store::{AuditStore, ListFilter, MIGRATIONS, SCHEMA};
use crate::webhook::{AllowList, WebhookClient};
use anno_store::DatabaseTarget;
use anno_store::testing::{TestDatabase, postgres_available};
use anno_tenancy::TenantId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn event(tenant: Option<&TenantId>, n: u16) -> AuditEvent {
    AuditEvent {
        id: AuditEvent::new_id(),
        time: Timestamp(1_790_000_000_000 + i64::from(n)),
        tenant_id: tenant.cloned(),
        actor: match tenant {
            Some(_) => Actor { kind: ActorKind::Key, id: Some("key_0123".into()) },
            None => Actor::anonymous(),
        },
        method: "POST".into(),
        route: Some("/v1/keys".into()),
        path: "/v1/keys".into(),
        status: 201,
        latency_ms: 3,
        client_ip: Some("203.0.113.9".into()),
        user_agent: Some("test/1 \"quoted\" ünïcode".into()),
        request_id: Some(format!("req_{n}")),
        request_digest: Some(crate::digest_string(&[7; 32])),
        request_bytes: 42,
        response_digest: None,
        response_bytes: 0,
    }
}

/// Events in id order with rising times, as a gateway makes them (ids made in
/// the same millisecond are otherwise in random order).
fn events(tenant: Option<&TenantId>, n: u16) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = (1..=n).map(|i| event(tenant, i)).collect();
    events.sort_by(|a, b| a.id.cmp(&b.id));
    for (i, e) in events.iter_mut().enumerate() {
        e.time = Timestamp(1_790_000_000_000 + i64::try_from(i).unwrap_or(0));
    }
    events
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("anno-audit-test-{:016x}", rand::random::<u64>()))
}

async fn store_on(target: &DatabaseTarget) -> AuditStore {
    let db = target.open(SCHEMA, 4).await.expect("open the audit database");
    db.migrate(MIGRATIONS).await.expect("migrate");
    AuditStore::new(db)
}

/// Runs `contract` on SQLite, then on Postgres when it is there.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let dir = super::temp_dir();
                    super::$name(&anno_store::DatabaseTarget::Sqlite { dir: dir.clone() }).await;
                    let _ = std::fs::remove_dir_all(dir);
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if !super::postgres_available().await {
                        return;
                    }
                    let db = super::TestDatabase::create().await.expect("a test database");
                    super::$name(&anno_store::DatabaseTarget::Postgres { url: db.url() }).await;
                    db.drop().await;
                }
            }
        )*
    };
}

on_both_backends!(
    audit_chain_verifies_and_an_edited_event_is_detected,
    removed_reordered_and_rehashed_events_are_detected,
    storing_is_idempotent_by_event_id,
    a_batch_of_many_chains_and_any_size_stores_each_event_once,
    concurrent_consumers_extend_one_chain_without_gaps,
    lists_are_per_chain_paged_and_filtered,
    the_consumer_stores_what_the_stream_carries,
    a_storer_left_behind_catches_up_and_then_steps_back,
    a_storer_whose_thread_stopped_stores_on_the_serving_runtime,
    file_exports_append_lines_and_failed_webhooks_back_off,
);

async fn exec(store: &AuditStore, sql: &str, id: &str) {
    sqlx::query(sql).bind(id).execute(store.db().pool()).await.expect(sql);
}

async fn audit_chain_verifies_and_an_edited_event_is_detected(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let (a, b) = (TenantId::generate(), TenantId::generate());
    let a_events = events(Some(&a), 4);
    let mut batch = a_events.clone();
    batch.extend(events(Some(&b), 2));
    batch.extend(events(None, 1));
    let grown = store.append(batch).await.unwrap();
    assert_eq!(grown.len(), 3, "three chains grew: {grown:?}");

    let report = store.verify(None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 7);
    let a_report = store.verify(Some(&Chain::Tenant(a.clone()))).await.unwrap();
    assert_eq!((a_report.chains.len(), a_report.chains[0].events), (1, 4));
    assert_eq!(store.head(&Chain::Platform).await.unwrap().map(|(seq, _)| seq), Some(1));

    // Read back, every field is what was stored.
    let filter = ListFilter { chain: Some(Chain::Tenant(a.clone())), limit: 10, ..Default::default() };
    let listed = store.list(&filter).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.event.clone()).collect::<Vec<_>>(), a_events);
    assert_eq!(listed.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);

    // An edited field breaks the chain at that event, and only that chain.
    exec(&store, "UPDATE audit_events SET status = 200 WHERE id = $1", &a_events[1].id).await;
    let report = store.verify(None).await.unwrap();
    assert!(!report.is_intact());
    let broken: Vec<_> = report.chains.iter().filter(|c| c.broken.is_some()).collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].chain, a.as_str());
    let at = broken[0].broken.clone().unwrap();
    assert_eq!((at.seq, at.fault, at.event_id.as_deref()), (2, Fault::Edited, Some(a_events[1].id.as_str())));
    assert_eq!(broken[0].events, 1, "one event verified before the break");
}

async fn removed_reordered_and_rehashed_events_are_detected(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let tenants: Vec<TenantId> = (0..5).map(|_| TenantId::generate()).collect();
    let chains: Vec<Vec<AuditEvent>> = tenants.iter().map(|t| events(Some(t), 4)).collect();
    store.append(chains.concat()).await.unwrap();
    let fault = |n: usize| {
        let store = store.clone();
        let chain = Chain::Tenant(tenants[n].clone());
        async move { store.verify(Some(&chain)).await.unwrap().chains[0].broken.clone().map(|b| (b.seq, b.fault)) }
    };
    assert_eq!(fault(0).await, None);

    exec(&store, "DELETE FROM audit_events WHERE id = $1", &chains[0][1].id).await;
    assert_eq!(fault(0).await, Some((2, Fault::Missing)));

    exec(&store, "DELETE FROM audit_events WHERE id = $1", &chains[1][3].id).await;
    assert_eq!(fault(1).await, Some((4, Fault::Head)), "removing the newest event is found too");

    // Swap the places of events 2 and 3.
    exec(&store, "UPDATE audit_events SET seq = -2 WHERE id = $1", &chains[2][1].id).await;
    exec(&store, "UPDATE audit_events SET seq = 2 WHERE id = $1", &chains[2][2].id).await;
    exec(&store, "UPDATE audit_events SET seq = 3 WHERE id = $1", &chains[2][1].id).await;
    assert_eq!(fault(2).await, Some((2, Fault::Unlinked)));

    // An edit whose hash was recomputed breaks the next link.
    let records = store.records_after(&Chain::Tenant(tenants[3].clone()), 0, 10).await.unwrap();
    let mut forged = records[1].event.clone();
    forged.actor = Actor::anonymous();
    let hash = crate::chain::link_hash(&records[1].prev_hash, tenants[3].as_str(), 2, &forged);
    sqlx::query("UPDATE audit_events SET actor_kind = 'anonymous', actor_id = NULL, hash = $1 WHERE id = $2")
        .bind(&hash)
        .bind(&forged.id)
        .execute(store.db().pool())
        .await
        .unwrap();
    assert_eq!(fault(3).await, Some((3, Fault::Unlinked)));

    // A value that cannot be read back is reported, not skipped.
    exec(&store, "UPDATE audit_events SET actor_kind = 'ghost' WHERE id = $1", &chains[4][0].id).await;
    assert_eq!(fault(4).await, Some((1, Fault::Unreadable)));
    assert!(!store.verify(None).await.unwrap().is_intact());
}

async fn storing_is_idempotent_by_event_id(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let tenant = TenantId::generate();
    let chain = Chain::Tenant(tenant.clone());
    let batch = events(Some(&tenant), 3);
    assert_eq!(store.append(batch.clone()).await.unwrap(), std::slice::from_ref(&chain));
    let head = store.head(&chain).await.unwrap();
    // Redelivered, alone or with new events and duplicates within the batch.
    assert!(store.append(batch.clone()).await.unwrap().is_empty(), "nothing new");
    assert_eq!(store.head(&chain).await.unwrap(), head);
    let new = event(Some(&tenant), 9);
    let mixed = vec![batch[0].clone(), new.clone(), new.clone(), batch[2].clone()];
    assert_eq!(store.append(mixed).await.unwrap(), std::slice::from_ref(&chain));
    let records = store.records_after(&chain, 0, 100).await.unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(records[3].event, new);
    assert!(store.append(Vec::new()).await.unwrap().is_empty());
    assert!(store.verify(None).await.unwrap().is_intact());
}

/// One batch across chains, of sizes that are not the statements' own (more
/// rows than one `INSERT` takes, too), with events stored before among them.
async fn a_batch_of_many_chains_and_any_size_stores_each_event_once(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let tenants: Vec<TenantId> = (0..4).map(|_| TenantId::generate()).collect();
    let earlier = events(Some(&tenants[0]), 10);
    store.append(earlier.clone()).await.unwrap();
    let sizes = [37_u16, 5, 1, 300];
    let mut batch = earlier.clone();
    for (tenant, n) in tenants.iter().zip(sizes) {
        batch.extend(events(Some(tenant), n));
    }
    batch.extend(events(None, 3));
    batch.push(batch[12].clone());
    let grown = store.append(batch).await.unwrap();
    let mut expected: Vec<Chain> = tenants.iter().cloned().map(Chain::Tenant).collect();
    expected.push(Chain::Platform);
    expected.sort();
    assert_eq!(grown, expected);
    for (tenant, n) in tenants.iter().zip(sizes) {
        let chain = Chain::Tenant(tenant.clone());
        let stored = if tenant == &tenants[0] { usize::from(n) + 10 } else { usize::from(n) };
        let records = store.records_after(&chain, 0, 1000).await.unwrap();
        assert_eq!(records.len(), stored, "{tenant}");
        assert!(records.iter().zip(1..).all(|(r, seq)| r.seq == seq), "{tenant}: seqs run 1, 2, 3…");
        assert_eq!(store.head(&chain).await.unwrap().map(|(seq, _)| seq), Some(stored as i64));
    }
    let report = store.verify(None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 10 + 37 + 5 + 1 + 300 + 3);
}

async fn concurrent_consumers_extend_one_chain_without_gaps(target: &DatabaseTarget) {
    // Two stores with pools of their own: two replicas.
    let (one, two) = (store_on(target).await, store_on(target).await);
    let tenant = TenantId::generate();
    let run = |store: AuditStore, tenant: TenantId| async move {
        for round in 0..8 {
            let mut batch = events(Some(&tenant), 5);
            batch.push(event(None, round));
            store.append(batch).await.expect("append");
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(run(one.clone(), tenant.clone())), tokio::spawn(run(two, tenant.clone())));
    a.unwrap();
    b.unwrap();
    let report = one.verify(None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let tenant_chain = report.chains.iter().find(|c| c.chain == tenant.as_str()).unwrap();
    assert_eq!(tenant_chain.events, 80);
    assert_eq!(report.events(), 96);
}

async fn lists_are_per_chain_paged_and_filtered(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let (a, b) = (TenantId::generate(), TenantId::generate());
    let a_events = events(Some(&a), 5);
    store.append(a_events.clone()).await.unwrap();
    store.append(events(Some(&b), 2)).await.unwrap();
    let chain = Some(Chain::Tenant(a.clone()));
    let first = store.list(&ListFilter { chain: chain.clone(), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(first.len(), 2);
    let after = Some(first[1].event.id.clone());
    let rest = store.list(&ListFilter { chain: chain.clone(), after, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest.iter().all(|r| r.event.tenant_id.as_ref() == Some(&a)));
    let ids: Vec<_> = first.iter().chain(&rest).map(|r| r.event.id.clone()).collect();
    assert_eq!(ids, a_events.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    // Time bounds: since inclusive, until exclusive.
    let window = ListFilter {
        chain: chain.clone(),
        since_ms: Some(a_events[1].time.ms()),
        until_ms: Some(a_events[3].time.ms()),
        limit: 10,
        ..Default::default()
    };
    let times: Vec<_> = store.list(&window).await.unwrap().iter().map(|r| r.event.time).collect();
    assert_eq!(times, [a_events[1].time, a_events[2].time]);
    let all = store.list(&ListFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 7);

    // An event made before the last one read but stored after it (another
    // gateway's, delivered late) is on the next page, not skipped.
    let mut late = events(Some(&a), 1).remove(0);
    late.id = format!("{}0", a_events[0].id);
    assert!(late.id < a_events[4].id);
    store.append(vec![late.clone()]).await.unwrap();
    let after = Some(a_events[4].id.clone());
    let next = store.list(&ListFilter { chain: chain.clone(), after, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(next.iter().map(|r| (r.event.id.as_str(), r.seq)).collect::<Vec<_>>(), [(late.id.as_str(), 6)]);
    // A cursor from another chain, or from nowhere, is refused.
    for cursor in
        [all.iter().find(|r| r.event.tenant_id.as_ref() == Some(&b)).unwrap().event.id.clone(), "evt_x".into()]
    {
        let wrong = ListFilter { chain: chain.clone(), after: Some(cursor), limit: 10, ..Default::default() };
        assert!(matches!(store.list(&wrong).await, Err(anno_store::StoreError::NotFound)));
    }
}

async fn the_consumer_stores_what_the_stream_carries(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let bus = anno_bus::Bus::in_process();
    let tenant = TenantId::generate();
    let sent = events(Some(&tenant), 3);
    let recorder = crate::Recorder::new(bus.clone());
    for e in &sent {
        recorder.record(e.clone());
    }
    // Delivered twice (at least once), and with garbage beside it.
    bus.append(crate::STREAM, &serde_json::to_string(&sent[0]).unwrap()).await.unwrap();
    bus.append(crate::STREAM, "{not an event").await.unwrap();
    let wake = Arc::new(tokio::sync::Notify::new());
    let storer = crate::Storer::start(store.clone()).unwrap();
    let task = crate::consume(&bus, storer, Arc::clone(&wake));
    tokio::time::timeout(Duration::from_secs(10), wake.notified()).await.expect("the exporter is woken");
    // Storing ran on its own thread, below the priority of the threads that serve calls.
    #[cfg(target_os = "linux")]
    {
        let serving = rustix::process::getpriority_process(None).unwrap();
        let storing = niceness_of_threads("audit-store");
        assert_eq!(storing, [(serving + crate::storer::PRIORITY).min(19)], "this thread's is {serving}");
    }
    let chain = Chain::Tenant(tenant);
    let mut stored = Vec::new();
    for _ in 0..200 {
        stored = store.records_after(&chain, 0, 10).await.unwrap();
        if stored.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut ids: Vec<_> = stored.iter().map(|r| r.event.id.clone()).collect();
    ids.sort();
    let mut expected: Vec<_> = sent.iter().map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    task.abort();
}

/// The stream entries a bus hands the consumer for these events.
fn entries(events: &[AuditEvent]) -> Vec<anno_bus::Entry> {
    let payload = |e| serde_json::to_string(e).unwrap();
    events.iter().map(|e| anno_bus::Entry::json(e.id.clone(), payload(e))).collect()
}

/// Dates the events `ms`.
fn at(events: &mut [AuditEvent], ms: i64) {
    events.iter_mut().for_each(|e| e.time = Timestamp(ms));
}

async fn a_storer_left_behind_catches_up_and_then_steps_back(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let storer = crate::Storer::start(store.clone()).unwrap();
    let tenant = TenantId::generate();
    let now = anno_tenancy::now_ms();
    // Events that waited 5 s: stored, and the next batch is stored here.
    let mut old = events(Some(&tenant), 3);
    at(&mut old, now - 5_000);
    storer.store(entries(&old)).await.unwrap();
    assert!(storer.is_catching_up());
    // Still 500 ms behind: caught up only under 200 ms.
    let mut late = events(Some(&tenant), 2);
    at(&mut late, now - 500);
    storer.store(entries(&late)).await.unwrap();
    assert!(storer.is_catching_up());
    let mut fresh = events(Some(&tenant), 2);
    at(&mut fresh, anno_tenancy::now_ms());
    storer.store(entries(&fresh)).await.unwrap();
    assert!(!storer.is_catching_up());
    storer.store(entries(&events(Some(&tenant), 1))).await.unwrap();
    // Every event once, in one intact chain, whichever way it went.
    let report = store.verify(Some(&Chain::Tenant(tenant))).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 8);
}

async fn a_storer_whose_thread_stopped_stores_on_the_serving_runtime(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let (storer, mut thread) = crate::Storer::on_channel(store.clone());
    let tenant = TenantId::generate();
    let mut batch = events(Some(&tenant), 5);
    at(&mut batch, anno_tenancy::now_ms());
    let (first, rest) = batch.split_at(2);
    // The thread takes a batch and stops (it panicked) without answering: the
    // batch fails, for the consumer to hand over again.
    let stopping = tokio::spawn(async move {
        let job = thread.recv().await;
        drop(thread);
        drop(job);
    });
    let failed = storer.store(entries(first)).await.unwrap_err();
    assert!(matches!(failed, anno_store::StoreError::Unavailable(_)), "{failed:?}");
    stopping.await.unwrap();
    assert!(!storer.is_catching_up());
    // Handed over again, it is stored on the serving runtime, and so is every
    // batch after it: fresh as they are, there is no thread to go back to.
    assert_eq!(storer.store(entries(first)).await.unwrap(), vec![Chain::Tenant(tenant.clone())]);
    assert!(storer.is_catching_up());
    storer.store(entries(rest)).await.unwrap();
    assert!(storer.is_catching_up());
    let report = store.verify(Some(&Chain::Tenant(tenant))).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 5);
}

/// The nice values of this process's threads named `comm`.
#[cfg(target_os = "linux")]
fn niceness_of_threads(comm: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // pid (comm) state … with nice the 19th field, the 17th after the comm.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        if head.split_once(" (").map(|(_, name)| name) != Some(comm.trim()) {
            continue;
        }
        if let Some(nice) = rest.split(' ').nth(16).and_then(|n| n.parse().ok()) {
            found.push(nice);
        }
    }
    found
}

async fn file_exports_append_lines_and_failed_webhooks_back_off(target: &DatabaseTarget) {
    let store = store_on(target).await;
    let dir = temp_dir();
    let resolver = Arc::new(anno_fetch::StaticResolver::new());
    let client = WebhookClient::new(AllowList::new(&["localhost:9"]), resolver, Duration::from_secs(2)).unwrap();
    let exporter = Exporter { store: store.clone(), client, file_dir: Some(dir.clone()) };
    let (filed, hooked) = (TenantId::generate(), TenantId::generate());
    store.append(events(Some(&filed), 2)).await.unwrap();
    // Exports start after what is stored when they are set.
    assert!(store.set_export(&filed, ExportKind::File, None).await.unwrap());
    assert!(store.set_export(&hooked, ExportKind::Webhook, Some("http://localhost:9/hook")).await.unwrap());
    let first = store.export(&hooked).await.unwrap().unwrap();
    let secret = first.secret.clone().expect("a webhook gets a signing secret");
    assert!(secret.expose().starts_with("whsec_"));
    // Every replica following the configuration applies the same setting: nothing changes.
    assert!(!store.set_export(&hooked, ExportKind::Webhook, Some("http://localhost:9/hook")).await.unwrap());
    let again = store.export(&hooked).await.unwrap().unwrap();
    assert_eq!(
        (again.generation, again.secret.map(|s| s.expose().to_owned())),
        (first.generation, Some(secret.expose().to_owned()))
    );
    assert_eq!(exporter.round().await.unwrap(), 0, "nothing new to export");
    let new = events(Some(&filed), 3);
    store.append(new.clone()).await.unwrap();
    store.append(events(Some(&hooked), 1)).await.unwrap();
    assert_eq!(exporter.round().await.unwrap(), 2);

    let text = std::fs::read_to_string(crate::file_path(&dir, &filed)).unwrap();
    let lines: Vec<crate::AuditRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|r| r.event.clone()).collect::<Vec<_>>(), new);
    assert_eq!(lines.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
    let filed_row = store.export(&filed).await.unwrap().unwrap();
    assert_eq!((filed_row.cursor_seq, filed_row.failures), (5, 0));

    // Nothing listens on port 9 (its resolver knows no names either): the
    // failure is recorded and the next attempt waits.
    let hooked_row = store.export(&hooked).await.unwrap().unwrap();
    assert_eq!((hooked_row.cursor_seq, hooked_row.failures), (0, 1));
    assert!(hooked_row.last_error.is_some());
    let tried = hooked_row.last_attempt_at.unwrap();
    assert!(hooked_row.next_attempt_at >= tried + 1_000, "the next attempt waits");
    let api = hooked_row.to_api();
    assert_eq!(api.signing_secret, None, "the secret is not part of the status");
    assert!(!serde_json::to_string(&api).unwrap().contains(secret.expose()));

    // Rolling the secret keeps the export's place; a file export has no secret to roll.
    let rolled = store.roll_secret(&hooked).await.unwrap().unwrap();
    assert_ne!(rolled.secret.unwrap().expose(), secret.expose());
    assert_eq!((rolled.cursor_seq, rolled.failures), (0, 1));
    assert!(store.roll_secret(&filed).await.unwrap().is_none());

    // A new setting starts afresh.
    assert!(store.set_export(&hooked, ExportKind::File, None).await.unwrap());
    let row = store.export(&hooked).await.unwrap().unwrap();
    assert_eq!((row.kind, row.cursor_seq, row.failures, row.last_error), (ExportKind::File, 1, 0, None));
    let mut exporting = store.exporting().await.unwrap();
    exporting.sort();
    let mut expected = vec![filed.clone(), hooked.clone()];
    expected.sort();
    assert_eq!(exporting, expected);
    assert!(store.delete_export(&hooked).await.unwrap());
    assert!(!store.delete_export(&hooked).await.unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

/// A store on SQLite in a scratch directory, and its file.
async fn sqlite_store() -> (PathBuf, AuditStore, PathBuf) {
    let dir = temp_dir();
    let target = DatabaseTarget::Sqlite { dir: dir.clone() };
    let store = store_on(&target).await;
    let file = target.sqlite_file(SCHEMA).expect("a SQLite file");
    (dir, store, file)
}

/// On SQLite the storing thread writes through a connection of its own
/// ([`crate::sqlite::Appender`]), not the pool: the same rows, chains and
/// idempotency, read back and verified through the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storing_threads_own_connection_stores_what_the_pool_would() {
    let (dir, store, file) = sqlite_store().await;
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::generate()).collect();
    // Some events stored through the pool first, then redelivered among new ones.
    let earlier = events(Some(&tenants[0]), 4);
    store.append(earlier.clone()).await.unwrap();
    let mut batch = earlier.clone();
    for (tenant, n) in tenants.iter().zip([20_u16, 1, 250]) {
        batch.extend(events(Some(tenant), n));
    }
    batch.extend(events(None, 2));
    batch.push(batch[7].clone());
    let sent = batch.clone();
    let (grown, again) = tokio::task::spawn_blocking(move || {
        let mut appender = crate::sqlite::Appender::open(&file).unwrap();
        let grown = appender.append(batch).unwrap();
        (grown, appender.append(sent).unwrap())
    })
    .await
    .unwrap();
    let mut expected: Vec<Chain> = tenants.iter().cloned().map(Chain::Tenant).collect();
    expected.push(Chain::Platform);
    expected.sort();
    assert_eq!(grown, expected);
    assert!(again.is_empty(), "a redelivered batch stores nothing: {again:?}");
    let records = store.records_after(&Chain::Tenant(tenants[0].clone()), 0, 100).await.unwrap();
    assert_eq!(records.len(), 24);
    assert!(records.iter().zip(1..).all(|(r, seq)| r.seq == seq), "seqs run 1, 2, 3…");
    // Every value as it was sent, the optional ones and the non-ASCII too.
    let stored = store.records_after(&Chain::Tenant(tenants[2].clone()), 0, 1000).await.unwrap();
    assert_eq!(stored.len(), 250);
    assert_eq!(stored[0].event.user_agent.as_deref(), Some("test/1 \"quoted\" ünïcode"));
    assert_eq!((stored[0].event.response_digest.as_deref(), stored[0].event.request_bytes), (None, 42));
    let report = store.verify(None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 4 + 20 + 1 + 250 + 2);
    let _ = std::fs::remove_dir_all(dir);
}

/// The storing thread's connection and the pool (catching up, or another
/// process's) extending one chain at once leave it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storing_threads_connection_and_the_pool_extend_one_chain_without_gaps() {
    let (dir, store, file) = sqlite_store().await;
    let tenant = TenantId::generate();
    let thread = {
        let tenant = tenant.clone();
        std::thread::spawn(move || {
            let mut appender = crate::sqlite::Appender::open(&file).unwrap();
            for _ in 0..10 {
                appender.append(events(Some(&tenant), 7)).unwrap();
            }
        })
    };
    for _ in 0..10 {
        store.append(events(Some(&tenant), 5)).await.unwrap();
    }
    tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();
    let report = store.verify(Some(&Chain::Tenant(tenant))).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events(), 120);
    let _ = std::fs::remove_dir_all(dir);
}
