//! The SSRF guard: URL forms and addresses, and the allow-list.

use crate::support::{LOCALHOST, TestServer, config, fetcher, get};
use anno_fetch::guard::{check_ip, check_url};
use anno_fetch::{BlockReason, FetchError, Fetcher, HostCoordinator, StaticResolver};
use axum::Router;
use axum::routing::get as route;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Blocked(BlockReason),
    Invalid,
}

use BlockReason as R;
use Verdict::{Allowed, Blocked, Invalid};

const URLS: &[(&str, Verdict)] = &[
    // Public: allowed.
    ("https://example.com/", Allowed),
    ("http://example.com:8080/path?q=1#top", Allowed),
    ("HTTP://EXAMPLE.COM/", Allowed),
    ("http://93.184.216.34/", Allowed),
    ("http://8.8.8.8/", Allowed),
    ("https://1.1.1.1/", Allowed),
    ("http://172.32.0.1/", Allowed),
    ("http://100.128.0.1/", Allowed),
    ("http://198.20.0.1/", Allowed),
    ("http://169.255.0.1/", Allowed),
    ("http://[2606:4700::1111]/", Allowed),
    ("http://[2001:4860:4860::8888]/", Allowed),
    ("http://[::ffff:93.184.216.34]/", Allowed),
    ("http://xn--nxasmq6b.com/", Allowed),
    // IPv4 special-purpose literals.
    ("http://127.0.0.1/", Blocked(R::Loopback)),
    ("http://127.255.255.254:8080/", Blocked(R::Loopback)),
    ("http://10.1.2.3/", Blocked(R::Private)),
    ("http://172.16.0.1/", Blocked(R::Private)),
    ("http://172.31.255.255/", Blocked(R::Private)),
    ("http://192.168.1.1/", Blocked(R::Private)),
    ("http://100.64.0.1/", Blocked(R::SharedAddressSpace)),
    ("http://100.127.255.254/", Blocked(R::SharedAddressSpace)),
    ("http://100.100.100.200/latest/meta-data", Blocked(R::Metadata)),
    ("http://169.254.169.254/latest/meta-data", Blocked(R::Metadata)),
    ("http://169.254.170.2/v2/metadata", Blocked(R::Metadata)),
    ("http://169.254.1.1/", Blocked(R::LinkLocal)),
    ("http://0.0.0.0/", Blocked(R::Unspecified)),
    ("http://0.1.2.3/", Blocked(R::Unspecified)),
    ("http://192.0.0.1/", Blocked(R::Reserved)),
    ("http://192.0.2.1/", Blocked(R::Documentation)),
    ("http://198.51.100.7/", Blocked(R::Documentation)),
    ("http://203.0.113.9/", Blocked(R::Documentation)),
    ("http://198.18.0.1/", Blocked(R::Benchmarking)),
    ("http://198.19.255.255/", Blocked(R::Benchmarking)),
    ("http://224.0.0.1/", Blocked(R::Multicast)),
    ("http://239.255.255.250/", Blocked(R::Multicast)),
    ("http://240.0.0.1/", Blocked(R::Reserved)),
    ("http://255.255.255.255/", Blocked(R::Reserved)),
    // IPv4 notations the URL parser would quietly normalise.
    ("http://2130706433/", Blocked(R::OddHostForm)),
    ("http://0x7f000001/", Blocked(R::OddHostForm)),
    ("http://017700000001/", Blocked(R::OddHostForm)),
    ("http://0177.0.0.1/", Blocked(R::OddHostForm)),
    ("http://0x7f.1/", Blocked(R::OddHostForm)),
    ("http://127.1/", Blocked(R::OddHostForm)),
    ("http://127.0.1/", Blocked(R::OddHostForm)),
    ("http://0/", Blocked(R::OddHostForm)),
    ("http://127.0.0.1./", Blocked(R::OddHostForm)),
    ("http://127.000.000.001/", Blocked(R::OddHostForm)),
    ("http://%31%32%37.0.0.1/", Blocked(R::OddHostForm)),
    ("http://1572395042/", Blocked(R::OddHostForm)),
    ("  http://127.1/ ", Blocked(R::OddHostForm)),
    ("http:2130706433", Blocked(R::OddHostForm)),
    ("http:\\\\0x7f.1\\", Blocked(R::OddHostForm)),
    // IPv6 special-purpose literals.
    ("http://[::1]/", Blocked(R::Loopback)),
    ("http://[::]/", Blocked(R::Unspecified)),
    ("http://[::ffff:127.0.0.1]/", Blocked(R::Loopback)),
    ("http://[::ffff:7f00:1]:8080/", Blocked(R::Loopback)),
    ("http://[::ffff:10.0.0.1]/", Blocked(R::Private)),
    ("http://[::ffff:169.254.169.254]/", Blocked(R::Metadata)),
    ("http://[::ffff:0:7f00:1]/", Blocked(R::Loopback)),
    ("http://[::127.0.0.1]/", Blocked(R::Loopback)),
    ("http://[::8.8.8.8]/", Blocked(R::Reserved)),
    ("http://[64:ff9b::a9fe:a9fe]/", Blocked(R::Metadata)),
    ("http://[64:ff9b::7f00:1]/", Blocked(R::Loopback)),
    ("http://[64:ff9b::8.8.8.8]/", Blocked(R::Translated)),
    ("http://[64:ff9b:1::1]/", Blocked(R::Translated)),
    ("http://[2002:7f00:1::]/", Blocked(R::Translated)),
    ("http://[2001:0::1]/", Blocked(R::Translated)),
    ("http://[2001:db8::1]/", Blocked(R::Documentation)),
    ("http://[3fff::1]/", Blocked(R::Documentation)),
    ("http://[2001:2::1]/", Blocked(R::Benchmarking)),
    ("http://[2001:10::1]/", Blocked(R::Reserved)),
    ("http://[fc00::1]/", Blocked(R::UniqueLocal)),
    ("http://[fd12:3456::1]/", Blocked(R::UniqueLocal)),
    ("http://[fd00:ec2::254]/", Blocked(R::Metadata)),
    ("http://[fe80::1]/", Blocked(R::LinkLocal)),
    ("http://[fec0::1]/", Blocked(R::Private)),
    ("http://[ff02::1]/", Blocked(R::Multicast)),
    ("http://[100::1]/", Blocked(R::Reserved)),
    ("http://[4000::1]/", Blocked(R::Reserved)),
    // Loopback names, refused without asking a resolver.
    ("http://localhost/", Blocked(R::Loopback)),
    ("http://LOCALHOST:8080/", Blocked(R::Loopback)),
    ("http://app.localhost./", Blocked(R::Loopback)),
    // Schemes, credentials, ports, syntax.
    ("file:///etc/passwd", Blocked(R::Scheme)),
    ("gopher://", Blocked(R::Scheme)),
    ("gopher://example.com:70/_GET", Blocked(R::Scheme)),
    ("ftp://example.com/", Blocked(R::Scheme)),
    ("javascript:alert(1)", Blocked(R::Scheme)),
    ("data:text/html,hi", Blocked(R::Scheme)),
    ("http://user:pass@example.com/", Blocked(R::Credentials)),
    ("http://user@example.com/", Blocked(R::Credentials)),
    ("http://@example.com/", Blocked(R::Credentials)),
    ("http://a@127.0.0.1@evil.com/", Blocked(R::Credentials)),
    ("http://example.com:0/", Blocked(R::Port)),
    ("not a url", Invalid),
    ("http://", Invalid),
    ("http://exa mple.com/", Invalid),
    ("http://[::1/", Invalid),
    ("http://example.com:99999/", Invalid),
    ("", Invalid),
];

