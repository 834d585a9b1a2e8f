//! The article-extraction metric of the Scrapinghub article-extraction benchmark, as computed by
//! `shared/bench/score_extraction.py`; this implementation agrees with that script.
//!
//! Per page, both texts are split into `\w+` tokens (Python's Unicode word characters, case kept,
//! everything else dropped) and compared as multisets of word 4-grams ("shingles"); a text of one
//! to three tokens is a single shingle of all its tokens, an empty text has none. Over pages:
//! precision is averaged over the pages whose prediction has shingles, recall over the pages whose
//! ground truth has shingles, and F1 is the harmonic mean of those two averages (not the mean of
//! per-page F1 scores).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

/// Shingle length, in tokens.
pub const SHINGLE: usize = 4;

/// The aggregate score over a set of pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Mean page precision over the pages with a non-empty prediction.
    pub precision: f64,
    /// Mean page recall over the pages with a non-empty ground truth.
    pub recall: f64,
    /// Harmonic mean of `precision` and `recall`.
    pub f1: f64,
    /// Share of pages whose predicted tokens equal the true tokens exactly.
    pub accuracy: f64,
    /// Pages scored (every ground-truth id).
    pub pages: usize,
    /// Pages whose prediction has no tokens (missing ids included).
    pub empty_predictions: usize,
}

/// One page's counts and scores, the columns of the script's `--csv` output.
#[derive(Debug, Clone, PartialEq)]
pub struct PageScore {
    pub id: String,
    /// The page's original address when known; [`page_scores`] leaves it empty.
    pub url: String,
    pub true_tokens: usize,
    pub pred_tokens: usize,
    /// Shingles found in both texts (counted with multiplicity).
    pub true_positives: u64,
    /// Predicted shingles not in the ground truth.
    pub false_positives: u64,
    /// Ground-truth shingles missing from the prediction.
    pub false_negatives: u64,
    /// Whether the token lists are identical.
    pub exact: bool,
}

impl PageScore {
    /// Scores one page's predicted text against its ground truth.
    pub fn new(id: impl Into<String>, truth: &str, prediction: &str) -> Self {
        let true_tokens = tokens(truth);
        let pred_tokens = tokens(prediction);
        let mut counts: HashMap<&[&str], (u64, u64)> = HashMap::new();
        for shingle in shingles(&true_tokens) {
            counts.entry(shingle).or_default().0 += 1;
        }
        for shingle in shingles(&pred_tokens) {
            counts.entry(shingle).or_default().1 += 1;
        }
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (t, p) in counts.into_values() {
            tp += t.min(p);
            fp += p.saturating_sub(t);
            fn_ += t.saturating_sub(p);
        }
        PageScore {
            id: id.into(),
            url: String::new(),
            true_tokens: true_tokens.len(),
            pred_tokens: pred_tokens.len(),
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            exact: true_tokens == pred_tokens,
        }
    }

    /// 1 when the shingle multisets are equal (both empty included), 0 when the prediction has no
    /// shingles, else tp / (tp + fp).
    pub fn precision(&self) -> f64 {
        let (tp, fp, fn_) = (self.true_positives, self.false_positives, self.false_negatives);
        if fp == 0 && fn_ == 0 {
            1.0
        } else if tp == 0 && fp == 0 {
            0.0
        } else {
            tp as f64 / (tp + fp) as f64
        }
    }

    /// 1 when the shingle multisets are equal (both empty included), 0 when the ground truth has
    /// no shingles, else tp / (tp + fn).
    pub fn recall(&self) -> f64 {
        let (tp, fp, fn_) = (self.true_positives, self.false_positives, self.false_negatives);
        if fp == 0 && fn_ == 0 {
            1.0
        } else if tp == 0 && fn_ == 0 {
            0.0
        } else {
            tp as f64 / (tp + fn_) as f64
        }
    }

    /// The page's own F1 (reported per page; the aggregate F1 is not their mean).
    pub fn f1(&self) -> f64 {
        harmonic_mean(self.precision(), self.recall())
    }

