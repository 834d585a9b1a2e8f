//! The options of the content endpoints, as clients send them (camelCase,
//! unknown names refused), and what they resolve to.

use anno_api::config::{FetchPolicy, Settings as TenantSettings};
use anno_errors::{ApiError, FieldError};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

/// Nodes returned when the caller does not say (Anno's first server's default).
pub const DEFAULT_MAX_NODES: u32 = 60;
/// More nodes than this are never returned in one response.
pub const MAX_NODES_CAP: u32 = 10_000;
/// Selectors per list, and bytes per selector list, a caller may send.
const MAX_SELECTORS: usize = 32;

/// How a content response is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Anno's event stream, one JSON object per line.
    #[default]
    Ndjson,
    /// The whole document in one JSON object.
    Json,
    /// The Markdown rendering, metadata in headers.
    Markdown,
    /// The plain-text rendering, metadata in headers.
    Text,
}

impl Format {
    /// The format of a name as clients write it (`markdown`).
    pub fn named(name: &str) -> Option<Format> {
        match name {
            "ndjson" => Some(Format::Ndjson),
            "json" => Some(Format::Json),
            "markdown" => Some(Format::Markdown),
            "text" => Some(Format::Text),
            _ => None,
        }
    }

    /// The format an `Accept` header asks for, when it names one of ours.
    fn from_accept(headers: &HeaderMap) -> Option<Format> {
        let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
        accept.split(',').find_map(|item| {
            let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            match media.as_str() {
                "application/x-ndjson" | "application/ndjson" => Some(Format::Ndjson),
                "application/json" => Some(Format::Json),
                "text/markdown" => Some(Format::Markdown),
                "text/plain" => Some(Format::Text),
                _ => None,
            }
        })
    }
}

/// `options` of `/v1/content/fetch`, `/extract` and `/batch-fetch`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentOptions {
    pub format: Option<Format>,
    pub use_cache: Option<bool>,
    /// Seconds a cached copy may be old.
    pub max_age: Option<u64>,
    pub max_nodes: Option<u32>,
    pub max_tokens: Option<u32>,
    pub only_main_content: Option<bool>,
    pub include_selectors: Option<Vec<String>>,
    pub exclude_selectors: Option<Vec<String>>,
    pub include_links: Option<bool>,
    pub include_images: Option<bool>,
    pub render: Option<bool>,
    /// Batch only: how many URLs are fetched at once.
    pub parallel: Option<u32>,
}

fn field_error(path: String, message: impl Into<String>) -> FieldError {
    FieldError { path, message: message.into() }
}

/// Options resolved against the defaults and checked.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub format: Format,
    pub use_cache: bool,
    pub max_age: Option<u64>,
    pub max_nodes: u32,
    pub max_tokens: Option<u32>,
    pub only_main_content: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub links: bool,
    pub images: bool,
    pub parallel: Option<u32>,
    /// The tenant's fetch policy: which domains, and whether to share the cache.
    pub fetch: FetchPolicy,
}

impl ContentOptions {
    /// Checks the options (field paths under `prefix`, e.g. `options`) and fills
    /// in the tenant's defaults, then the built-in ones; the format comes from
    /// the options, else `Accept`, else the tenant's default.
    pub fn resolve(self, prefix: &str, headers: &HeaderMap, tenant: &TenantSettings) -> Result<Resolved, ApiError> {
        let defaults = &tenant.extraction;
        if self.render == Some(true) {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "rendering_unavailable",
                "Rendering pages in a browser is not available yet; send `render: false` (the default).",
            ));
        }
        let mut errors = Vec::new();
        let field = |name: &str| format!("{prefix}.{name}");
        if let Some(n) = self.max_nodes {
            if n == 0 || n > MAX_NODES_CAP {
                errors.push(field_error(field("maxNodes"), format!("must be between 1 and {MAX_NODES_CAP}")));
            }
        }
        if self.max_tokens == Some(0) {
            errors.push(field_error(field("maxTokens"), "must be at least 1"));
        }
        if self.parallel == Some(0) {
            errors.push(field_error(field("parallel"), "must be at least 1"));
        }
        for (name, list) in
            [("includeSelectors", &self.include_selectors), ("excludeSelectors", &self.exclude_selectors)]
        {
            let Some(list) = list else { continue };
            if list.len() > MAX_SELECTORS {
                errors.push(field_error(field(name), format!("at most {MAX_SELECTORS} selectors")));
                continue;
            }
            for (i, selector) in list.iter().enumerate() {
                if let Err(e) = anno_extract::select::parse(selector) {
                    errors.push(field_error(format!("{}[{i}]", field(name)), e.to_string()));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid_fields(errors));
        }
        let default_format = defaults.format.as_deref().and_then(Format::named);
        Ok(Resolved {
            format: self.format.or_else(|| Format::from_accept(headers)).or(default_format).unwrap_or_default(),
            use_cache: self.use_cache.unwrap_or(true),
            max_age: self.max_age.or(tenant.fetch.cache_max_age),
            max_nodes: self.max_nodes.or(defaults.max_nodes).unwrap_or(DEFAULT_MAX_NODES),
            max_tokens: self.max_tokens,
            only_main_content: self.only_main_content.or(defaults.only_main_content).unwrap_or(true),
            include: self.include_selectors.or_else(|| defaults.include_selectors.clone()).unwrap_or_default(),
            exclude: self.exclude_selectors.or_else(|| defaults.exclude_selectors.clone()).unwrap_or_default(),
            links: self.include_links.unwrap_or(true),
            images: self.include_images.unwrap_or(true),
            parallel: self.parallel,
            fetch: tenant.fetch.clone(),
        })
    }
}

