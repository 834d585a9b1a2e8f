//! Bytes to text: the charset from a BOM, the `Content-Type` header, a
//! `<meta charset>` in the first kilobytes, or by sniffing — in that order, as
//! browsers do.

use encoding_rs::Encoding;

/// How the charset was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CharsetSource {
    Bom,
    Header,
    Meta,
    Sniffed,
}

/// Decoded text and how it was decoded.
#[derive(Debug)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static Encoding,
    pub source: CharsetSource,
    /// Whether malformed sequences were replaced.
    pub had_errors: bool,
}

/// How far into the document a `<meta charset>` is looked for.
const META_SCAN: usize = 4096;

pub fn decode(bytes: &[u8], content_type: Option<&str>) -> Decoded {
    let (encoding, source) = detect(bytes, content_type);
    let (text, encoding, had_errors) = encoding.decode(bytes);
    Decoded { text: text.into_owned(), encoding, source, had_errors }
}

fn detect(bytes: &[u8], content_type: Option<&str>) -> (&'static Encoding, CharsetSource) {
    if let Some((encoding, _)) = Encoding::for_bom(bytes) {
        return (encoding, CharsetSource::Bom);
    }
    if let Some(encoding) = content_type.and_then(charset_param).and_then(|l| Encoding::for_label(l.as_bytes())) {
        return (unicode_for_ascii_compatible(encoding), CharsetSource::Header);
    }
    if let Some(encoding) = meta_charset(&bytes[..bytes.len().min(META_SCAN)]) {
        return (unicode_for_ascii_compatible(encoding), CharsetSource::Meta);
    }
    if std::str::from_utf8(bytes).is_ok() {
        return (encoding_rs::UTF_8, CharsetSource::Sniffed);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    (detector.guess(None, chardetng::Utf8Detection::Allow), CharsetSource::Sniffed)
}

/// A page cannot meaningfully declare UTF-16 in its own (ASCII-readable) text;
/// browsers read such a declaration as UTF-8.
fn unicode_for_ascii_compatible(encoding: &'static Encoding) -> &'static Encoding {
    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE { encoding_rs::UTF_8 } else { encoding }
}

/// `charset=` of a `Content-Type` value.
pub fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// `<meta charset=…>` or `<meta http-equiv="Content-Type" content="…charset=…">`.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&lower[at..], b"<meta") {
        let start = at + found;
        let end = memchr::memchr(b'>', &lower[start..]).map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(pos) = memchr::memmem::find(tag, b"charset") {
            let rest = &tag[pos + b"charset".len()..];
            let rest = rest.iter().skip_while(|b| b.is_ascii_whitespace()).copied().collect::<Vec<u8>>();
            if let Some(value) = rest.strip_prefix(b"=") {
                let value: Vec<u8> = value
                    .iter()
                    .skip_while(|b| b.is_ascii_whitespace() || **b == b'"' || **b == b'\'')
                    .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b';' | b'/' | b'>'))
                    .copied()
                    .collect();
                if let Some(encoding) = Encoding::for_label(&value) {
                    return Some(encoding);
                }
            }
        }
        at = end.max(start + 1);
        if at >= lower.len() {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bom_wins_then_the_header_then_meta_then_sniffing() {
        let bom = [&[0xEF, 0xBB, 0xBF][..], "<p>é</p>".as_bytes()].concat();
        let d = decode(&bom, Some("text/html; charset=iso-8859-1"));
        assert_eq!((d.source, d.text.as_str()), (CharsetSource::Bom, "<p>é</p>"));

        let latin1 = b"<meta charset=utf-8><p>caf\xe9</p>";
        let d = decode(latin1, Some("text/html; charset=\"ISO-8859-1\""));
        assert_eq!(d.source, CharsetSource::Header);
        assert!(d.text.contains("café"));

        let d = decode(b"<head><meta http-equiv='Content-Type' content='text/html; charset=windows-1251'></head><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>", None);
        assert_eq!(d.source, CharsetSource::Meta);
        assert!(d.text.contains("Привет"), "{}", d.text);

        let d = decode("<p>Привет, мир</p>".as_bytes(), None);
        assert_eq!((d.source, d.encoding), (CharsetSource::Sniffed, encoding_rs::UTF_8));

        let shift_jis = encoding_rs::SHIFT_JIS
            .encode("<p>日本語のテキストです。これは長めの文章で、文字コードを推定するためのものです。</p>")
            .0;
        let d = decode(&shift_jis, None);
        assert!(d.text.contains("日本語"), "sniffed as {}", d.encoding.name());
    }

    #[test]
    fn invalid_bytes_are_replaced_not_fatal() {
        let d = decode(b"<p>\xff\xfe\xfd ok</p>", Some("text/html; charset=utf-8"));
        assert!(d.had_errors && d.text.contains("ok"));
        assert_eq!(decode(b"", None).text, "");
    }
}
