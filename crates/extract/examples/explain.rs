//! Shows how a page was extracted: the chosen containers, their scores, and the
//! text. `cargo run --release -p anno-extract --example explain -- page.html [url]`
//! (a `.gz` file is read as gzip when `gzip -dc` is available).

use anno_extract::{content, dom::Tag, parse};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: explain <page.html> [url]");
        return std::process::ExitCode::FAILURE;
    };
    let bytes = if path.ends_with(".gz") {
        match std::process::Command::new("gzip").args(["-dc", path]).output() {
            Ok(out) => out.stdout,
            Err(e) => {
                eprintln!("gzip: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    };
    let url = args.get(2).map(String::as_str).unwrap_or("https://example.com/");
    let decoded = anno_extract::decode::decode(&bytes, None);
    let dom = parse::parse(decoded.text);
    let analysis = content::analyse(&dom);
    let mut scored: Vec<(f32, u32)> =
        analysis.score.iter().enumerate().filter(|(_, s)| **s > 0.0).map(|(i, s)| (*s, i as u32)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let describe = |id: u32| {
        let class = dom.attr(id, "class").unwrap_or_default().chars().take(60).collect::<String>();
        let ident = dom.attr(id, "id").unwrap_or_default();
        format!(
            "<{} id={ident:?} class={class:?}> text={} links={:.2}",
            dom.name(id),
            analysis.text[id as usize],
            analysis.link_density(id)
        )
    };
    for (score, id) in scored.iter().take(8) {
        println!("{score:8.1}  #{id} {}", describe(*id));
    }
    // The largest subtrees pruned as never content.
    let mut pruned: Vec<(usize, u32)> = (1..dom.len() as u32)
        .filter(|id| analysis.removed[*id as usize] && dom.parent(*id).is_some_and(|p| !analysis.removed[p as usize]))
        .map(|id| (dom.text_content(id).split_whitespace().map(str::len).sum::<usize>(), id))
        .collect();
    pruned.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (text, id) in pruned.iter().take(5) {
        println!("pruned {text:6}  #{id} {}", describe(*id));
    }
    let roots = content::main_content(&dom, &analysis);
    println!("chosen: {:?}", roots.iter().map(|r| describe(*r)).collect::<Vec<_>>());
    let body = dom.find(anno_extract::dom::ROOT, Tag::Body);
    println!("body: {:?}", body.map(describe));
    let doc = anno_extract::extract(&bytes, url, None, &anno_extract::Options::default());
    println!("---\n{}", doc.text());
    std::process::ExitCode::SUCCESS
}