fn verdict(raw: &str) -> Verdict {
    match check_url(raw) {
        Ok(_) => Allowed,
        Err(FetchError::Blocked(reason)) => Blocked(reason),
        Err(FetchError::InvalidUrl(_)) => Invalid,
        Err(other) => panic!("{raw:?}: unexpected error {other:?}"),
    }
}

#[test]
fn url_table_gets_the_expected_verdicts() {
    assert!(URLS.len() >= 60, "the table covers at least 60 forms");
    let wrong: Vec<String> = URLS
        .iter()
        .filter_map(|(raw, expected)| {
            let got = verdict(raw);
            (got != *expected).then(|| format!("{raw:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn check_url_returns_the_normalised_url() {
    let url = check_url("HTTP://Example.COM:80/a/../b?q#f").expect("allowed");
    assert_eq!(url.as_str(), "http://example.com/b?q#f");
}

#[test]
fn check_ip_classifies_addresses() {
    let cases: &[(&str, Result<(), BlockReason>)] = &[
        ("93.184.216.34", Ok(())),
        ("2606:4700::1111", Ok(())),
        ("127.0.0.1", Err(R::Loopback)),
        ("::1", Err(R::Loopback)),
        ("::ffff:192.168.0.1", Err(R::Private)),
        ("10.255.255.255", Err(R::Private)),
        ("11.0.0.0", Ok(())),
        ("100.100.100.200", Err(R::Metadata)),
        ("fd00:ec2::254", Err(R::Metadata)),
        ("fd00:ec2::253", Err(R::UniqueLocal)),
    ];
    for (ip, expected) in cases {
        let ip: IpAddr = ip.parse().expect("ip");
        assert_eq!(check_ip(ip), *expected, "{ip}");
    }
}

#[test]
fn block_reason_labels_are_stable_snake_case() {
    let all = [
        (R::Scheme, "scheme"),
        (R::Credentials, "credentials"),
        (R::OddHostForm, "odd_host_form"),
        (R::Loopback, "loopback"),
        (R::Private, "private"),
        (R::LinkLocal, "link_local"),
        (R::SharedAddressSpace, "shared_address_space"),
        (R::Unspecified, "unspecified"),
        (R::Multicast, "multicast"),
        (R::Reserved, "reserved"),
        (R::Documentation, "documentation"),
        (R::Benchmarking, "benchmarking"),
        (R::Metadata, "metadata"),
        (R::Translated, "translated"),
        (R::UniqueLocal, "unique_local"),
        (R::Port, "port"),
        (R::Unresolvable, "unresolvable"),
    ];
    for (reason, label) in all {
        assert_eq!(reason.as_str(), label);
    }
}

async fn ok_server() -> TestServer {
    TestServer::start(Router::new().route("/", route(|| async { "fine" }))).await
}

#[tokio::test]
async fn allow_list_admits_exactly_the_listed_host_and_port() {
    let server = ok_server().await;
    let other = ok_server().await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    let page = fetcher.fetch(&get(&server.url("site.test", "/"))).await.expect("allow-listed origin");
    assert_eq!(page.body, "fine");

    // The same name on another port, another name on the same port, and the
    // address literal itself are all still refused, without a connection.
    let refused = [other.url("site.test", "/"), server.url("other.test", "/"), server.url("127.0.0.1", "/")];
    for url in refused {
        assert_eq!(fetcher.fetch(&get(&url)).await.unwrap_err(), FetchError::Blocked(R::Loopback), "{url}");
    }
    assert!(other.hits().is_empty());
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn allow_list_accepts_an_address_literal_entry() {
    let server = ok_server().await;
    let fetcher = fetcher(config(vec![format!("127.0.0.1:{}", server.port())]));
    let page = fetcher.fetch(&get(&server.url("127.0.0.1", "/"))).await.expect("allow-listed literal");
    assert_eq!(page.status, 200);
    // Odd notations of the same address stay refused.
    let odd = format!("http://127.1:{}/", server.port());
    assert_eq!(fetcher.fetch(&get(&odd)).await.unwrap_err(), FetchError::Blocked(R::OddHostForm));
}

#[test]
fn allow_list_entries_need_a_port() {
    let resolver = Arc::new(StaticResolver::new().with("site.test", [LOCALHOST]));
    for entry in ["site.test", "site.test:", "site.test:http", "[::1]"] {
        let config = config(vec![entry.to_owned()]);
        let made = Fetcher::new(config, resolver.clone(), HostCoordinator::Local);
        assert!(made.is_err(), "{entry:?} should be refused");
    }
}

#[tokio::test]
async fn the_system_resolver_resolves_and_the_static_one_refuses_unknown_names() {
    use anno_fetch::{Resolver, SystemResolver};
    let addresses = SystemResolver.resolve("localhost").await.expect("localhost resolves");
    assert!(!addresses.is_empty() && addresses.iter().all(IpAddr::is_loopback), "{addresses:?}");

    let error = StaticResolver::new().resolve("unknown.test").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    let known = StaticResolver::new().with("Site.Test", [LOCALHOST]);
    assert_eq!(known.resolve("site.test").await.expect("case-insensitive"), [LOCALHOST]);
}
