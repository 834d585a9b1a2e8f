//! robots.txt as RFC 9309 describes it: groups by product token, the longest
//! matching rule wins (Allow on a tie), `*` and `$` wildcards, percent-encoding
//! normalised, plus the common `Crawl-delay` and `Sitemap` extensions.

use std::time::Duration;
use tokio::time::Instant;

/// Only the first 500 KiB of a robots.txt are parsed (RFC 9309 §2.5).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// The longest `Crawl-delay` taken seriously.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(24 * 3600);

/// A failed robots.txt fetch is cached this long at most, so a passing outage
/// does not keep a site closed for the whole TTL.
pub(crate) const FAILURE_TTL: Duration = Duration::from_secs(60);

/// The rules of one site for our user agent.
#[derive(Clone, Debug)]
pub struct Robots {
    verdict: Verdict,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
    sitemaps: Vec<String>,
    fetched_at: Instant,
    /// Why robots.txt could not be read, when it could not.
    failure: Option<crate::FetchError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Parsed rules decide.
    Rules,
    /// No robots.txt (4xx): everything is allowed.
    AllowAll,
    /// The site failed (5xx, unreachable): nothing is allowed.
    DisallowAll,
}

#[derive(Clone, Debug)]
struct Rule {
    allow: bool,
    /// The normalised pattern split at `*`.
    segments: Vec<String>,
    /// The pattern ended in `$`.
    anchored: bool,
    /// Octets of the normalised pattern: the longest match wins.
    specificity: usize,
}

impl Rule {
    fn new(allow: bool, pattern: &str) -> Rule {
        let pattern = normalise(pattern);
        let specificity = pattern.len();
        let (body, anchored) = match pattern.strip_suffix('$') {
            Some(body) => (body, true),
            None => (pattern.as_str(), false),
        };
        Rule { allow, segments: body.split('*').map(str::to_owned).collect(), anchored, specificity }
    }

    /// `path` is normalised. Literal segments are matched leftmost-first, which
    /// is exact for patterns whose only wildcard is `*`, and linear in the path.
    fn matches(&self, path: &str) -> bool {
        let Some((first, rest)) = self.segments.split_first() else { return false };
        let Some(mut remaining) = path.strip_prefix(first.as_str()) else { return false };
        let Some((last, middle)) = rest.split_last() else {
            return !self.anchored || remaining.is_empty();
        };
        for segment in middle {
            match remaining.find(segment.as_str()) {
                Some(at) => remaining = &remaining[at + segment.len()..],
                None => return false,
            }
        }
        if self.anchored { remaining.ends_with(last.as_str()) } else { remaining.contains(last.as_str()) }
    }
}

/// Rules collected for one run of `User-agent` lines.
#[derive(Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

impl Group {
    fn names(&self, agent: &str) -> bool {
        self.agents.iter().any(|a| a == agent)
    }
}

