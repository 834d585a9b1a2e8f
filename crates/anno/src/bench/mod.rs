//! The extraction benchmark: run an extractor over a dataset of fetched pages, time it, and score
//! its output with the article-extraction metric (see [`score`]).

pub mod audit;
pub mod dataset;
pub mod fetch;
pub mod gateway;
pub mod propagation;
pub mod score;

pub use dataset::Page;
pub use score::{PageScore, Score};

use anyhow::Context;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Wall time, and this process's CPU time, since it was started.
pub(crate) struct Stopwatch {
    started: Instant,
    cpu: Option<Duration>,
}

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch { started: Instant::now(), cpu: process_cpu() }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// User and system CPU time of every thread since the start; none where
    /// the platform does not report it.
    pub(crate) fn cpu(&self) -> Option<Duration> {
        self.cpu.zip(process_cpu()).map(|(before, after)| after.saturating_sub(before))
    }
}

/// The middle value (the mean of the two middle ones for an even count); 0
/// for none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// User and system CPU time of this process so far (Linux).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in clock ticks of 1/100 s (USER_HZ) on every Linux platform.
    Some(Duration::from_millis(ticks * 10))
}

/// A throwaway database on a Postgres server.
pub(crate) struct ScratchDatabase {
    server: String,
    name: String,
}

impl ScratchDatabase {
    pub(crate) async fn create(server: &str) -> anyhow::Result<ScratchDatabase> {
        let name = format!("anno_bench_{}", anno_tenancy::new_id("db").trim_start_matches("db_").to_lowercase());
        let mut conn = sqlx::PgConnection::connect(server).await.context("connecting to Postgres")?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await?;
        Ok(ScratchDatabase { server: server.to_owned(), name })
    }

    pub(crate) fn url(&self) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&self.server)?;
        url.set_path(&self.name);
        Ok(url.to_string())
    }

    pub(crate) async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

/// What to benchmark and where to put the output.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// The dataset: a directory holding ground-truth.json and html/<id>.html.gz.
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// Write the extracted text here as a JSON object {id: text}.
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
    /// Extract every page this many times and report the fastest pass.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Also count o200k tokens of each page's raw HTML and of its Markdown, and
    /// report the reduction (outside the timed loop).
    #[arg(long)]
    pub tokens: bool,
}

/// Token reduction over a dataset: raw HTML against the Markdown returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    pub pages: usize,
    pub raw_tokens: u64,
    pub markdown_tokens: u64,
    /// The median of the per-page reductions (1 − markdown / raw).
    pub median: f64,
}

impl Reduction {
    /// Total reduction: 1 − all Markdown tokens / all raw tokens.
    pub fn total(&self) -> f64 {
        if self.raw_tokens == 0 { 0.0 } else { 1.0 - self.markdown_tokens as f64 / self.raw_tokens as f64 }
    }

    /// From per-page (raw, markdown) token counts.
    pub fn from_counts(counts: &[(u64, u64)]) -> Reduction {
        let ratios: Vec<f64> =
            counts.iter().filter(|(raw, _)| *raw > 0).map(|(raw, md)| 1.0 - *md as f64 / *raw as f64).collect();
        let median = median(ratios);
        Reduction {
            pages: counts.len(),
            raw_tokens: counts.iter().map(|c| c.0).sum(),
            markdown_tokens: counts.iter().map(|c| c.1).sum(),
            median,
        }
    }
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tokens     o200k, raw HTML {} -> Markdown {} over {} pages: total reduction {:.1}%, median {:.1}%",
            self.raw_tokens,
            self.markdown_tokens,
            self.pages,
            self.total() * 100.0,
            self.median * 100.0
        )
    }
}

/// The outcome of a benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub score: Score,
    /// Pages extracted per pass.
    pub pages: usize,
    /// Bytes of (decompressed) HTML extracted per pass.
    pub bytes: usize,
    /// Passes run.
    pub passes: u32,
    /// Wall-clock time of the fastest pass.
    pub best_seconds: f64,
    pub pages_per_second: f64,
    /// Millions of bytes of HTML per second.
    pub mb_per_second: f64,
    /// Per-page scores in id order, with each page's address (see [`score::write_csv`]).
    pub per_page: Vec<PageScore>,
}

