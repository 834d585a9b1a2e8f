//! The configuration schema, the built-in defaults, and how layers combine.
//!
//! A layer is a JSON object holding some of the schema's settings. Layers are
//! deep-merged in order (built-in defaults ← platform base ← plan ← tenant):
//! objects merge key by key, anything else in a later layer replaces what an
//! earlier one said. A change to a layer is a JSON Merge Patch (RFC 7396):
//! `null` removes a setting, so the layer below shows through again.

use anno_errors::FieldError;
use anno_tenancy::Limits;
use serde_json::{Map, Value, json};

/// What a setting may hold.
enum Kind {
    Object(&'static [(&'static str, Kind)]),
    Bool,
    /// An integer in `min..=max`.
    Int(u64, u64),
    OneOf(&'static [&'static str]),
    Selectors,
    Domains,
    /// An absolute `https` (or `http`) URL without credentials.
    Url,
}

const MAX_LIST: usize = 1_000;
const MAX_SELECTORS: usize = 32;

const EXTRACTION: &[(&str, Kind)] = &[
    ("onlyMainContent", Kind::Bool),
    ("maxNodes", Kind::Int(1, 10_000)),
    ("format", Kind::OneOf(&["ndjson", "json", "markdown", "text"])),
    ("includeSelectors", Kind::Selectors),
    ("excludeSelectors", Kind::Selectors),
];

const FETCH: &[(&str, Kind)] = &[
    ("allowedDomains", Kind::Domains),
    ("blockedDomains", Kind::Domains),
    ("cacheMaxAge", Kind::Int(0, 365 * 86_400)),
    ("sharedCache", Kind::Bool),
];

/// The limits a layer may set, each a ceiling of what the plan allows.
const LIMITS: &[(&str, Kind)] = &[
    ("tenantRatePerSecond", Kind::Int(1, 1_000_000)),
    ("tenantBurst", Kind::Int(1, 1_000_000)),
    ("keyRatePerSecond", Kind::Int(1, 1_000_000)),
    ("keyBurst", Kind::Int(1, 1_000_000)),
    ("unitsPerMinute", Kind::Int(1, u32::MAX as u64)),
    ("unitsPerMonth", Kind::Int(1, 1 << 53)),
    ("concurrentRequests", Kind::Int(1, 1_000_000)),
    ("urlsPerBatch", Kind::Int(1, 10_000)),
    ("pagesPerCrawl", Kind::Int(1, 1_000_000)),
];

const EXPORT: &[(&str, Kind)] = &[("kind", Kind::OneOf(&["webhook", "file"])), ("url", Kind::Url)];

/// Where the tenant's audit trail is shipped; only a tenant's own layer says.
const AUDIT: &[(&str, Kind)] = &[("export", Kind::Object(EXPORT))];

const SCHEMA: &[(&str, Kind)] = &[
    ("extraction", Kind::Object(EXTRACTION)),
    ("fetch", Kind::Object(FETCH)),
    ("limits", Kind::Object(LIMITS)),
    ("audit", Kind::Object(AUDIT)),
];

/// What every installation starts from.
pub fn defaults() -> Value {
    json!({
        "extraction": { "onlyMainContent": true, "maxNodes": 60 },
        "fetch": { "allowedDomains": [], "blockedDomains": [], "sharedCache": true },
        "limits": {},
    })
}

