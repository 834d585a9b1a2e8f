//! The hash chain: each tenant's events (and the platform's own, for calls
//! without a tenant) form one sequence where every link commits to the one
//! before it. Editing, removing or reordering a stored event breaks the chain
//! from that event on.
//!
//! ```text
//! hash(n) = hex(SHA-256(hash(n-1) ‖ "\n" ‖ canonical(n)))        hash(0) = "0" × 64
//! canonical(n) = {"chain":<chain>,"seq":<n>,"event":<event>}     compact JSON, fields in order
//! ```

use crate::event::AuditEvent;
use anno_tenancy::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The `prevHash` of the first event of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of the chain of events without a tenant.
pub const PLATFORM: &str = "platform";

/// One hash chain: a tenant's, or the platform's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chain {
    Platform,
    Tenant(TenantId),
}

impl Chain {
    /// The chain an event belongs to.
    pub fn of(event: &AuditEvent) -> Chain {
        match &event.tenant_id {
            Some(tenant) => Chain::Tenant(tenant.clone()),
            None => Chain::Platform,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Chain::Platform => PLATFORM,
            Chain::Tenant(tenant) => tenant.as_str(),
        }
    }

    /// `platform` or a tenant id.
    pub fn parse(s: &str) -> Option<Chain> {
        if s == PLATFORM { Some(Chain::Platform) } else { s.parse().ok().map(Chain::Tenant) }
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Chain::Platform => None,
            Chain::Tenant(tenant) => Some(tenant),
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    chain: &'a str,
    seq: i64,
    event: &'a AuditEvent,
}

/// The bytes a link hashes besides the previous hash.
pub fn canonical(chain: &str, seq: i64, event: &AuditEvent) -> Vec<u8> {
    // Serializing plain structs, strings and numbers cannot fail.
    serde_json::to_vec(&Canonical { chain, seq, event }).unwrap_or_default()
}

/// The hash of the link `seq` of `chain`, following `prev_hash`.
pub fn link_hash(prev_hash: &str, chain: &str, seq: i64, event: &AuditEvent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(chain, seq, event));
    hex::encode(hasher.finalize())
}

/// A stored event and its place in its chain, as the API and the exports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub event: AuditEvent,
    /// 1, 2, 3… within the chain.
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    pub fn chain(&self) -> Chain {
        Chain::of(&self.event)
    }
}

/// Why a chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No event with this seq where one should be: removed, or renumbered.
    Missing,
    /// The event's content no longer matches its hash: edited.
    Edited,
    /// `prevHash` is not the previous event's hash: an event before it was
    /// replaced, or the order changed.
    Unlinked,
    /// The event is stored under another tenant's chain.
    WrongChain,
    /// The chain does not end at its recorded head: events were removed from
    /// (or added at) the end, or the head was changed.
    Head,
    /// A stored value could not be read back into an event.
    Unreadable,
}

impl Fault {
    pub fn describe(&self) -> &'static str {
        match self {
            Fault::Missing => "an event is missing (removed or renumbered)",
            Fault::Edited => "the event does not match its hash (edited)",
            Fault::Unlinked => "prevHash does not match the previous event's hash (replaced or reordered)",
            Fault::WrongChain => "the event belongs to another chain",
            Fault::Head => "the chain does not end at its recorded head (events removed from or added at the end)",
            Fault::Unreadable => "a stored value could not be read",
        }
    }
}

/// The first broken link of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    pub seq: i64,
    pub event_id: Option<String>,
    pub fault: Fault,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at seq {}", self.seq)?;
        if let Some(id) = &self.event_id {
            write!(f, " ({id})")?;
        }
        write!(f, ": {}", self.fault.describe())
    }
}

/// Walks one chain's stored links in seq order.
pub struct Verifier {
    chain: String,
    next_seq: i64,
    prev_hash: String,
}

impl Verifier {
    pub fn new(chain: &str) -> Self {
        Verifier { chain: chain.to_owned(), next_seq: 1, prev_hash: GENESIS.to_owned() }
    }

    /// Events checked so far.
    pub fn events(&self) -> i64 {
        self.next_seq - 1
    }

    /// Checks the next stored link.
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), Break> {
        let at = |fault| Break { seq: record.seq, event_id: Some(record.event.id.clone()), fault };
        if record.seq != self.next_seq {
            return Err(Break { seq: self.next_seq, event_id: None, fault: Fault::Missing });
        }
        if Chain::of(&record.event).as_str() != self.chain {
            return Err(at(Fault::WrongChain));
        }
        if record.prev_hash != self.prev_hash {
            return Err(at(Fault::Unlinked));
        }
        if link_hash(&record.prev_hash, &self.chain, record.seq, &record.event) != record.hash {
            return Err(at(Fault::Edited));
        }
        self.prev_hash.clone_from(&record.hash);
        self.next_seq += 1;
        Ok(())
    }

    /// Checks that the links end where the chain's head says: `(seq, hash)` of the
    /// last event stored, or none for a chain without events.
    pub fn finish(&self, head: Option<(i64, &str)>) -> Result<(), Break> {
        let (seq, hash) = head.unwrap_or((0, GENESIS));
        if seq == self.events() && hash == self.prev_hash {
            Ok(())
        } else {
            Err(Break { seq: self.next_seq, event_id: None, fault: Fault::Head })
        }
    }
}

