//! The edges of an article: what an article container often holds before its
//! first paragraph (the headline again, a dateline, a byline, a kicker) and
//! after its last (a copyright line, a "see also:" label), which are not the
//! article's text. General rules only: lengths, dates, punctuation.

use crate::model::Block;

fn letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// A year, or a time of day, in a short line: a dateline or a timestamp.
fn date_like(text: &str) -> bool {
    if words(text) > 12 {
        return false;
    }
    let bytes = text.as_bytes();
    let digits_at = |i: usize, n: usize| bytes.get(i..i + n).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    (0..bytes.len()).any(|i| {
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_digit();
        let year = boundary_before
            && digits_at(i, 4)
            && !bytes.get(i + 4).is_some_and(u8::is_ascii_digit)
            && matches!(&bytes[i..i + 2], b"19" | b"20");
        let time = boundary_before && digits_at(i, 1) && {
            let j = if digits_at(i, 2) { i + 2 } else { i + 1 };
            bytes.get(j) == Some(&b':') && digits_at(j + 1, 2)
        };
        year || time
    })
}

fn similar(text: &str, title: &str) -> bool {
    let (t, h) = (title.trim().to_lowercase(), text.trim().to_lowercase());
    letters(&h) > 0 && !t.is_empty() && (t.contains(&h) || h.contains(&t))
}

fn is_prose_block(block: &Block) -> bool {
    matches!(block, Block::Paragraph { .. } | Block::Heading { .. } | Block::Quote { .. })
}

/// Removes what leads and trails the article proper.
pub fn trim(blocks: &mut Vec<Block>, title: &str) {
    // Lines with no letters or digits at all carry nothing ("___", "|").
    blocks.retain(|b| {
        let words_or_list = is_prose_block(b) || matches!(b, Block::ListItem { .. });
        !words_or_list || b.text().chars().any(char::is_alphabetic) || date_like(&b.text())
    });
    // Before the first real paragraph: the headline again, datelines, bylines.
    let first_prose = blocks
        .iter()
        .position(|b| matches!(b, Block::Paragraph { .. }) && words(&b.text()) >= 8 && letters(&b.text()) >= 40);
    if let Some(first) = first_prose {
        let mut keep = Vec::with_capacity(blocks.len());
        for (i, block) in blocks.drain(..).enumerate() {
            let text = block.text();
            let lead_junk = i < first
                && is_prose_block(&block)
                && (similar(&text, title) || date_like(&text) || letters(&text) < 15);
            if !lead_junk {
                keep.push(block);
            }
        }
        *blocks = keep;
    }
    // After the last paragraph: copyright lines and labels of what follows.
    while let Some(last) = blocks.last() {
        let text = last.text();
        let trimmed = text.trim();
        let label =
            words(trimmed) <= 5 && (trimmed.ends_with(':') || trimmed.ends_with("...") || trimmed.ends_with('…'));
        let copyright = trimmed.starts_with('©') || trimmed.to_lowercase().starts_with("copyright");
        if is_prose_block(last) && (label || copyright) {
            blocks.pop();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;

    fn p(text: &str) -> Block {
        Block::Paragraph { spans: vec![Span::plain(text)] }
    }

    #[test]
    fn datelines_and_timestamps_are_recognised() {
        for yes in [
            "Nov. 20, 2019, 9:28 AM UTC",
            "segunda-feira, 22 de janeiro de 2018 às 0:13",
            "15:23 2019",
            "Updated 12:24 am EST",
        ] {
            assert!(date_like(yes), "{yes}");
        }
        for no in [
            "The 2019 season was the best in a decade for the club and its many supporters across the region",
            "Call 555 1234",
            "A ratio of 3:2",
        ] {
            assert!(!date_like(no), "{no}");
        }
    }

    #[test]
    fn leading_headline_dateline_and_kicker_go_and_the_article_stays() {
        let body =
            "The committee met on Tuesday to discuss the proposal, which had been delayed twice since the spring.";
        let mut blocks = vec![
            p("Big News Today"),
            p("Nov. 20, 2019 5:52 AM EST"),
            p("BREAKING NEWS"),
            p(body),
            p("Short end."),
            p("You may also like..."),
            p("© 2019 Example Media"),
        ];
        trim(&mut blocks, "Big News Today | Example");
        let texts: Vec<String> = blocks.iter().map(Block::text).collect();
        assert_eq!(texts, [body, "Short end."]);
    }

    #[test]
    fn punctuation_only_lines_go() {
        let body = "A sentence long enough to be an article paragraph, with more than eight words in it.";
        let mut blocks = vec![p(body), p("___"), p("|"), p(body)];
        trim(&mut blocks, "");
        assert_eq!(blocks.len(), 2);
    }

    #[test]
    fn nothing_is_dropped_when_there_is_no_paragraph() {
        let mut blocks = vec![p("Short"), p("Nov. 20, 2019")];
        trim(&mut blocks, "");
        assert_eq!(blocks.len(), 2);
    }
}
