//! Applying the tenant's limits to a request: refused with 429 naming the
//! limit, or admitted with the `RateLimit` headers, holding a concurrency slot
//! until the response body is done.

use crate::Authenticated;
use anno_errors::ApiError;
use anno_limits::{Admission, Limits, Policy, Verdict, ceil_secs};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use std::time::Duration;

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub static UNITS: HeaderName = HeaderName::from_static("x-anno-units");

/// `anno_rate_limited_total{tenant_id, limit}`: requests refused by a limit.
fn refusals() -> &'static prometheus::IntCounterVec {
    static METRIC: std::sync::OnceLock<prometheus::IntCounterVec> = std::sync::OnceLock::new();
    METRIC.get_or_init(|| {
        anno_telemetry::counter_vec(
            "anno_rate_limited_total",
            "Requests refused by a tenant's limits, by tenant and limit",
            &["tenant_id", "limit"],
        )
    })
}

/// Admits a tenant's request; `metered` routes deliver pages, so quotas and
/// concurrency apply to them too.
pub async fn admit(
    limits: &Limits,
    caller: &Authenticated,
    tenant_limits: &anno_tenancy::Limits,
    metered: bool,
    slot_ttl: Duration,
) -> Result<Option<Verdict>, Response> {
    let Some(tenant) = &caller.tenant else { return Ok(None) };
    let policy = Policy::from(tenant_limits);
    let slot = metered.then(|| anno_tenancy::new_id("slot"));
    let admission = Admission {
        tenant: &tenant.id,
        key: Some(caller.verified.principal.id.as_str()),
        policy: &policy,
        metered,
        slot: slot.as_deref(),
        slot_ttl,
    };
    let verdict = limits.admit(&admission).await;
    let Some(refusal) = verdict.refused else { return Ok(Some(verdict)) };
    let limit = refusal.limit;
    refusals().with_label_values(&[&anno_telemetry::tenant_label(tenant.id.as_str()), limit.name()]).inc();
    let detail = match limit {
        anno_limits::Limit::TenantRate => "The tenant's request rate limit is reached.".to_owned(),
        anno_limits::Limit::KeyRate => "This key's request rate limit is reached.".to_owned(),
        anno_limits::Limit::MinuteUnits => "The tenant's units for this minute are used up.".to_owned(),
        anno_limits::Limit::MonthUnits => "The tenant's units for this month are used up.".to_owned(),
        anno_limits::Limit::Concurrency => format!(
            "The tenant has {} requests in progress, the most its plan allows at once.",
            policy.concurrency.unwrap_or(0)
        ),
    };
    let detail = format!("{detail} Policy \"{}\"; see the RateLimit headers.", limit.name());
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, limit.code(), detail).into_response();
    headers(&mut response, &verdict);
    if let Ok(value) = HeaderValue::from_str(&ceil_secs(refusal.retry_after).max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Err(response)
}

/// Sets the `RateLimit-Policy` and `RateLimit` fields.
pub fn headers(response: &mut Response, verdict: &Verdict) {
    let h = response.headers_mut();
    for (name, value) in [(&RATELIMIT_POLICY, verdict.policy_header()), (&RATELIMIT, verdict.ratelimit_header())] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            h.insert(name.clone(), value);
        }
    }
}

/// Finishes an admitted response: headers, the units rule, and the slot held
/// until the body ends (or the client goes away).
pub fn finish(mut response: Response, mut verdict: Verdict) -> Response {
    headers(&mut response, &verdict);
    let Some(slot) = verdict.slot.take() else { return response };
    let (parts, body) = response.into_parts();
    let body = body.map_frame(move |frame| {
        let _held = &slot;
        frame
    });
    Response::from_parts(parts, Body::new(body))
}

/// Every response says what it cost: services that deliver pages set
/// `X-Anno-Units`; everything else costs nothing. A stream of several pages
/// reports its units in its final event instead.
pub fn units(response: &mut Response) {
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    if !streamed && !response.headers().contains_key(&UNITS) {
        response.headers_mut().insert(UNITS.clone(), HeaderValue::from_static("0"));
    }
}
