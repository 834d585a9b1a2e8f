//! OpenFeature Remote Evaluation Protocol (OFREP) bodies, as
//! `open-feature/protocol` `service/openapi.yaml` defines them:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}` takes `{"context": {…}}` and
//!   answers 200 [`OfrepSuccess`], 400 [`OfrepError`] or 404 [`OfrepError`]
//!   with `FLAG_NOT_FOUND`;
//! - `POST /ofrep/v1/evaluate/flags` takes the same body and answers 200
//!   [`OfrepBulk`] with an `ETag` ([`OfrepBulk::etag`]; 304 when the request's
//!   `If-None-Match` matches it) or 400 [`OfrepBulkFailure`].
//!
//! OFREP sends no flag type (its ADR 0003), so `TYPE_MISMATCH` is found by
//! the caller's provider, never by the server, and has no code here.

use crate::{Evaluation, EvaluationContext, Reason};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The codes an OFREP server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfrepErrorCode {
    /// The body is not JSON, or not an evaluation request.
    ParseError,
    /// The context has no `targetingKey` (or an empty one).
    TargetingKeyMissing,
    /// The context is unusable, e.g. `targetingKey` is not a string.
    InvalidContext,
    /// Anything else about the request.
    General,
    /// No flag under the key asked for (single evaluation only).
    FlagNotFound,
}

impl OfrepErrorCode {
    /// The status the protocol gives this code: 404 for `FLAG_NOT_FOUND`, 400
    /// for the rest. (A fault of the server itself is a 500 with
    /// `{"errorDetails": …}`, not one of these.)
    pub fn http_status(self) -> u16 {
        match self {
            OfrepErrorCode::FlagNotFound => 404,
            OfrepErrorCode::ParseError
            | OfrepErrorCode::TargetingKeyMissing
            | OfrepErrorCode::InvalidContext
            | OfrepErrorCode::General => 400,
        }
    }
}

/// Why a request body cannot be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the body is not an OFREP evaluation request: {0}")]
    Parse(String),
    #[error("the evaluation context is invalid: {0}")]
    InvalidContext(String),
    #[error("the evaluation context has no targetingKey")]
    TargetingKeyMissing,
}

impl RequestError {
    pub fn code(&self) -> OfrepErrorCode {
        match self {
            RequestError::Parse(_) => OfrepErrorCode::ParseError,
            RequestError::InvalidContext(_) => OfrepErrorCode::InvalidContext,
            RequestError::TargetingKeyMissing => OfrepErrorCode::TargetingKeyMissing,
        }
    }
}

/// An evaluation request, `{"context": {"targetingKey": "ten_…", …}}`, with
/// `targetingKey` taken out of the other attributes. `context` may be absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfrepRequest {
    /// `context.targetingKey`: the tenant id.
    pub targeting_key: Option<String>,
    /// Every other member of `context`.
    pub attributes: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

impl OfrepRequest {
    /// Reads a request body, telling a malformed body (`PARSE_ERROR`) from a
    /// `targetingKey` that is not a string (`INVALID_CONTEXT`).
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let raw: RawRequest = serde_json::from_slice(body).map_err(|e| RequestError::Parse(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawRequest) -> Result<Self, RequestError> {
        let mut attributes = raw.context.unwrap_or_default();
        let targeting_key = match attributes.remove("targetingKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key),
            Some(_) => return Err(RequestError::InvalidContext("targetingKey must be a string".into())),
        };
        Ok(OfrepRequest { targeting_key, attributes })
    }

    /// The context to evaluate with, or `TARGETING_KEY_MISSING` when there is
    /// no (or an empty) targeting key. The plan is left unset: set
    /// [`EvaluationContext::plan`] from the tenant record.
    pub fn into_context(self) -> Result<EvaluationContext, RequestError> {
        match self.targeting_key {
            Some(targeting_key) if !targeting_key.is_empty() => {
                Ok(EvaluationContext { targeting_key, plan: None, attributes: self.attributes })
            }
            _ => Err(RequestError::TargetingKeyMissing),
        }
    }
}

impl<'de> Deserialize<'de> for OfrepRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawRequest::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// A flag's value: `{"key", "value", "reason", "variant", "metadata"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepSuccess {
    pub key: String,
    pub value: Value,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Booleans, strings and numbers only, per the protocol. Empty unless the
    /// caller adds some.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl OfrepSuccess {
    pub fn new(key: impl Into<String>, evaluation: &Evaluation) -> Self {
        OfrepSuccess {
            key: key.into(),
            value: evaluation.value.clone(),
            reason: evaluation.reason,
            variant: evaluation.variant.clone(),
            metadata: Map::new(),
        }
    }
}