/// Checks a layer against the schema; every bad path is reported, not the first.
pub fn validate(layer: &Value) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    check(layer, &Kind::Object(SCHEMA), "", &mut errors);
    check_export(layer, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// `audit.export` needs a kind; a webhook needs its URL, a file has none.
fn check_export(layer: &Value, errors: &mut Vec<FieldError>) {
    let Some(export) = layer.pointer("/audit/export").and_then(Value::as_object) else { return };
    match (export.get("kind").and_then(Value::as_str), export.contains_key("url")) {
        (None, _) => error(errors, "audit.export.kind", "is required: webhook or file"),
        (Some("webhook"), false) => error(errors, "audit.export.url", "is required for a webhook"),
        (Some("file"), true) => error(errors, "audit.export.url", "only a webhook has a URL"),
        _ => {}
    }
}

/// Settings a platform or plan layer may not hold: where one tenant's audit
/// trail goes is that tenant's to say.
pub fn tenant_only(layer: &Value) -> Vec<FieldError> {
    match layer.get("audit") {
        Some(_) => vec![FieldError { path: "audit".to_owned(), message: "can only be set for a tenant".to_owned() }],
        None => Vec::new(),
    }
}

fn error(errors: &mut Vec<FieldError>, path: &str, message: impl Into<String>) {
    let path = if path.is_empty() { "$".to_owned() } else { path.to_owned() };
    errors.push(FieldError { path, message: message.into() });
}

fn check(value: &Value, kind: &Kind, path: &str, errors: &mut Vec<FieldError>) {
    match kind {
        Kind::Object(fields) => {
            let Some(object) = value.as_object() else { return error(errors, path, "must be an object") };
            for (name, child) in object {
                let at = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                match fields.iter().find(|(field, _)| field == name) {
                    Some((_, kind)) => check(child, kind, &at, errors),
                    None => error(errors, &at, "is not a setting"),
                }
            }
        }
        Kind::Bool => {
            if !value.is_boolean() {
                error(errors, path, "must be true or false");
            }
        }
        Kind::Int(min, max) => match value.as_u64() {
            Some(n) if (*min..=*max).contains(&n) => {}
            _ => error(errors, path, format!("must be an integer from {min} to {max}")),
        },
        Kind::OneOf(options) => {
            if !value.as_str().is_some_and(|s| options.contains(&s)) {
                error(errors, path, format!("must be one of {}", options.join(", ")));
            }
        }
        Kind::Selectors => {
            strings(value, path, MAX_SELECTORS, errors, |s| anno_extract::select::parse(s).err().map(|e| e.to_string()))
        }
        Kind::Domains => strings(value, path, MAX_LIST, errors, domain_error),
        Kind::Url => {
            if let Some(message) = url_error(value) {
                error(errors, path, message);
            }
        }
    }
}

fn strings(
    value: &Value,
    path: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
    item_error: impl Fn(&str) -> Option<String>,
) {
    let Some(items) = value.as_array() else { return error(errors, path, "must be a list of strings") };
    if items.len() > max {
        error(errors, path, format!("at most {max} entries"));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match item.as_str() {
            Some(s) => {
                if let Some(message) = item_error(s) {
                    error(errors, &at, message);
                }
            }
            None => error(errors, &at, "must be a string"),
        }
    }
}

fn url_error(value: &Value) -> Option<&'static str> {
    let Some(text) = value.as_str() else { return Some("must be a URL") };
    if text.len() > 2_048 {
        return Some("at most 2048 characters");
    }
    match url::Url::parse(text) {
        Ok(url) if !matches!(url.scheme(), "https" | "http") => Some("must be an https URL"),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => Some("must name a host"),
        Ok(url) if !url.username().is_empty() || url.password().is_some() => Some("may not hold credentials"),
        Ok(_) => None,
        Err(_) => Some("must be an absolute URL"),
    }
}

/// A domain entry: a host name in lower case, optionally `*.`-prefixed (which
/// means the same: a domain always covers the names under it).
fn domain_error(entry: &str) -> Option<String> {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    (!labels_ok).then(|| "must be a domain name in lower case, such as example.com".to_owned())
}

/// Deep merge: `over`'s objects merge into `base`'s, anything else replaces.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// Applies a JSON Merge Patch (RFC 7396) to a layer.
pub fn apply_patch(layer: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *layer = patch.clone();
        return;
    };
    if !layer.is_object() {
        *layer = Value::Object(Map::new());
    }
    let Value::Object(target) = layer else { return };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            apply_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A layer as stored: `null`s dropped (they mean "not set").
pub fn normalize(layer: &Value) -> Value {
    let mut clean = Value::Object(Map::new());
    apply_patch(&mut clean, layer);
    clean
}