    /// Whether the prediction has no shingles, so the page does not count towards precision.
    pub fn is_empty_prediction(&self) -> bool {
        self.true_positives + self.false_positives == 0
    }
}

/// Scores `predictions` against `truth` (both `{id: text}`). Every ground-truth id is scored, a
/// missing prediction as an empty text; predictions for ids not in `truth` are ignored.
pub fn score(truth: &BTreeMap<String, String>, predictions: &BTreeMap<String, String>) -> Score {
    aggregate(&page_scores(truth, predictions))
}

/// Per-page scores, in id order, as [`score`] computes them.
pub fn page_scores(truth: &BTreeMap<String, String>, predictions: &BTreeMap<String, String>) -> Vec<PageScore> {
    truth
        .iter()
        .map(|(id, text)| PageScore::new(id.as_str(), text, predictions.get(id).map_or("", String::as_str)))
        .collect()
}

/// Aggregates page scores the way the script does (summing in the given order, as it does in id
/// order, so the floating-point results are the same).
pub fn aggregate(pages: &[PageScore]) -> Score {
    let precision = mean(pages.iter().filter(|p| p.true_positives + p.false_positives > 0).map(PageScore::precision));
    let recall = mean(pages.iter().filter(|p| p.true_positives + p.false_negatives > 0).map(PageScore::recall));
    let exact = pages.iter().filter(|p| p.exact).count();
    Score {
        precision,
        recall,
        f1: harmonic_mean(precision, recall),
        accuracy: if pages.is_empty() { 0.0 } else { exact as f64 / pages.len() as f64 },
        pages: pages.len(),
        empty_predictions: pages.iter().filter(|p| p.is_empty_prediction()).count(),
    }
}

/// Writes per-page scores as CSV with the script's columns (`id,url,true_tokens,pred_tokens,tp,
/// fp,fn,precision,recall,f1,exact,pred_empty`), scores rounded to four decimals.
pub fn write_csv(mut out: impl Write, pages: &[PageScore]) -> io::Result<()> {
    writeln!(out, "id,url,true_tokens,pred_tokens,tp,fp,fn,precision,recall,f1,exact,pred_empty")?;
    for p in pages {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{}",
            csv_field(&p.id),
            csv_field(&p.url),
            p.true_tokens,
            p.pred_tokens,
            p.true_positives,
            p.false_positives,
            p.false_negatives,
            p.precision(),
            p.recall(),
            p.f1(),
            u8::from(p.exact),
            u8::from(p.is_empty_prediction()),
        )?;
    }
    out.flush()
}

/// The `\w+` matches of `text`, as Python's `re` finds them in a `str`.
pub fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// Python's `\w` for `str` patterns: `_` and every character for which `str.isalnum()` holds,
/// i.e. letters (general category L*) and numbers (N*). Rust's [`char::is_alphanumeric`] also
/// accepts the marks and symbols that have the Unicode `Alphabetic` property (vowel signs of
/// Indic scripts, Hebrew and Arabic points, circled letters), which Python treats as separators;
/// those are excluded here.
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    c.is_alphanumeric() && !in_ranges(ALPHABETIC_NON_WORD, c)
}

fn shingles<'a, 'b>(tokens: &'a [&'b str]) -> impl Iterator<Item = &'a [&'b str]> {
    let short = (!tokens.is_empty() && tokens.len() < SHINGLE).then_some(tokens);
    short.into_iter().chain(tokens.windows(SHINGLE))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn harmonic_mean(p: f64, r: f64) -> f64 {
    if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
}

fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")).into() } else { s.into() }
}

fn in_ranges(table: &[(u32, u32)], c: char) -> bool {
    let c = u32::from(c);
    let i = table.partition_point(|&(_, last)| last < c);
    table.get(i).is_some_and(|&(first, _)| first <= c)
}