/// A flag that could not be evaluated: `{"key", "errorCode", "errorDetails"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepError {
    pub key: String,
    pub error_code: OfrepErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

impl OfrepError {
    pub fn new(key: impl Into<String>, error_code: OfrepErrorCode, error_details: impl Into<String>) -> Self {
        OfrepError { key: key.into(), error_code, error_details: Some(error_details.into()) }
    }

    /// The 404 body for a key with no flag.
    pub fn flag_not_found(key: impl Into<String>) -> Self {
        let key = key.into();
        let details = format!("no flag has the key '{key}'");
        OfrepError { key, error_code: OfrepErrorCode::FlagNotFound, error_details: Some(details) }
    }

    /// The 400 body for a single evaluation whose request was refused.
    pub fn from_request(key: impl Into<String>, error: &RequestError) -> Self {
        OfrepError::new(key, error.code(), error.to_string())
    }
}

/// A bulk request refused as a whole: `{"errorCode", "errorDetails"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkFailure {
    pub error_code: OfrepErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

impl From<&RequestError> for OfrepBulkFailure {
    fn from(error: &RequestError) -> Self {
        OfrepBulkFailure { error_code: error.code(), error_details: Some(error.to_string()) }
    }
}

/// One flag in a bulk response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OfrepBulkItem {
    Success(OfrepSuccess),
    Error(OfrepError),
}

impl From<OfrepSuccess> for OfrepBulkItem {
    fn from(success: OfrepSuccess) -> Self {
        OfrepBulkItem::Success(success)
    }
}

impl From<OfrepError> for OfrepBulkItem {
    fn from(error: OfrepError) -> Self {
        OfrepBulkItem::Error(error)
    }
}

/// Every flag for one context: `{"flags": [success or error, …]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfrepBulk {
    pub flags: Vec<OfrepBulkItem>,
}

impl OfrepBulk {
    /// Successes for each evaluation, in the order given (sorted by key when
    /// it comes from [`crate::evaluate_all`]).
    pub fn from_evaluations(evaluations: impl IntoIterator<Item = (String, Evaluation)>) -> Self {
        let flags = evaluations.into_iter().map(|(key, eval)| OfrepSuccess::new(key, &eval).into()).collect();
        OfrepBulk { flags }
    }

