//! The audit event: who called what, when, from where, with what outcome. Request
//! and response bodies appear only as SHA-256 digests, credentials only as ids.

use anno_tenancy::TenantId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

/// The prefix of event ids.
pub const EVENT_PREFIX: &str = "evt";

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A tenant's API key (`key_…`).
    Key,
    /// A tenant's user with an access token (`usr_…`).
    User,
    /// The platform admin key (`adm_…`).
    Admin,
    /// No credential, or one that did not authenticate.
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Key => "key",
            ActorKind::User => "user",
            ActorKind::Admin => "admin",
            ActorKind::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ActorKind::Key, ActorKind::User, ActorKind::Admin, ActorKind::Anonymous].into_iter().find(|k| k.as_str() == s)
    }
}

/// The caller: a kind and, unless anonymous, the credential's id (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn anonymous() -> Self {
        Actor { kind: ActorKind::Anonymous, id: None }
    }
}

/// A point in time, kept in milliseconds since the epoch and written as RFC 3339
/// in UTC with exactly three fractional digits, so that its text (and so the
/// event's hash) has one spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(anno_tenancy::now_ms())
    }

    pub fn ms(self) -> i64 {
        self.0
    }

    pub fn parse(s: &str) -> Option<Self> {
        anno_tenancy::parse_rfc3339(s).map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

/// One audited call. The field order is the order of the canonical encoding the
/// chain hashes (see [`crate::chain`]): add fields at the end, never reorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEvent {
    /// `evt_…`, time-ordered; the idempotency key of storing.
    pub id: String,
    /// When the call was answered.
    pub time: Timestamp,
    /// The caller's tenant; none for the platform admin and anonymous calls.
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    pub method: String,
    /// The matched route template (`/v1/keys/{id}`); none when no route matched.
    pub route: Option<String>,
    /// The path called, without the query string.
    pub path: String,
    pub status: u16,
    /// From the request's arrival to the last byte of the response.
    pub latency_ms: u64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// `sha256:<hex>` of the request body as received; none when it was not read to the end.
    pub request_digest: Option<String>,
    pub request_bytes: u64,
    /// `sha256:<hex>` of the response body as sent; none when the client went
    /// away before its end.
    pub response_digest: Option<String>,
    pub response_bytes: u64,
}

impl AuditEvent {
    /// A new event id.
    pub fn new_id() -> String {
        anno_tenancy::new_id(EVENT_PREFIX)
    }
}

/// The spelling of a body digest in events.
pub fn digest_string(digest: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest))
}

/// A SHA-256 digest of a body and its length, fed as the body streams.
#[derive(Clone, Default)]
pub struct BodyTally {
    hasher: Sha256,
    bytes: u64,
    complete: bool,
}

impl BodyTally {
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
    }

    /// The body was read to its end.
    pub fn complete(&mut self) {
        self.complete = true;
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest, when the whole body went through.
    pub fn digest(&self) -> Option<String> {
        // Most requests have no body: its digest is worked out once.
        static EMPTY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        self.complete.then(|| match self.bytes {
            0 => EMPTY.get_or_init(|| digest_string(&Sha256::digest(b""))).clone(),
            _ => digest_string(&self.hasher.clone().finalize()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_one_spelling() {
        assert_eq!(Timestamp(1_790_000_000_000).to_string(), "2026-09-21T14:13:20.000Z");
        assert_eq!(Timestamp(1_790_000_000_120).to_string(), "2026-09-21T14:13:20.120Z");
        let t = Timestamp(1_790_000_000_123);
        assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-09-21T14:13:20.123Z\"");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn tallies_digest_only_whole_bodies() {
        let mut tally = BodyTally::default();
        tally.update(b"hello ");
        tally.update(b"world");
        assert_eq!(tally.digest(), None);
        tally.complete();
        assert_eq!(tally.bytes(), 11);
        assert_eq!(
            tally.digest().as_deref(),
            Some("sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
    }

    #[test]
    fn events_read_back_as_written_and_refuse_unknown_fields() {
        let event = AuditEvent {
            id: AuditEvent::new_id(),
            time: Timestamp(1_790_000_000_123),
            tenant_id: Some(TenantId::generate()),
            actor: Actor { kind: ActorKind::Key, id: Some("key_x".into()) },
            method: "POST".into(),
            route: Some("/v1/keys".into()),
            path: "/v1/keys".into(),
            status: 201,
            latency_ms: 12,
            client_ip: Some("203.0.113.9".into()),
            user_agent: Some("curl/8".into()),
            request_id: Some("req_1".into()),
            request_digest: Some(digest_string(&[0; 32])),
            request_bytes: 2,
            response_digest: None,
            response_bytes: 0,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["actor"], serde_json::json!({"kind": "key", "id": "key_x"}));
        assert_eq!(json["latencyMs"], 12);
        assert_eq!(serde_json::from_value::<AuditEvent>(json.clone()).unwrap(), event);
        let mut extra = json;
        extra["secret"] = "x".into();
        assert!(serde_json::from_value::<AuditEvent>(extra).is_err());
        assert!(event.id.starts_with("evt_"));
    }
}