/// The limits a tenant's own layer sets above what its plan allows: a tenant
/// may lower its limits, never raise them.
pub fn above_plan(layer: &Value, plan: &Limits) -> Vec<FieldError> {
    let Some(limits) = layer.get("limits").and_then(Value::as_object) else { return Vec::new() };
    let ceiling = |name: &str| -> Option<u64> {
        Some(match name {
            "tenantRatePerSecond" => plan.tenant_rate_per_second.into(),
            "tenantBurst" => plan.tenant_burst.into(),
            "keyRatePerSecond" => plan.key_rate_per_second.into(),
            "keyBurst" => plan.key_burst.into(),
            "unitsPerMinute" => plan.units_per_minute.into(),
            "unitsPerMonth" => return plan.units_per_month,
            "concurrentRequests" => plan.concurrent_requests.into(),
            "urlsPerBatch" => plan.urls_per_batch.into(),
            "pagesPerCrawl" => plan.pages_per_crawl.into(),
            _ => return None,
        })
    };
    limits
        .iter()
        .filter_map(|(name, value)| {
            let (max, n) = (ceiling(name)?, value.as_u64()?);
            (n > max).then(|| FieldError {
                path: format!("limits.{name}"),
                message: format!("at most {max}: a tenant may lower its plan's limits, not raise them"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anno_tenancy::{Plan, PlanCatalog};

    #[test]
    fn layers_merge_in_order_objects_deeply_lists_whole() {
        let mut effective = defaults();
        for layer in [
            json!({"extraction": {"maxNodes": 100}, "fetch": {"blockedDomains": ["a.test"]}}),
            json!({"extraction": {"format": "markdown"}}),
            json!({"extraction": {"maxNodes": 20}, "fetch": {"blockedDomains": ["b.test"]}}),
        ] {
            merge(&mut effective, &layer);
        }
        assert_eq!(
            effective,
            json!({
                "extraction": {"onlyMainContent": true, "maxNodes": 20, "format": "markdown"},
                "fetch": {"allowedDomains": [], "blockedDomains": ["b.test"], "sharedCache": true},
                "limits": {},
            })
        );
    }

    #[test]
    fn a_patch_sets_replaces_and_removes() {
        let mut layer = json!({"extraction": {"maxNodes": 100, "format": "text"}, "fetch": {"sharedCache": false}});
        apply_patch(&mut layer, &json!({"extraction": {"maxNodes": null, "onlyMainContent": false}, "fetch": null}));
        assert_eq!(layer, json!({"extraction": {"format": "text", "onlyMainContent": false}}));
        assert_eq!(normalize(&json!({"fetch": {"cacheMaxAge": null}, "limits": null})), json!({"fetch": {}}));
    }

    #[test]
    fn validation_lists_every_bad_path() {
        let bad = json!({
            "extraction": {"maxNodes": 0, "format": "pdf", "includeSelectors": ["article", "[[["], "colour": "red"},
            "fetch": {"blockedDomains": ["Example.com", 7], "sharedCache": "yes"},
            "limits": {"tenantBurst": -1},
            "theme": {},
        });
        let errors = validate(&bad).unwrap_err();
        let mut paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "extraction.colour",
                "extraction.format",
                "extraction.includeSelectors[1]",
                "extraction.maxNodes",
                "fetch.blockedDomains[0]",
                "fetch.blockedDomains[1]",
                "fetch.sharedCache",
                "limits.tenantBurst",
                "theme",
            ]
        );
        assert!(validate(&defaults()).is_ok());
        assert!(validate(&json!([])).is_err());
    }

    #[test]
    fn an_audit_export_is_checked_and_kept_to_tenant_layers() {
        let webhook = json!({"audit": {"export": {"kind": "webhook", "url": "https://hooks.example.com/anno"}}});
        assert!(validate(&webhook).is_ok());
        assert!(validate(&json!({"audit": {"export": {"kind": "file"}}})).is_ok());
        let paths = |layer: Value| -> Vec<String> {
            validate(&layer).unwrap_err().into_iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
        };
        assert_eq!(
            paths(json!({"audit": {"export": {"kind": "webhook"}}})),
            ["audit.export.url: is required for a webhook"]
        );
        assert_eq!(
            paths(json!({"audit": {"export": {"kind": "file", "url": "https://a.test/"}}})),
            ["audit.export.url: only a webhook has a URL"]
        );
        assert_eq!(
            paths(json!({"audit": {"export": {"url": "https://a.test/"}}})),
            ["audit.export.kind: is required: webhook or file"]
        );
        for (url, message) in [
            ("ftp://a.test/", "must be an https URL"),
            ("https://user:pw@a.test/", "may not hold credentials"),
            ("/relative", "must be an absolute URL"),
        ] {
            let layer = json!({"audit": {"export": {"kind": "webhook", "url": url}}});
            assert_eq!(paths(layer), [format!("audit.export.url: {message}")], "{url}");
        }
        assert_eq!(tenant_only(&webhook)[0].path, "audit");
        assert!(tenant_only(&defaults()).is_empty());
    }

    #[test]
    fn a_tenant_may_lower_its_plan_limits_but_not_raise_them() {
        let trial = PlanCatalog::defaults().into_iter().find(|p| p.plan == Plan::Trial).unwrap().limits;
        let lower = json!({"limits": {"tenantRatePerSecond": 1, "unitsPerMinute": 10}});
        assert!(above_plan(&lower, &trial).is_empty());
        let higher = json!({"limits": {"tenantRatePerSecond": trial.tenant_rate_per_second + 1, "tenantBurst": 1}});
        let errors = above_plan(&higher, &trial);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "limits.tenantRatePerSecond");
    }
}