/// Loads the dataset, runs `extract(html, url)` over every page on the current thread
/// `args.repeat` times (at least once), keeps the fastest pass's time, writes the predictions
/// when asked, and scores them against the ground truth. Only the extraction loop is timed.
pub fn run_extract_bench(args: &BenchArgs, extract: impl Fn(&[u8], &str) -> String) -> anyhow::Result<Report> {
    let pages = dataset::load(&args.dataset)?;
    let passes = args.repeat.max(1);
    let mut best = Duration::MAX;
    let mut predicted: Vec<String> = Vec::new();
    for pass in 0..passes {
        let mut output = Vec::with_capacity(pages.len());
        let start = Instant::now();
        for page in &pages {
            output.push(extract(&page.html, &page.url));
        }
        best = best.min(start.elapsed());
        if pass == 0 {
            predicted = output;
        }
    }

    let predictions: BTreeMap<String, String> = pages.iter().map(|p| p.id.clone()).zip(predicted).collect();
    if let Some(path) = &args.predictions {
        let json = serde_json::to_string_pretty(&predictions)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write the predictions to {}", path.display()))?;
    }

    let truth: BTreeMap<String, String> = pages.iter().map(|p| (p.id.clone(), p.truth.clone())).collect();
    let mut per_page = score::page_scores(&truth, &predictions);
    for (row, page) in per_page.iter_mut().zip(&pages) {
        row.url.clone_from(&page.url);
    }
    let bytes: usize = pages.iter().map(|p| p.html.len()).sum();
    let best_seconds = best.as_secs_f64();
    Ok(Report {
        score: score::aggregate(&per_page),
        pages: pages.len(),
        bytes,
        passes,
        best_seconds,
        pages_per_second: rate(pages.len() as f64, best_seconds),
        mb_per_second: rate(bytes as f64 / 1e6, best_seconds),
        per_page,
    })
}

fn rate(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { amount / seconds } else { f64::INFINITY }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.score;
        let passes = if self.passes == 1 { "1 pass".to_owned() } else { format!("best of {} passes", self.passes) };
        writeln!(f, "pages      {} ({:.2} MB of HTML)", self.pages, self.bytes as f64 / 1e6)?;
        writeln!(f, "precision  {:.3}", s.precision)?;
        writeln!(f, "recall     {:.3}", s.recall)?;
        writeln!(f, "F1         {:.3}", s.f1)?;
        writeln!(f, "exact      {:.3} of pages", s.accuracy)?;
        writeln!(f, "empty      {} of {} pages", s.empty_predictions, s.pages)?;
        writeln!(
            f,
            "speed      {:.1} pages/s, {:.2} MB/s ({:.3} s, {passes}, one thread)",
            self.pages_per_second, self.mb_per_second, self.best_seconds
        )
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the benchmark tests.

    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temporary directory, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("anno-bench-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// The shared bench directory (score_extraction.py, extraction/): `$ANNO_BENCH_DIR`, else
    /// `shared/bench` next to the repository.
    pub fn bench_dir() -> Option<PathBuf> {
        let dir = match std::env::var_os("ANNO_BENCH_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench"),
        };
        let complete = dir.join("score_extraction.py").is_file()
            && dir.join("extraction/ground-truth.json").is_file()
            && dir.join("extraction/html").is_dir();
        complete.then_some(dir)
    }

    /// Whether `python3` can be run.
    pub fn have_python() -> bool {
        std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
    }

    /// Fails the test under CI, where everything it needs must be present; elsewhere prints why
    /// it is skipped.
    pub fn unavailable(what: &str) {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(!ci, "{what} is required under CI (set ANNO_BENCH_DIR to the shared bench directory)");
        eprintln!("skipping: {what} is not available");
    }
}

#[cfg(test)]
mod reduction_tests {
    use super::Reduction;

    #[test]
    fn reduction_is_total_and_median() {
        let r = Reduction::from_counts(&[(100, 10), (200, 100), (1000, 100), (0, 0)]);
        assert_eq!((r.raw_tokens, r.markdown_tokens), (1300, 210));
        assert!((r.total() - (1.0 - 210.0 / 1300.0)).abs() < 1e-12);
        assert!((r.median - 0.9).abs() < 1e-12, "median of 0.9, 0.5, 0.9 is 0.9");
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TempDir, bench_dir, gzip, unavailable};
    use super::*;
    use std::cell::Cell;