    /// A strong `ETag` for this body, quotes included: the first 16 bytes of
    /// the SHA-256 of its JSON, in hex. Equal bodies give equal tags.
    pub fn etag(&self) -> String {
        // Keys are strings and values JSON, so serializing cannot fail.
        let body = serde_json::to_vec(self).expect("an OFREP bulk body always serializes");
        let digest = Sha256::digest(&body);
        format!("\"{}\"", hex::encode(&digest[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(value: Value, reason: Reason, variant: Option<&str>) -> Evaluation {
        Evaluation { value, reason, variant: variant.map(str::to_string) }
    }

    #[test]
    fn a_request_splits_the_targeting_key_from_the_other_attributes() {
        let body = br#"{"context": {"targetingKey": "ten_a", "region": "eu", "beta": true}}"#;
        let request = OfrepRequest::parse(body).unwrap();
        assert_eq!(request.targeting_key.as_deref(), Some("ten_a"));
        assert_eq!(Value::Object(request.attributes.clone()), json!({"region": "eu", "beta": true}));
        let ctx = request.into_context().unwrap();
        assert_eq!(ctx, EvaluationContext::new("ten_a").with_attribute("region", "eu").with_attribute("beta", true));
        let via_serde: OfrepRequest = serde_json::from_slice(body).unwrap();
        assert_eq!(via_serde.targeting_key.as_deref(), Some("ten_a"));
    }

    #[test]
    fn bad_requests_get_the_protocol_codes() {
        let code = |body: &[u8]| OfrepRequest::parse(body).and_then(OfrepRequest::into_context).unwrap_err().code();
        assert_eq!(code(b"{\"context\": "), OfrepErrorCode::ParseError);
        assert_eq!(code(b"{\"context\": [1]}"), OfrepErrorCode::ParseError);
        assert_eq!(code(b"{\"context\": {\"targetingKey\": 7}}"), OfrepErrorCode::InvalidContext);
        assert_eq!(code(b"{\"context\": {\"region\": \"eu\"}}"), OfrepErrorCode::TargetingKeyMissing);
        assert_eq!(code(b"{\"context\": {\"targetingKey\": \"\"}}"), OfrepErrorCode::TargetingKeyMissing);
        assert_eq!(code(b"{}"), OfrepErrorCode::TargetingKeyMissing);
        assert!(serde_json::from_slice::<OfrepRequest>(b"{\"context\": {\"targetingKey\": 7}}").is_err());
    }

    #[test]
    fn a_single_success_has_the_protocol_shape() {
        let success = OfrepSuccess::new("new-extractor", &eval(json!(true), Reason::TargetingMatch, Some("rule-0")));
        assert_eq!(
            serde_json::to_value(&success).unwrap(),
            json!({"key": "new-extractor", "value": true, "reason": "TARGETING_MATCH", "variant": "rule-0", "metadata": {}})
        );
        let disabled = OfrepSuccess::new("old", &eval(json!("v1"), Reason::Disabled, None));
        assert_eq!(
            serde_json::to_value(&disabled).unwrap(),
            json!({"key": "old", "value": "v1", "reason": "DISABLED", "metadata": {}})
        );
    }

    #[test]
    fn errors_have_the_protocol_shape_and_status() {
        let missing = OfrepError::flag_not_found("nope");
        assert_eq!(
            serde_json::to_value(&missing).unwrap(),
            json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no flag has the key 'nope'"})
        );
        assert_eq!(missing.error_code.http_status(), 404);

        let refused = OfrepError::from_request("f", &RequestError::TargetingKeyMissing);
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            json!({"key": "f", "errorCode": "TARGETING_KEY_MISSING", "errorDetails": "the evaluation context has no targetingKey"})
        );
        assert_eq!(refused.error_code.http_status(), 400);

        let bulk = OfrepBulkFailure::from(&RequestError::InvalidContext("targetingKey must be a string".into()));
        assert_eq!(
            serde_json::to_value(&bulk).unwrap(),
            json!({"errorCode": "INVALID_CONTEXT", "errorDetails": "the evaluation context is invalid: targetingKey must be a string"})
        );
        for (code, name) in [
            (OfrepErrorCode::ParseError, "PARSE_ERROR"),
            (OfrepErrorCode::TargetingKeyMissing, "TARGETING_KEY_MISSING"),
            (OfrepErrorCode::InvalidContext, "INVALID_CONTEXT"),
            (OfrepErrorCode::General, "GENERAL"),
            (OfrepErrorCode::FlagNotFound, "FLAG_NOT_FOUND"),
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
        }
    }

    #[test]
    fn a_bulk_response_lists_successes_and_errors_under_flags() {
        let mut bulk = OfrepBulk::from_evaluations([
            ("alpha".to_string(), eval(json!(1), Reason::Static, Some("default"))),
            ("beta".to_string(), eval(json!({"depth": 2}), Reason::Split, Some("deep"))),
        ]);
        bulk.flags.push(OfrepError::new("gamma", OfrepErrorCode::General, "definition unreadable").into());
        let json = serde_json::to_value(&bulk).unwrap();
        assert_eq!(
            json,
            json!({"flags": [
                {"key": "alpha", "value": 1, "reason": "STATIC", "variant": "default", "metadata": {}},
                {"key": "beta", "value": {"depth": 2}, "reason": "SPLIT", "variant": "deep", "metadata": {}},
                {"key": "gamma", "errorCode": "GENERAL", "errorDetails": "definition unreadable"}
            ]})
        );
        assert_eq!(serde_json::from_value::<OfrepBulk>(json).unwrap(), bulk);
    }

    #[test]
    fn the_etag_is_quoted_and_follows_the_body() {
        let one = OfrepBulk::from_evaluations([("a".to_string(), eval(json!(true), Reason::Split, Some("rollout")))]);
        let same = one.clone();
        let other =
            OfrepBulk::from_evaluations([("a".to_string(), eval(json!(false), Reason::Default, Some("default")))]);
        let tag = one.etag();
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(tag, same.etag());
        assert_ne!(tag, other.etag());
    }
}
