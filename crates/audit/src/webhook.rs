//! Webhook exports: where they may point (https, past the SSRF guard), how they
//! are signed, and the client that sends them.
//!
//! A delivery is `POST <url>` with a JSON body and
//! `Anno-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! the scheme Stripe uses: a receiver recomputes the MAC over the raw body and
//! refuses old timestamps, which stops replays.

use anno_fetch::Resolver;
use anno_fetch::guard;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The signature header of deliveries.
pub const SIGNATURE_HEADER: &str = "Anno-Signature";

/// The prefix of signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 256 random bits.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `Anno-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).map(|m| hex::encode(m.finalize().into_bytes())).unwrap_or_default();
    format!("t={timestamp},v1={digest}")
}

/// What a receiver does: true when one `v1` of `header` is the MAC of `body`
/// and `t` is within `tolerance` seconds of `now` (Unix seconds).
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else { return false };
    if (now - timestamp).abs() > tolerance {
        return false;
    }
    candidates.iter().any(|candidate| mac(secret, timestamp, body).is_some_and(|m| m.verify_slice(candidate).is_ok()))
}

/// `host:port` origins that may be reached although they are private
/// (`fetch.allowed_private_hosts`), and over plain http.
#[derive(Clone, Debug, Default)]
pub struct AllowList(HashSet<(String, u16)>);

impl AllowList {
    /// Entries that are not `host:port` are skipped (configuration validates them).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        let parsed = entries
            .iter()
            .filter_map(|entry| {
                let url = Url::parse(&format!("http://{}/", entry.as_ref().trim())).ok()?;
                Some((url.host_str()?.to_ascii_lowercase(), url.port()?))
            })
            .collect();
        AllowList(parsed)
    }

    pub fn contains(&self, url: &Url) -> bool {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => self.0.contains(&(host.to_ascii_lowercase(), port)),
            _ => false,
        }
    }

    fn names(&self) -> HashSet<String> {
        self.0.iter().map(|(host, _)| host.clone()).collect()
    }
}

/// Checks a webhook URL without resolving it: https (http only to an
/// allow-listed origin), no credentials, and the fetcher's URL guard (no odd
/// IPv4 spellings, no special-purpose IP literals).
pub fn check_url(raw: &str, allow: &AllowList) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|_| "must be an absolute URL".to_owned())?;
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".to_owned());
    }
    if allow.contains(&url) {
        return match url.scheme() {
            "https" | "http" => Ok(url),
            _ => Err("must be an https URL".to_owned()),
        };
    }
    if url.scheme() != "https" {
        return Err("must be an https URL".to_owned());
    }
    guard::check_url(url.as_str()).map_err(|e| format!("is refused: {e}"))
}

/// reqwest's resolver for webhooks: names resolve once, every address is
/// checked, and the connection goes only to those addresses, so a name cannot
/// point somewhere private between the check and the request.
struct GuardedDns {
    resolver: Arc<dyn Resolver>,
    trusted: HashSet<String>,
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = Arc::clone(&self.resolver);
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted.contains(&host);
        Box::pin(async move {
            let ips = resolver.resolve(&host).await?;
            if !trusted {
                for ip in &ips {
                    guard::check_ip(*ip).map_err(|reason| {
                        std::io::Error::other(format!("{host} resolves to a {} address", reason.as_str()))
                    })?;
                }
            }
            let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Sends signed deliveries.
#[derive(Clone)]
pub struct WebhookClient {
    allow: AllowList,
    strict: reqwest::Client,
    /// Only for allow-listed origins.
    trusted: reqwest::Client,
}

impl WebhookClient {
    pub fn new(allow: AllowList, resolver: Arc<dyn Resolver>, timeout: Duration) -> Result<Self, String> {
        let build = |trusted: HashSet<String>| {
            reqwest::Client::builder()
                .user_agent(concat!("Anno-Audit/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would resolve names itself, out of the guard's sight.
                .no_proxy()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .timeout(timeout)
                .dns_resolver(Arc::new(GuardedDns { resolver: Arc::clone(&resolver), trusted }))
                .build()
                .map_err(|e| format!("building the webhook client failed: {e}"))
        };
        let strict = build(HashSet::new())?;
        let trusted = build(allow.names())?;
        Ok(WebhookClient { allow, strict, trusted })
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Posts `body`, signed with `secret` at `timestamp`; any answer but a 2xx is an error.
    pub async fn deliver(&self, url: &str, secret: &str, timestamp: i64, body: Vec<u8>) -> Result<(), String> {
        let url = check_url(url, &self.allow)?;
        let client = if self.allow.contains(&url) { &self.trusted } else { &self.strict };
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(secret, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("the endpoint answered {}", status.as_u16())) }
    }
}

/// A transport error and its causes, without the URL (which the tenant knows).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "the endpoint did not answer in time".to_owned()
    } else if e.is_connect() {
        "connecting to the endpoint failed".to_owned()
    } else {
        "sending the delivery failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anno_fetch::StaticResolver;

    #[test]
    fn signatures_are_stripe_style_and_verify() {
        let secret = "whsec_test";
        let body = br#"{"events":[]}"#;
        let header = signature(secret, 1_700_000_000, body);
        // HMAC-SHA256("whsec_test", "1700000000.{\"events\":[]}"), computed independently.
        let expected = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
            mac.update(b"1700000000.{\"events\":[]}");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
        assert!(verify_signature(secret, &header, body, 1_700_000_100, 300));
        assert!(!verify_signature(secret, &header, body, 1_700_000_400, 300), "too old");
        assert!(!verify_signature("whsec_other", &header, body, 1_700_000_000, 300));
        assert!(!verify_signature(secret, &header, b"{}", 1_700_000_000, 300));
        assert!(!verify_signature(secret, "v1=00", body, 1_700_000_000, 300));
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        assert_ne!(secret, new_secret());
    }

    #[test]
    fn webhook_urls_must_be_https_and_public() {
        let none = AllowList::default();
        assert!(check_url("https://hooks.example.com/anno", &none).is_ok());
        for bad in [
            "http://hooks.example.com/anno",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/",
            "https://0x7f.1/",
            "https://hooks.example.com/#x",
            "/relative",
        ] {
            assert!(check_url(bad, &none).is_err(), "{bad} was accepted");
        }
        let allow = AllowList::new(&["localhost:8080"]);
        assert!(check_url("http://localhost:8080/hook", &allow).is_ok());
        assert!(check_url("http://localhost:8081/hook", &allow).is_err(), "only the listed port");
    }

    #[tokio::test]
    async fn deliveries_to_private_addresses_fail_at_connection_time() {
        let resolver = Arc::new(StaticResolver::new().with("rebound.example.com", ["127.0.0.1".parse().unwrap()]));
        let client = WebhookClient::new(AllowList::default(), resolver, Duration::from_secs(2)).unwrap();
        let error = client.deliver("https://rebound.example.com/hook", "whsec_x", 1, b"{}".to_vec()).await.unwrap_err();
        assert!(error.contains("loopback"), "{error}");
    }
}