    fn tiny_dataset() -> TempDir {
        let dir = TempDir::new("run");
        let truth = r#"{
            "one": {"articleBody": "The quick brown fox jumps over the lazy dog.", "url": "https://example.com/1"},
            "two": {"articleBody": "A short one", "url": "https://example.com/2"}
        }"#;
        std::fs::write(dir.path().join("ground-truth.json"), truth).unwrap();
        std::fs::create_dir(dir.path().join("html")).unwrap();
        let one = "<p>The quick brown fox jumps over the lazy dog.</p>";
        std::fs::write(dir.path().join("html/one.html.gz"), gzip(one.as_bytes())).unwrap();
        std::fs::write(dir.path().join("html/two.html.gz"), gzip(b"<p>nothing here</p>")).unwrap();
        dir
    }

    /// Keeps the text between the first `<p>` and `</p>` when it is not "nothing here".
    fn toy_extract(html: &[u8], _url: &str) -> String {
        let html = std::str::from_utf8(html).unwrap();
        let text = html.split_once("<p>").and_then(|(_, rest)| rest.split_once("</p>")).map_or("", |(t, _)| t);
        if text == "nothing here" { String::new() } else { text.to_owned() }
    }

    #[test]
    fn runs_scores_and_writes_predictions() {
        let dir = tiny_dataset();
        let out = dir.path().join("predictions.json");
        let args =
            BenchArgs { dataset: dir.path().to_owned(), predictions: Some(out.clone()), repeat: 3, tokens: false };
        let calls = Cell::new(0);
        let report = run_extract_bench(&args, |html, url| {
            calls.set(calls.get() + 1);
            assert!(url.starts_with("https://example.com/"));
            toy_extract(html, url)
        })
        .unwrap();
        assert_eq!(calls.get(), 6);
        assert_eq!((report.pages, report.passes), (2, 3));
        assert_eq!(report.bytes, "<p>The quick brown fox jumps over the lazy dog.</p><p>nothing here</p>".len());
        // "one" is exact; "two" is empty: excluded from precision, recall 0.
        assert_eq!((report.score.precision, report.score.recall, report.score.f1), (1.0, 0.5, 2.0 / 3.0));
        assert_eq!((report.score.accuracy, report.score.empty_predictions), (0.5, 1));
        assert!(report.best_seconds > 0.0 && report.pages_per_second > 0.0 && report.mb_per_second > 0.0);
        assert_eq!(report.per_page[1].url, "https://example.com/2");

        let written: BTreeMap<String, String> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(written["one"], "The quick brown fox jumps over the lazy dog.");
        assert_eq!(written["two"], "");

        let text = report.to_string();
        for needle in ["precision  1.000", "recall     0.500", "F1         0.667", "pages/s", "MB/s", "best of 3"] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
    }

    #[test]
    fn runs_at_least_once() {
        let dir = tiny_dataset();
        let args = BenchArgs { dataset: dir.path().to_owned(), predictions: None, repeat: 0, tokens: false };
        let calls = Cell::new(0);
        let report = run_extract_bench(&args, |_, _| {
            calls.set(calls.get() + 1);
            String::new()
        })
        .unwrap();
        assert_eq!((calls.get(), report.passes), (2, 1));
        assert_eq!((report.score.precision, report.score.recall, report.score.empty_predictions), (0.0, 0.0, 2));
    }

    #[test]
    fn reports_unwritable_predictions() {
        let dir = tiny_dataset();
        let out = dir.path().join("no-such-dir/predictions.json");
        let args = BenchArgs { dataset: dir.path().to_owned(), predictions: Some(out), repeat: 1, tokens: false };
        let err = format!("{:#}", run_extract_bench(&args, toy_extract).unwrap_err());
        assert!(err.contains("no-such-dir/predictions.json"), "{err}");
    }

    #[test]
    fn ground_truth_as_prediction_scores_perfectly_on_the_development_set() {
        let Some(bench) = bench_dir() else { return unavailable("the shared bench directory") };
        let args = BenchArgs { dataset: bench.join("extraction"), predictions: None, repeat: 1, tokens: false };
        let truth = dataset::load_ground_truth(&args.dataset).unwrap();
        let by_url: BTreeMap<&str, &str> = truth.values().map(|t| (t.url.as_str(), t.article_body.as_str())).collect();
        let report = run_extract_bench(&args, |_, url| by_url[url].to_owned()).unwrap();
        assert_eq!((report.score.precision, report.score.recall, report.score.f1), (1.0, 1.0, 1.0));
        assert_eq!(report.pages, 90);
        assert!(report.bytes > 1_000_000, "{} bytes", report.bytes);
    }
}
