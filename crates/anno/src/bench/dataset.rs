//! An extraction dataset on disk, laid out like `shared/bench/extraction/`:
//!
//! ```text
//! ground-truth.json     {id: {"articleBody": text, "url": original address}}
//! html/<id>.html.gz     the page as fetched (gzip)
//! ```

use anyhow::{Context, bail};
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The ground-truth file inside a dataset directory.
pub const GROUND_TRUTH: &str = "ground-truth.json";

/// One page of a dataset, held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub id: String,
    /// The address the page was fetched from (empty when the ground truth has none).
    pub url: String,
    /// The page as fetched, decompressed.
    pub html: Vec<u8>,
    /// The article body it should yield.
    pub truth: String,
}

/// One ground-truth entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Truth {
    #[serde(rename = "articleBody", default, deserialize_with = "null_as_empty")]
    pub article_body: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub url: String,
}

/// Loads every page listed in `dir/ground-truth.json` with its HTML, sorted by id.
pub fn load(dir: &Path) -> anyhow::Result<Vec<Page>> {
    let truth = load_ground_truth(dir)?;
    let html_dir = dir.join("html");
    let mut pages = Vec::with_capacity(truth.len());
    for (id, entry) in truth {
        let path = html_dir.join(format!("{id}.html.gz"));
        let compressed = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut html = Vec::with_capacity(compressed.len() * 4);
        MultiGzDecoder::new(compressed.as_slice())
            .read_to_end(&mut html)
            .with_context(|| format!("cannot decompress {} (expected gzip)", path.display()))?;
        pages.push(Page { id, url: entry.url, html, truth: entry.article_body });
    }
    Ok(pages)
}

/// Reads `dir/ground-truth.json`, keyed (and so sorted) by page id.
pub fn load_ground_truth(dir: &Path) -> anyhow::Result<BTreeMap<String, Truth>> {
    let path = dir.join(GROUND_TRUTH);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let truth: BTreeMap<String, Truth> = serde_json::from_str(&text).with_context(|| {
        format!("{} is not a JSON object of {{id: {{\"articleBody\": text, \"url\": address}}}}", path.display())
    })?;
    if truth.is_empty() {
        bail!("{} lists no pages", path.display());
    }
    if let Some(id) = truth.keys().find(|id| !valid_id(id)) {
        bail!("{}: page id {id:?} cannot name a file under html/", path.display());
    }
    Ok(truth)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0'])
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::testing::{TempDir, bench_dir, gzip, unavailable};

    fn write_dataset(dir: &TempDir, truth: &str, pages: &[(&str, &[u8])]) {
        std::fs::write(dir.path().join(GROUND_TRUTH), truth).unwrap();
        std::fs::create_dir_all(dir.path().join("html")).unwrap();
        for (id, bytes) in pages {
            std::fs::write(dir.path().join("html").join(format!("{id}.html.gz")), bytes).unwrap();
        }
    }

    #[test]
    fn loads_pages_sorted_by_id() {
        let dir = TempDir::new("dataset-ok");
        let truth = r#"{
            "b": {"articleBody": "Second page.", "url": "https://example.com/b"},
            "a": {"articleBody": "First page.", "url": "https://example.com/a"},
            "c": {"articleBody": null}
        }"#;
        let (a, b, c) = (gzip(b"<p>First page.</p>"), gzip("<p>Zweite Seite – ü</p>".as_bytes()), gzip(b""));
        write_dataset(&dir, truth, &[("a", &a), ("b", &b), ("c", &c), ("unlisted", &a)]);
        let pages = load(dir.path()).unwrap();
        let ids: Vec<&str> = pages.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(pages[0].url, "https://example.com/a");
        assert_eq!(pages[0].truth, "First page.");
        assert_eq!(pages[0].html, b"<p>First page.</p>");
        assert_eq!(pages[1].html, "<p>Zweite Seite – ü</p>".as_bytes());
        assert_eq!((pages[2].url.as_str(), pages[2].truth.as_str(), pages[2].html.len()), ("", "", 0));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = TempDir::new("dataset-errors");
        let err = load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("ground-truth.json"), "{err:#}");

        write_dataset(&dir, r#"{"a": {"articleBody": "x"}, "b": {"articleBody": "y"}}"#, &[("a", &gzip(b"x"))]);
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("b.html.gz"), "{err}");

        write_dataset(
            &dir,
            r#"{"a": {"articleBody": "x"}, "b": {"articleBody": "y"}}"#,
            &[("b", b"<html>plain</html>")],
        );
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("b.html.gz") && err.contains("decompress"), "{err}");

        write_dataset(&dir, r#"{"a": "just text"}"#, &[]);
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("ground-truth.json") && err.contains("line 1"), "{err}");

        write_dataset(&dir, "{}", &[]);
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("no pages"), "{err}");

        write_dataset(&dir, r#"{"../escape": {"articleBody": "x"}}"#, &[]);
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("../escape"), "{err}");
    }

    #[test]
    fn loads_the_development_set() {
        let Some(bench) = bench_dir() else { return unavailable("the shared bench directory") };
        let pages = load(&bench.join("extraction")).unwrap();
        assert_eq!(pages.len(), 90);
        assert!(pages.windows(2).all(|w| w[0].id < w[1].id));
        for page in &pages {
            assert!(page.url.starts_with("http"), "{}: {}", page.id, page.url);
            assert!(!page.truth.trim().is_empty(), "{}", page.id);
            assert!(page.html.len() > 1000, "{}: {} bytes", page.id, page.html.len());
        }
    }
}