/// Inclusive ranges of the characters for which [`char::is_alphanumeric`] holds but whose
/// general category is a mark (Mn, Mc) or a symbol (So): the `Other_Alphabetic` characters that
/// are neither letters nor numbers. Derived from the Unicode 17 character database (the version
/// of this toolchain's `char` tables); the `bench` tests check the result against Python's `re`
/// for every character Python knows.
#[rustfmt::skip]
const ALPHABETIC_NON_WORD: &[(u32, u32)] = &[
    (0x0345, 0x0345), (0x0363, 0x036F), (0x05B0, 0x05BD), (0x05BF, 0x05BF), (0x05C1, 0x05C2), (0x05C4, 0x05C5),
    (0x05C7, 0x05C7), (0x0610, 0x061A), (0x064B, 0x0657), (0x0659, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06DC),
    (0x06E1, 0x06E4), (0x06E7, 0x06E8), (0x06ED, 0x06ED), (0x0711, 0x0711), (0x0730, 0x073F), (0x07A6, 0x07B0),
    (0x0816, 0x0817), (0x081B, 0x0823), (0x0825, 0x0827), (0x0829, 0x082C), (0x0897, 0x0897), (0x08D4, 0x08DF),
    (0x08E3, 0x08E9), (0x08F0, 0x0903), (0x093A, 0x093B), (0x093E, 0x094C), (0x094E, 0x094F), (0x0955, 0x0957),
    (0x0962, 0x0963), (0x0981, 0x0983), (0x09BE, 0x09C4), (0x09C7, 0x09C8), (0x09CB, 0x09CC), (0x09D7, 0x09D7),
    (0x09E2, 0x09E3), (0x0A01, 0x0A03), (0x0A3E, 0x0A42), (0x0A47, 0x0A48), (0x0A4B, 0x0A4C), (0x0A51, 0x0A51),
    (0x0A70, 0x0A71), (0x0A75, 0x0A75), (0x0A81, 0x0A83), (0x0ABE, 0x0AC5), (0x0AC7, 0x0AC9), (0x0ACB, 0x0ACC),
    (0x0AE2, 0x0AE3), (0x0AFA, 0x0AFC), (0x0B01, 0x0B03), (0x0B3E, 0x0B44), (0x0B47, 0x0B48), (0x0B4B, 0x0B4C),
    (0x0B56, 0x0B57), (0x0B62, 0x0B63), (0x0B82, 0x0B82), (0x0BBE, 0x0BC2), (0x0BC6, 0x0BC8), (0x0BCA, 0x0BCC),
    (0x0BD7, 0x0BD7), (0x0C00, 0x0C04), (0x0C3E, 0x0C44), (0x0C46, 0x0C48), (0x0C4A, 0x0C4C), (0x0C55, 0x0C56),
    (0x0C62, 0x0C63), (0x0C81, 0x0C83), (0x0CBE, 0x0CC4), (0x0CC6, 0x0CC8), (0x0CCA, 0x0CCC), (0x0CD5, 0x0CD6),
    (0x0CE2, 0x0CE3), (0x0CF3, 0x0CF3), (0x0D00, 0x0D03), (0x0D3E, 0x0D44), (0x0D46, 0x0D48), (0x0D4A, 0x0D4C),
    (0x0D57, 0x0D57), (0x0D62, 0x0D63), (0x0D81, 0x0D83), (0x0DCF, 0x0DD4), (0x0DD6, 0x0DD6), (0x0DD8, 0x0DDF),
    (0x0DF2, 0x0DF3), (0x0E31, 0x0E31), (0x0E34, 0x0E3A), (0x0E4D, 0x0E4D), (0x0EB1, 0x0EB1), (0x0EB4, 0x0EB9),
    (0x0EBB, 0x0EBC), (0x0ECD, 0x0ECD), (0x0F71, 0x0F83), (0x0F8D, 0x0F97), (0x0F99, 0x0FBC), (0x102B, 0x1036),
    (0x1038, 0x1038), (0x103B, 0x103E), (0x1056, 0x1059), (0x105E, 0x1060), (0x1062, 0x1064), (0x1067, 0x106D),
    (0x1071, 0x1074), (0x1082, 0x108D), (0x108F, 0x108F), (0x109A, 0x109D), (0x1712, 0x1713), (0x1732, 0x1733),
    (0x1752, 0x1753), (0x1772, 0x1773), (0x17B6, 0x17C8), (0x1885, 0x1886), (0x18A9, 0x18A9), (0x1920, 0x192B),
    (0x1930, 0x1938), (0x1A17, 0x1A1B), (0x1A55, 0x1A5E), (0x1A61, 0x1A74), (0x1ABF, 0x1AC0), (0x1ACC, 0x1ACE),
    (0x1B00, 0x1B04), (0x1B35, 0x1B43), (0x1B80, 0x1B82), (0x1BA1, 0x1BA9), (0x1BAC, 0x1BAD), (0x1BE7, 0x1BF1),
    (0x1C24, 0x1C36), (0x1DD3, 0x1DF4), (0x24B6, 0x24E9), (0x2DE0, 0x2DFF), (0xA674, 0xA67B), (0xA69E, 0xA69F),
    (0xA802, 0xA802), (0xA80B, 0xA80B), (0xA823, 0xA827), (0xA880, 0xA881), (0xA8B4, 0xA8C3), (0xA8C5, 0xA8C5),
    (0xA8FF, 0xA8FF), (0xA926, 0xA92A), (0xA947, 0xA952), (0xA980, 0xA983), (0xA9B4, 0xA9BF), (0xA9E5, 0xA9E5),
    (0xAA29, 0xAA36), (0xAA43, 0xAA43), (0xAA4C, 0xAA4D), (0xAA7B, 0xAA7D), (0xAAB0, 0xAAB0), (0xAAB2, 0xAAB4),
    (0xAAB7, 0xAAB8), (0xAABE, 0xAABE), (0xAAEB, 0xAAEF), (0xAAF5, 0xAAF5), (0xABE3, 0xABEA), (0xFB1E, 0xFB1E),
    (0x10376, 0x1037A), (0x10A01, 0x10A03), (0x10A05, 0x10A06), (0x10A0C, 0x10A0F), (0x10D24, 0x10D27),
    (0x10D69, 0x10D69), (0x10EAB, 0x10EAC), (0x10EFA, 0x10EFC), (0x11000, 0x11002), (0x11038, 0x11045),
    (0x11073, 0x11074), (0x11080, 0x11082), (0x110B0, 0x110B8), (0x110C2, 0x110C2), (0x11100, 0x11102),
    (0x11127, 0x11132), (0x11145, 0x11146), (0x11180, 0x11182), (0x111B3, 0x111BF), (0x111CE, 0x111CF),
    (0x1122C, 0x11234), (0x11237, 0x11237), (0x1123E, 0x1123E), (0x11241, 0x11241), (0x112DF, 0x112E8),
    (0x11300, 0x11303), (0x1133E, 0x11344), (0x11347, 0x11348), (0x1134B, 0x1134C), (0x11357, 0x11357),
    (0x11362, 0x11363), (0x113B8, 0x113C0), (0x113C2, 0x113C2), (0x113C5, 0x113C5), (0x113C7, 0x113CA),
    (0x113CC, 0x113CD), (0x11435, 0x11441), (0x11443, 0x11445), (0x114B0, 0x114C1), (0x115AF, 0x115B5),
    (0x115B8, 0x115BE), (0x115DC, 0x115DD), (0x11630, 0x1163E), (0x11640, 0x11640), (0x116AB, 0x116B5),
    (0x1171D, 0x1172A), (0x1182C, 0x11838), (0x11930, 0x11935), (0x11937, 0x11938), (0x1193B, 0x1193C),
    (0x11940, 0x11940), (0x11942, 0x11942), (0x119D1, 0x119D7), (0x119DA, 0x119DF), (0x119E4, 0x119E4),
    (0x11A01, 0x11A0A), (0x11A35, 0x11A39), (0x11A3B, 0x11A3E), (0x11A51, 0x11A5B), (0x11A8A, 0x11A97),
    (0x11B60, 0x11B67), (0x11C2F, 0x11C36), (0x11C38, 0x11C3E), (0x11C92, 0x11CA7), (0x11CA9, 0x11CB6),
    (0x11D31, 0x11D36), (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D41), (0x11D43, 0x11D43),
    (0x11D47, 0x11D47), (0x11D8A, 0x11D8E), (0x11D90, 0x11D91), (0x11D93, 0x11D96), (0x11EF3, 0x11EF6),
    (0x11F00, 0x11F01), (0x11F03, 0x11F03), (0x11F34, 0x11F3A), (0x11F3E, 0x11F40), (0x1611E, 0x1612E),
    (0x16F4F, 0x16F4F), (0x16F51, 0x16F87), (0x16F8F, 0x16F92), (0x16FF0, 0x16FF1), (0x1BC9E, 0x1BC9E),
    (0x1E000, 0x1E006), (0x1E008, 0x1E018), (0x1E01B, 0x1E021), (0x1E023, 0x1E024), (0x1E026, 0x1E02A),
    (0x1E08F, 0x1E08F), (0x1E6E3, 0x1E6E3), (0x1E6E6, 0x1E6E6), (0x1E6EE, 0x1E6EF), (0x1E6F5, 0x1E6F5),
    (0x1E947, 0x1E947), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::dataset;
    use crate::bench::testing::{TempDir, bench_dir, have_python, unavailable};
    use std::process::Command;

    fn page(truth: &str, prediction: &str) -> PageScore {
        PageScore::new("p", truth, prediction)
    }

    fn counts(p: &PageScore) -> (u64, u64, u64) {
        (p.true_positives, p.false_positives, p.false_negatives)
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    #[test]
    fn tokens_follow_python_word_characters() {
        // Expected values are Python's re.findall(r"\w+", text).
        let cases: &[(&str, &[&str])] = &[
            ("Hello, world! It's 2024.", &["Hello", "world", "It", "s", "2024"]),
            ("snake_case x2 3.14 _lead trail_ __", &["snake_case", "x2", "3", "14", "_lead", "trail_", "__"]),
            ("Привет, мир! Ёжик_2024", &["Привет", "мир", "Ёжик_2024"]),
            ("한국어 텍스트입니다", &["한국어", "텍스트입니다"]),
            ("日本語のテキスト・データ", &["日本語のテキスト", "データ"]),
            ("हिन्दी भाषा", &["ह", "न", "द", "भ", "ष"]),
            ("ⓐⓑ circled", &["circled"]),
            ("x²+y² ½ Ⅻ", &["x²", "y²", "½", "Ⅻ"]),
            ("naïve café — «quoted» ‿tie", &["naïve", "café", "quoted", "tie"]),
            ("٣٤ ١٢", &["٣٤", "١٢"]),
            ("", &[]),
            (" \n\t—…", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(tokens(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn case_is_kept() {
        let p = page("The cat sat down", "the cat sat down");
        assert_eq!(counts(&p), (0, 1, 1));
        assert!(!p.exact);
    }

    #[test]
    fn empty_prediction_counts_only_against_recall() {
        let p = page("one two three four five", "");
        assert_eq!(counts(&p), (0, 0, 2));
        assert_eq!((p.precision(), p.recall(), p.f1()), (0.0, 0.0, 0.0));
        assert!(p.is_empty_prediction());

        let s = score(&map(&[("a", "one two three four five")]), &map(&[("a", " … ")]));
        assert_eq!((s.precision, s.recall, s.f1, s.pages, s.empty_predictions), (0.0, 0.0, 0.0, 1, 1));

        // With another page predicted perfectly, P averages over that page only.
        let truth = map(&[("a", "one two three four five"), ("b", "six seven eight nine")]);
        let s = score(&truth, &map(&[("a", ""), ("b", "six seven eight nine")]));
        assert_eq!((s.precision, s.recall, s.accuracy, s.empty_predictions), (1.0, 0.5, 0.5, 1));
    }

    #[test]
    fn empty_truth_and_prediction() {
        let p = page("", "");
        assert_eq!(counts(&p), (0, 0, 0));
        assert!(p.exact);
        assert_eq!((p.precision(), p.recall()), (1.0, 1.0));
        // The page is in neither average, but counts as an exact match.
        let s = score(&map(&[("a", "—")]), &map(&[("a", "")]));
        assert_eq!((s.precision, s.recall, s.f1, s.accuracy), (0.0, 0.0, 0.0, 1.0));

        // Empty truth, non-empty prediction: precision 0, recall not counted.
        let truth = map(&[("a", ""), ("b", "alpha beta gamma delta")]);
        let s = score(&truth, &map(&[("a", "noise"), ("b", "alpha beta gamma delta")]));
        assert_eq!((s.precision, s.recall), (0.5, 1.0));
    }

    #[test]
    fn short_texts_are_one_shingle() {
        assert_eq!(counts(&page("Hello world", "Hello world")), (1, 0, 0));
        assert_eq!(counts(&page("Hello world", "Hello, world!")), (1, 0, 0));
        assert_eq!(counts(&page("Hello world", "Hello there world")), (0, 1, 1));
        assert_eq!(counts(&page("Hello", "Hello world")), (0, 1, 1));
        // A three-token text never matches a 4-gram of a longer one.
        assert_eq!(counts(&page("a b c", "a b c d e")), (0, 2, 1));
        assert_eq!(counts(&page("a b c d", "a b c")), (0, 1, 1));
        let p = page("Hello there world", "Hello world");
        assert_eq!((p.precision(), p.recall()), (0.0, 0.0));
    }

    #[test]
    fn repeated_shingles_count_with_multiplicity() {
        // Shingles of "a b c d a b c d": abcd ×2, bcda, cdab, dabc.
        let truth = "a b c d a b c d";
        assert_eq!(counts(&page(truth, "a b c d")), (1, 0, 4));
        assert_eq!(counts(&page(truth, truth)), (5, 0, 0));
        // "a b c d" ×3: abcd ×3, bcda ×2, cdab ×2, dabc ×2.
        let p = page(truth, "a b c d a b c d a b c d");
        assert_eq!(counts(&p), (5, 4, 0));
        assert_eq!((p.precision(), p.recall()), (5.0 / 9.0, 1.0));
        assert!((p.f1() - 2.0 * (5.0 / 9.0) / (5.0 / 9.0 + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn unicode_words_are_shingled() {
        let truth = "Москва — столица России, город федерального значения.";
        let p = page(truth, "Москва столица России город федерального");
        assert_eq!(counts(&p), (2, 0, 1));
        assert_eq!(counts(&page("서울은 대한민국의 수도이다 인구는 많다", "서울은 대한민국의 수도이다")), (0, 1, 2));
        assert_eq!(counts(&page("東京は日本の首都です。人口が多い。", "東京は日本の首都です")), (0, 1, 1));
        assert_eq!(counts(&page("snake_case 42 is_ok v2 x_1", "snake_case 42 is_ok v2")), (1, 0, 1));
    }

    #[test]
    fn aggregates_macro_averages() {
        let truth = map(&[
            ("a", "w1 w2 w3 w4 w5 w6 w7 w8"), // 5 shingles
            ("b", "v1 v2 v3 v4 v5"),          // 2 shingles
            ("c", "u1 u2 u3 u4"),             // 1 shingle
        ]);
        let predictions = map(&[
            ("a", "w1 w2 w3 w4 w5 junk"), // tp 2, fp 1, fn 3
            ("b", "v1 v2 v3 v4 v5"),      // exact
            ("extra", "ignored text here"),
        ]);
        let pages = page_scores(&truth, &predictions);
        assert_eq!(pages.iter().map(counts).collect::<Vec<_>>(), [(2, 1, 3), (2, 0, 0), (0, 0, 1)]);
        let s = aggregate(&pages);
        let p = (2.0 / 3.0 + 1.0) / 2.0;
        let r = (2.0 / 5.0 + 1.0 + 0.0) / 3.0;
        assert_eq!((s.precision, s.recall), (p, r));
        assert_eq!(s.f1, 2.0 * p * r / (p + r));
        assert_eq!((s.accuracy, s.pages, s.empty_predictions), (1.0 / 3.0, 3, 1));
        assert_eq!(score(&truth, &predictions), s);
        assert_eq!(
            aggregate(&[]),
            Score { precision: 0.0, recall: 0.0, f1: 0.0, accuracy: 0.0, pages: 0, empty_predictions: 0 }
        );
    }

    #[test]
    fn writes_csv() {
        let mut pages = page_scores(&map(&[("a", "w1 w2 w3 w4 w5 w6"), ("b", "x")]), &map(&[("a", "w1 w2 w3 w4")]));
        pages[0].url = "https://example.com/?q=a,b&t=\"x\"".to_owned();
        let mut out = Vec::new();
        write_csv(&mut out, &pages).unwrap();
        let expected = "id,url,true_tokens,pred_tokens,tp,fp,fn,precision,recall,f1,exact,pred_empty\n\
                        a,\"https://example.com/?q=a,b&t=\"\"x\"\"\",6,4,1,0,2,1.0000,0.3333,0.5000,0,0\n\
                        b,,1,0,0,0,1,0.0000,0.0000,0.0000,0,1\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    fn python_available() -> Option<std::path::PathBuf> {
        let Some(bench) = bench_dir() else {
            unavailable("the shared bench directory (score_extraction.py and extraction/)");
            return None;
        };
        if !have_python() {
            unavailable("python3");
            return None;
        }
        Some(bench)
    }

    /// `is_word_char` against Python's `re` for every character Python's Unicode database assigns.
    #[test]
    fn word_characters_agree_with_python() {
        if !have_python() {
            return unavailable("python3");
        }
        let program = r#"
import re, sys, unicodedata
w = re.compile(r"\w")
def flag(c):
    if 0xD800 <= c < 0xE000 or unicodedata.category(chr(c)) == "Cn":
        return "-"
    return "1" if w.match(chr(c)) else "0"
sys.stdout.write("".join(flag(c) for c in range(0x110000)))
"#;
        let out = Command::new("python3").args(["-c", program]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len(), 0x110000);
        let mut checked = 0;
        let mut wrong = Vec::new();
        for (code, &flag) in out.stdout.iter().enumerate() {
            let Some(c) = u32::try_from(code).ok().and_then(char::from_u32) else { continue };
            if flag == b'-' {
                continue;
            }
            checked += 1;
            if is_word_char(c) != (flag == b'1') {
                wrong.push(format!("U+{code:04X}"));
            }
        }
        assert!(checked > 100_000, "{checked}");
        assert!(wrong.is_empty(), "{} characters disagree: {:?}", wrong.len(), &wrong[..wrong.len().min(50)]);
    }

    /// A deterministic variety of predictions built from the ground truth.
    fn perturbed_predictions(truth: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (i, (id, text)) in truth.iter().enumerate() {
            let words: Vec<&str> = text.split_whitespace().collect();
            let prediction = match i {
                7 | 31 => String::new(),
                19 => "— · … —".to_owned(),
                42 => continue, // missing: scored as empty
                _ => match i % 9 {
                    0 => text.clone(),
                    1 => words
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| j % 7 != 6)
                        .map(|(_, w)| *w)
                        .collect::<Vec<_>>()
                        .join(" "),
                    2 => format!(
                        "Advertisement\nSkip to main content\n{text}\n\nShare this: Facebook Twitter Email\n\
                         Related articles\nSubscribe to our newsletter. © 2020 All rights reserved."
                    ),
                    3 => words[..words.len() / 3].join(" "),
                    4 => {
                        let first = text.split('\n').find(|l| !l.trim().is_empty()).unwrap_or("");
                        format!("{first}\n{text}\n{first}")
                    }
                    5 => text.to_lowercase(),
                    6 => words
                        .iter()
                        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                        .collect::<Vec<_>>()
                        .join("  "),
                    7 => words.iter().take(3).copied().collect::<Vec<_>>().join(" "),
                    _ => {
                        let half = words.len() / 2;
                        format!(
                            "{} Read more: https://example.com/story_2020/{id} {}",
                            words[half..].join(" "),
                            words[..half].join(" ")
                        )
                    }
                },
            };
            out.insert(id.clone(), prediction);
        }
        out.insert("not-in-the-ground-truth".to_owned(), "ignored".to_owned());
        out
    }

    /// Scores perturbed predictions on the development set with this module and with
    /// score_extraction.py, and requires the same figures.
    #[test]
    fn agrees_with_the_python_scorer_on_the_development_set() {
        let Some(bench) = python_available() else { return };
        let truth: BTreeMap<String, String> = dataset::load_ground_truth(&bench.join("extraction"))
            .unwrap()
            .into_iter()
            .map(|(id, t)| (id, t.article_body))
            .collect();
        let predictions = perturbed_predictions(&truth);
        let ours = page_scores(&truth, &predictions);
        let rust = aggregate(&ours);

        let tmp = TempDir::new("agreement");
        let pred_path = tmp.path().join("perturbed.json");
        let (csv_path, json_path) = (tmp.path().join("per_page.csv"), tmp.path().join("metrics.json"));
        std::fs::write(&pred_path, serde_json::to_string(&predictions).unwrap()).unwrap();
        let out = Command::new("python3")
            .arg(bench.join("score_extraction.py"))
            .arg(&pred_path)
            .arg("--gt")
            .arg(bench.join("extraction/ground-truth.json"))
            .arg("--csv")
            .arg(&csv_path)
            .arg("--json")
            .arg(&json_path)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));

        // The printed line: name, F1, P, R, accuracy, empty predictions.
        let line = stdout.lines().find(|l| l.starts_with("perturbed ")).expect(&stdout);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let printed: Vec<f64> = fields[1..5].iter().map(|f| f.parse().unwrap()).collect();
        let (f1, precision, recall, accuracy) = (printed[0], printed[1], printed[2], printed[3]);
        let empty: usize = fields[5].parse().unwrap();

        // Full precision, from --json.
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let exact = &metrics["perturbed"];
        let get = |k: &str| exact[k].as_f64().unwrap();

        // Per-page counts, from --csv (the url column may be quoted, the last ten never are).
        let csv = std::fs::read_to_string(&csv_path).unwrap();
        let mut theirs = Vec::new();
        for row in csv.lines().skip(1) {
            let tail: Vec<&str> = row.rsplitn(11, ',').collect();
            let id = tail[10].split(',').next().unwrap();
            let n = |k: usize| -> u64 { tail[k].parse().unwrap() };
            // Reversed: pred_empty, exact, f1, recall, precision, fn, fp, tp, pred_tokens, true_tokens.
            theirs.push((id.to_owned(), n(9), n(8), n(7), n(6), n(5), n(1) == 1));
        }
        let mine: Vec<_> = ours
            .iter()
            .map(|p| {
                let (tp, fp, fn_) = counts(p);
                (p.id.clone(), p.true_tokens as u64, p.pred_tokens as u64, tp, fp, fn_, p.exact)
            })
            .collect();
        assert_eq!(mine, theirs);

        eprintln!(
            "rust:   P {:.6} R {:.6} F1 {:.6} acc {:.6} empty {}\npython: P {:.6} R {:.6} F1 {:.6} acc {:.6} empty {} \
             (printed P {precision:.3} R {recall:.3} F1 {f1:.3})",
            rust.precision,
            rust.recall,
            rust.f1,
            rust.accuracy,
            rust.empty_predictions,
            get("precision"),
            get("recall"),
            get("f1"),
            get("accuracy"),
            exact["n_empty_pred"],
        );
        for (name, ours, printed, full) in [
            ("precision", rust.precision, precision, get("precision")),
            ("recall", rust.recall, recall, get("recall")),
            ("f1", rust.f1, f1, get("f1")),
            ("accuracy", rust.accuracy, accuracy, get("accuracy")),
        ] {
            assert!((ours - printed).abs() < 0.0005, "{name}: rust {ours} vs printed {printed}");
            assert!((ours - full).abs() < 1e-9, "{name}: rust {ours} vs python {full}");
        }
        assert_eq!((rust.pages, rust.empty_predictions), (truth.len(), empty));
        // The perturbations cover a useful range, not a trivial score.
        assert!(rust.precision < 0.95 && rust.recall < 0.95 && rust.f1 > 0.5, "{rust:?}");
        assert!(empty >= 4 && rust.accuracy > 0.0 && rust.accuracy < 1.0, "{rust:?}");
    }
}
