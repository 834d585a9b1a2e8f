//! What a crawl is asked to do: the request body, its validation into the
//! options a job keeps, and the rules that decide which discovered URLs it visits.

use anno_errors::{ApiError, FieldError};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use url::Url;

pub const DEFAULT_MAX_DEPTH: u32 = 2;
pub const MAX_DEPTH: u32 = 10;
pub const DEFAULT_MAX_PAGES: u32 = 50;
pub const DEFAULT_CONCURRENCY: u32 = 2;
pub const MAX_CONCURRENCY: u32 = 8;
const MAX_PATTERNS: usize = 50;
const MAX_PATTERN_CHARS: usize = 1_000;
/// Compiled size of one pattern; `regex` matches in linear time, this bounds its memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
const MAX_URL_CHARS: usize = 8_192;

/// `POST /v1/crawl`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCrawl {
    pub url: String,
    #[serde(default)]
    pub options: OptionsInput,
}

/// The options as sent; every one may be left out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptionsInput {
    pub max_depth: Option<u32>,
    pub max_pages: Option<u32>,
    pub include_patterns: Option<Vec<String>>,
    pub exclude_patterns: Option<Vec<String>>,
    pub path_prefix: Option<String>,
    pub use_sitemap: Option<bool>,
    pub concurrency: Option<u32>,
    pub respect_robots: Option<bool>,
    pub only_main_content: Option<bool>,
    pub max_tokens: Option<u32>,
}

/// The options a job runs with, defaults filled in; kept with the job as JSON
/// and shown with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrawlOptions {
    pub max_depth: u32,
    /// After the plan's cap.
    pub max_pages: u32,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    pub use_sitemap: bool,
    pub concurrency: u32,
    pub respect_robots: bool,
    pub only_main_content: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// A request that passed validation.
pub struct Validated {
    pub start: Url,
    pub options: CrawlOptions,
}

impl CreateCrawl {
    /// Checks every field, naming each bad one. `maxPages` is not yet capped by the plan.
    pub fn validate(self) -> Result<Validated, ApiError> {
        let mut errors = Vec::new();
        let mut bad = |path: String, message: String| errors.push(FieldError { path, message });
        let start = match parse_start(&self.url) {
            Ok(url) => Some(url),
            Err(message) => {
                bad("url".into(), message.into());
                None
            }
        };
        let o = self.options;
        let max_depth = o.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
        if max_depth > MAX_DEPTH {
            bad("options.maxDepth".into(), format!("must be at most {MAX_DEPTH}"));
        }
        let max_pages = o.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
        if max_pages == 0 {
            bad("options.maxPages".into(), "must be at least 1".into());
        }
        let concurrency = o.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            bad("options.concurrency".into(), format!("must be between 1 and {MAX_CONCURRENCY}"));
        }
        if o.max_tokens == Some(0) {
            bad("options.maxTokens".into(), "must be at least 1".into());
        }
        let include_patterns = o.include_patterns.unwrap_or_default();
        let exclude_patterns = o.exclude_patterns.unwrap_or_default();
        for (field, patterns) in [("includePatterns", &include_patterns), ("excludePatterns", &exclude_patterns)] {
            if patterns.len() > MAX_PATTERNS {
                bad(format!("options.{field}"), format!("at most {MAX_PATTERNS} patterns"));
            }
            for (i, pattern) in patterns.iter().enumerate() {
                if let Err(message) = compile(pattern) {
                    bad(format!("options.{field}[{i}]"), message);
                }
            }
        }
        let path_prefix = o.path_prefix.filter(|p| !p.is_empty());
        if let Some(prefix) = &path_prefix {
            if !prefix.starts_with('/') || prefix.len() > MAX_URL_CHARS {
                bad("options.pathPrefix".into(), "must be a URL path starting with `/`".into());
            }
        }
        let (Some(start), true) = (start, errors.is_empty()) else {
            return Err(ApiError::invalid_fields(errors));
        };
        let options = CrawlOptions {
            max_depth,
            max_pages,
            include_patterns,
            exclude_patterns,
            path_prefix,
            use_sitemap: o.use_sitemap.unwrap_or(false),
            concurrency,
            respect_robots: o.respect_robots.unwrap_or(true),
            only_main_content: o.only_main_content.unwrap_or(true),
            max_tokens: o.max_tokens,
        };
        Ok(Validated { start, options })
    }
}

fn parse_start(raw: &str) -> Result<Url, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_CHARS {
        return Err("must be an http(s) URL");
    }
    let url = Url::parse(raw).map_err(|_| "must be an absolute http(s) URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an absolute http(s) URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials");
    }
    Ok(crate::crawl::links::normalise(url))
}

fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!("a pattern is at most {MAX_PATTERN_CHARS} characters"));
    }
    RegexBuilder::new(pattern).size_limit(PATTERN_SIZE_LIMIT).dfa_size_limit(PATTERN_SIZE_LIMIT).build().map_err(|e| {
        match e {
            regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
            // The syntax error's own text points at the offending part.
            other => format!("not a valid regular expression: {other}"),
        }
    })
}

/// Why a discovered URL is not visited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    OtherHost,
    Depth,
    PathPrefix,
    Pattern,
    Robots,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::OtherHost => "other_host",
            Exclusion::Depth => "depth",
            Exclusion::PathPrefix => "path_prefix",
            Exclusion::Pattern => "pattern",
            Exclusion::Robots => "robots",
        }
    }
}

/// The scope of a job: its host, depth, path prefix and patterns, compiled.
pub struct Rules {
    host: String,
    max_depth: u32,
    path_prefix: Option<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl Rules {
    /// Rebuilds the rules of stored options (validated when the job was made).
    pub fn new(start: &Url, options: &CrawlOptions) -> Result<Rules, String> {
        let compile_all = |patterns: &[String]| patterns.iter().map(|p| compile(p)).collect::<Result<Vec<_>, _>>();
        Ok(Rules {
            host: start.host_str().unwrap_or_default().to_owned(),
            max_depth: options.max_depth,
            path_prefix: options.path_prefix.clone(),
            include: compile_all(&options.include_patterns)?,
            exclude: compile_all(&options.exclude_patterns)?,
        })
    }

    /// Whether a discovered URL (not the start URL) is out of scope, and why.
    /// Robots are the caller's to check, being asynchronous.
    pub fn exclusion(&self, url: &Url, depth: u32) -> Option<Exclusion> {
        if url.host_str() != Some(self.host.as_str()) {
            return Some(Exclusion::OtherHost);
        }
        if depth > self.max_depth {
            return Some(Exclusion::Depth);
        }
        if self.path_prefix.as_deref().is_some_and(|prefix| !url.path().starts_with(prefix)) {
            return Some(Exclusion::PathPrefix);
        }
        let full = url.as_str();
        let included = self.include.is_empty() || self.include.iter().any(|r| r.is_match(full));
        if !included || self.exclude.iter().any(|r| r.is_match(full)) {
            return Some(Exclusion::Pattern);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> CreateCrawl {
        serde_json::from_value(json).expect("parses")
    }

    #[test]
    fn defaults_fill_in() {
        let v = request(serde_json::json!({"url": "https://Example.com/a#top"})).validate().expect("valid");
        assert_eq!(v.start.as_str(), "https://example.com/a");
        let o = v.options;
        assert_eq!((o.max_depth, o.max_pages, o.concurrency), (2, 50, 2));
        assert!(o.respect_robots && o.only_main_content && !o.use_sitemap);
        let v = request(serde_json::json!({"url": "http://e.com", "options": {"maxPages": 7}})).validate();
        assert_eq!(v.expect("valid").options.max_pages, 7);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = request(serde_json::json!({
            "url": "ftp://e.com/",
            "options": {"maxDepth": 11, "concurrency": 9, "includePatterns": ["ok", "(unclosed"], "pathPrefix": "docs"}
        }))
        .validate()
        .err()
        .expect("invalid");
        let paths: Vec<_> = e.errors.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["url", "options.maxDepth", "options.concurrency", "options.includePatterns[1]", "options.pathPrefix"]
        );
        assert!(
            serde_json::from_value::<CreateCrawl>(serde_json::json!({"url": "x", "options": {"depth": 1}})).is_err()
        );
    }

    #[test]
    fn rules_scope_discovered_urls() {
        let start = Url::parse("https://site.test/docs/").unwrap();
        let options = CrawlOptions {
            max_depth: 2,
            max_pages: 10,
            include_patterns: vec!["/docs/".into()],
            exclude_patterns: vec![r"\.pdf$".into()],
            path_prefix: Some("/docs".into()),
            use_sitemap: false,
            concurrency: 1,
            respect_robots: true,
            only_main_content: true,
            max_tokens: None,
        };
        let rules = Rules::new(&start, &options).unwrap();
        let at = |u: &str, d| rules.exclusion(&Url::parse(u).unwrap(), d);
        assert_eq!(at("https://site.test/docs/a", 2), None);
        assert_eq!(at("https://other.test/docs/a", 1), Some(Exclusion::OtherHost));
        assert_eq!(at("https://site.test/docs/a", 3), Some(Exclusion::Depth));
        assert_eq!(at("https://site.test/blog/docs/", 1), Some(Exclusion::PathPrefix));
        assert_eq!(at("https://site.test/docs/a.pdf", 1), Some(Exclusion::Pattern));
        assert_eq!(at("https://site.test/docsx", 1), Some(Exclusion::Pattern));
    }
}