impl Resolved {
    /// The engine's options. Selectors were checked in `resolve`.
    pub fn engine(&self) -> anno_extract::Options {
        let selectors = |list: &[String]| {
            (!list.is_empty()).then(|| anno_extract::select::parse(&list.join(", "))).and_then(Result::ok)
        };
        anno_extract::Options {
            main_content: self.only_main_content,
            links: self.links,
            images: self.images,
            markdown: true,
            count_tokens: true,
            max_tokens: self.max_tokens.map(|t| t as usize),
            max_nodes: Some(self.max_nodes as usize),
            include: selectors(&self.include),
            exclude: selectors(&self.exclude),
        }
    }

    /// What distinguishes one extraction of the same bytes from another: the
    /// part of a document cache key that is not the body.
    pub fn extraction_key(&self) -> String {
        format!(
            "m{}l{}i{}n{}t{}|{}|{}",
            u8::from(self.only_main_content),
            u8::from(self.links),
            u8::from(self.images),
            self.max_nodes,
            self.max_tokens.map_or(0, |t| t),
            self.include.join("\u{1f}"),
            self.exclude.join("\u{1f}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        h
    }

    #[test]
    fn the_format_comes_from_the_options_then_accept() {
        let none = ContentOptions::default().resolve("options", &HeaderMap::new(), &TenantSettings::default()).unwrap();
        assert_eq!(none.format, Format::Ndjson);
        let md = ContentOptions::default()
            .resolve("options", &headers("text/markdown, */*;q=0.1"), &TenantSettings::default())
            .unwrap();
        assert_eq!(md.format, Format::Markdown);
        let explicit = ContentOptions { format: Some(Format::Json), ..Default::default() };
        assert_eq!(
            explicit.resolve("options", &headers("text/plain"), &TenantSettings::default()).unwrap().format,
            Format::Json
        );
    }

    #[test]
    fn the_tenant_defaults_fill_what_the_request_leaves_out() {
        let tenant = TenantSettings {
            extraction: anno_api::config::ExtractionDefaults {
                only_main_content: Some(false),
                max_nodes: Some(25),
                format: Some("markdown".into()),
                include_selectors: Some(vec!["article".into()]),
                exclude_selectors: None,
            },
            fetch: FetchPolicy { cache_max_age: Some(60), ..Default::default() },
            ..Default::default()
        };
        let filled = ContentOptions::default().resolve("options", &HeaderMap::new(), &tenant).unwrap();
        assert_eq!((filled.format, filled.max_nodes, filled.only_main_content), (Format::Markdown, 25, false));
        assert_eq!((filled.include, filled.max_age), (vec!["article".to_owned()], Some(60)));
        let accept = ContentOptions::default().resolve("options", &headers("text/plain"), &tenant).unwrap();
        assert_eq!(accept.format, Format::Text, "Accept beats the tenant's default");
        let own = ContentOptions { max_nodes: Some(5), only_main_content: Some(true), ..Default::default() };
        let own = own.resolve("options", &HeaderMap::new(), &tenant).unwrap();
        assert_eq!((own.max_nodes, own.only_main_content), (5, true), "the request's own options win");
    }

    #[test]
    fn bad_options_name_every_bad_field() {
        let options = ContentOptions {
            max_nodes: Some(0),
            include_selectors: Some(vec!["article".into(), "div[".into()]),
            ..Default::default()
        };
        let error = options.resolve("options", &HeaderMap::new(), &TenantSettings::default()).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        let paths: Vec<_> = error.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["options.maxNodes", "options.includeSelectors[1]"]);
    }

    #[test]
    fn render_is_not_available_yet() {
        let error = ContentOptions { render: Some(true), ..Default::default() }.resolve(
            "options",
            &HeaderMap::new(),
            &TenantSettings::default(),
        );
        let error = error.unwrap_err();
        assert_eq!((error.status, error.code.as_ref()), (StatusCode::NOT_IMPLEMENTED, "rendering_unavailable"));
    }
}