/// Links events into a chain after `head` (`(seq, hash)` of its last event).
pub fn extend(chain: &str, head: (i64, &str), events: Vec<AuditEvent>) -> Vec<AuditRecord> {
    let (mut seq, mut prev) = (head.0, head.1.to_owned());
    events
        .into_iter()
        .map(|event| {
            seq += 1;
            let hash = link_hash(&prev, chain, seq, &event);
            let prev_hash = std::mem::replace(&mut prev, hash.clone());
            AuditRecord { event, seq, prev_hash, hash }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Actor, ActorKind, Timestamp};

    pub(crate) fn event(tenant: Option<&TenantId>, n: u16) -> AuditEvent {
        AuditEvent {
            id: AuditEvent::new_id(),
            time: Timestamp(1_790_000_000_000 + i64::from(n)),
            tenant_id: tenant.cloned(),
            actor: Actor { kind: ActorKind::Key, id: Some("key_test".into()) },
            method: "GET".into(),
            route: Some("/v1/me".into()),
            path: "/v1/me".into(),
            status: 200,
            latency_ms: u64::from(n),
            client_ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: Some(format!("req_{n}")),
            request_digest: None,
            request_bytes: 0,
            response_digest: None,
            response_bytes: 0,
        }
    }

    fn verify(chain: &str, records: &[AuditRecord], head: Option<(i64, &str)>) -> Result<i64, Break> {
        let mut verifier = Verifier::new(chain);
        for record in records {
            verifier.check(record)?;
        }
        verifier.finish(head)?;
        Ok(verifier.events())
    }

    fn chain_of(n: u16) -> (TenantId, Vec<AuditRecord>) {
        let tenant = TenantId::generate();
        let records = extend(tenant.as_str(), (0, GENESIS), (1..=n).map(|i| event(Some(&tenant), i)).collect());
        (tenant, records)
    }

    fn head(records: &[AuditRecord]) -> Option<(i64, &str)> {
        records.last().map(|r| (r.seq, r.hash.as_str()))
    }

    #[test]
    fn audit_chain_verifies() {
        let (tenant, records) = chain_of(5);
        assert_eq!(verify(tenant.as_str(), &records, head(&records)), Ok(5));
        assert_eq!(records[0].prev_hash, GENESIS);
        assert_eq!(records[3].prev_hash, records[2].hash);
        assert_eq!(verify(tenant.as_str(), &[], None), Ok(0), "an empty chain is intact");
        // Extending from a head continues the same chain.
        let more = extend(tenant.as_str(), (5, &records[4].hash), vec![event(Some(&tenant), 6)]);
        let all: Vec<_> = records.iter().cloned().chain(more).collect();
        assert_eq!(verify(tenant.as_str(), &all, head(&all)), Ok(6));
    }

    #[test]
    fn an_edited_event_is_detected() {
        let (tenant, mut records) = chain_of(5);
        records[2].event.status = 500;
        let broken = verify(tenant.as_str(), &records, head(&records)).unwrap_err();
        assert_eq!((broken.seq, broken.fault.clone()), (3, Fault::Edited));
        assert_eq!(broken.event_id.as_deref(), Some(records[2].event.id.as_str()));

        // Rewriting its hash too moves the break to the next link.
        let (tenant, mut records) = chain_of(5);
        records[2].event.actor = Actor::anonymous();
        records[2].hash = link_hash(&records[2].prev_hash, tenant.as_str(), 3, &records[2].event);
        let broken = verify(tenant.as_str(), &records, None).unwrap_err();
        assert_eq!((broken.seq, broken.fault), (4, Fault::Unlinked));
    }

    #[test]
    fn removed_reordered_and_moved_events_are_detected() {
        let (tenant, records) = chain_of(5);
        let chain = tenant.as_str();
        let mut removed = records.clone();
        removed.remove(1);
        assert_eq!(verify(chain, &removed, head(&records)).unwrap_err().fault, Fault::Missing);

        let truncated = &records[..4];
        let broken = verify(chain, truncated, head(&records)).unwrap_err();
        assert_eq!((broken.seq, broken.fault), (5, Fault::Head));

        let mut swapped = records.clone();
        swapped.swap(1, 2);
        swapped[1].seq = 2;
        swapped[2].seq = 3;
        assert_eq!(verify(chain, &swapped, head(&records)).unwrap_err().fault, Fault::Unlinked);

        let other = TenantId::generate();
        let mut moved = records.clone();
        moved[0].event.tenant_id = Some(other);
        assert_eq!(verify(chain, &moved, head(&records)).unwrap_err().fault, Fault::WrongChain);
    }

    #[test]
    fn chains_are_named_by_tenant_or_platform() {
        let tenant = TenantId::generate();
        assert_eq!(Chain::of(&event(Some(&tenant), 1)), Chain::Tenant(tenant.clone()));
        assert_eq!(Chain::of(&event(None, 1)).as_str(), "platform");
        assert_eq!(Chain::parse(tenant.as_str()), Some(Chain::Tenant(tenant)));
        assert_eq!(Chain::parse("platform"), Some(Chain::Platform));
        assert_eq!(Chain::parse("ten_nope"), None);
    }

    #[test]
    fn the_canonical_encoding_is_fixed() {
        let mut e = event(None, 1);
        e.id = "evt_01".into();
        let text = String::from_utf8(canonical("platform", 1, &e)).unwrap();
        assert_eq!(
            text,
            r#"{"chain":"platform","seq":1,"event":{"id":"evt_01","time":"2026-09-21T14:13:20.001Z","tenantId":null,"actor":{"kind":"key","id":"key_test"},"method":"GET","route":"/v1/me","path":"/v1/me","status":200,"latencyMs":1,"clientIp":"127.0.0.1","userAgent":null,"requestId":"req_1","requestDigest":null,"requestBytes":0,"responseDigest":null,"responseBytes":0}}"#
        );
    }
}