impl Robots {
    /// Parses a robots.txt for the user agent whose product token is the first
    /// word of `user_agent` before `/`.
    pub fn parse(text: &str, user_agent: &str) -> Robots {
        let text = truncate(text.strip_prefix('\u{feff}').unwrap_or(text), MAX_ROBOTS_BYTES);
        let mut groups: Vec<Group> = Vec::new();
        let mut sitemaps = Vec::new();
        let mut in_agent_lines = false;
        for line in text.split(['\n', '\r']) {
            let line = line.split('#').next().unwrap_or_default();
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "user-agent" => {
                    if !in_agent_lines {
                        groups.push(Group::default());
                    }
                    if let Some(group) = groups.last_mut() {
                        group.agents.push(product_token(value));
                    }
                    in_agent_lines = true;
                }
                key @ ("allow" | "disallow") => {
                    in_agent_lines = false;
                    if let Some(group) = groups.last_mut().filter(|_| !value.is_empty()) {
                        group.rules.push(Rule::new(key == "allow", value));
                    }
                }
                "crawl-delay" => {
                    in_agent_lines = false;
                    if let Some(group) = groups.last_mut() {
                        group.crawl_delay = parse_delay(value).or(group.crawl_delay);
                    }
                }
                "sitemap" if !value.is_empty() => sitemaps.push(value.to_owned()),
                _ => {}
            }
        }
        // Every group naming our product token, merged; else every `*` group.
        let token = product_token(user_agent);
        let agent = if !token.is_empty() && groups.iter().any(|g| g.names(&token)) { token.as_str() } else { "*" };
        let chosen: Vec<Group> = groups.into_iter().filter(|g| g.names(agent)).collect();
        let crawl_delay = chosen.iter().filter_map(|g| g.crawl_delay).max();
        let rules = chosen.into_iter().flat_map(|g| g.rules).collect();
        Robots { verdict: Verdict::Rules, rules, crawl_delay, sitemaps, fetched_at: Instant::now(), failure: None }
    }

    /// No robots.txt: everything is allowed.
    pub fn allow_all() -> Robots {
        Robots::with_verdict(Verdict::AllowAll)
    }

    /// The site could not tell us: nothing is allowed.
    pub fn disallow_all() -> Robots {
        Robots::with_verdict(Verdict::DisallowAll)
    }

    /// robots.txt could not be fetched: nothing is allowed, and the cause is
    /// kept (a site that cannot be reached is told apart from one that says no).
    pub fn unavailable(error: crate::FetchError) -> Robots {
        Robots { failure: Some(error), ..Robots::disallow_all() }
    }

    /// Why robots.txt could not be read, when it could not.
    pub fn failure(&self) -> Option<&crate::FetchError> {
        self.failure.as_ref()
    }

    fn with_verdict(verdict: Verdict) -> Robots {
        Robots {
            verdict,
            rules: Vec::new(),
            crawl_delay: None,
            sitemaps: Vec::new(),
            fetched_at: Instant::now(),
            failure: None,
        }
    }

    /// Whether our user agent may fetch this path (with its query, `/a?b=c`).
    pub fn allowed(&self, path_and_query: &str) -> bool {
        let path = if path_and_query.is_empty() { "/".to_owned() } else { normalise(path_and_query) };
        if path == "/robots.txt" {
            return true;
        }
        match self.verdict {
            Verdict::AllowAll => return true,
            Verdict::DisallowAll => return false,
            Verdict::Rules => {}
        }
        let mut best: Option<&Rule> = None;
        for rule in self.rules.iter().filter(|rule| rule.matches(&path)) {
            let better = best.is_none_or(|b| {
                rule.specificity > b.specificity || (rule.specificity == b.specificity && rule.allow && !b.allow)
            });
            if better {
                best = Some(rule);
            }
        }
        best.is_none_or(|rule| rule.allow)
    }

    /// The `Crawl-delay` of our group, if any.
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.crawl_delay
    }

    /// The `Sitemap:` URLs, as written.
    pub fn sitemaps(&self) -> &[String] {
        &self.sitemaps
    }

    /// A disallow-all kept after a failure is retried sooner than the TTL.
    pub(crate) fn is_stale_failure(&self) -> bool {
        self.verdict == Verdict::DisallowAll && self.fetched_at.elapsed() >= FAILURE_TTL
    }
}

/// The first word of a user agent before `/`, lower-cased (`AnnoBot/1.0 (+url)` → `annobot`).
pub fn product_token(user_agent: &str) -> String {
    let word = user_agent.split_whitespace().next().unwrap_or_default();
    word.split('/').next().unwrap_or_default().to_ascii_lowercase()
}

fn parse_delay(value: &str) -> Option<Duration> {
    let seconds: f64 = value.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(MAX_CRAWL_DELAY).min(MAX_CRAWL_DELAY))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One spelling for paths and patterns: `%XX` of an unreserved character is
/// decoded, other escapes get upper-case hex, and non-ASCII, space and control
/// octets are escaped.
fn normalise(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let hex = (bytes.get(i + 1).copied().and_then(hex_value), bytes.get(i + 2).copied().and_then(hex_value));
            if let (Some(high), Some(low)) = hex {
                let decoded = high << 4 | low;
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(decoded));
                } else {
                    push_escaped(&mut out, decoded);
                }
                i += 3;
                continue;
            }
        }
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            push_escaped(&mut out, byte);
        }
        i += 1;
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|v| u8::try_from(v).ok())
}

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}
