//! Articles in Russian, Korean and Japanese, in UTF-8 and in the legacy
//! encodings their sites still serve, declared in the header, in the page, or
//! not at all: the text comes out intact, character for character.

use crate::{assert_sane, extract_as};
use encoding_rs::Encoding;

struct Article {
    lang: &'static str,
    site: &'static str,
    headline: &'static str,
    /// The body in reading order: `## ` marks a subheading.
    body: &'static [&'static str],
    /// Navigation, related links and the footer: never the article.
    chrome: [&'static str; 4],
}

const RUSSIAN: Article = Article {
    lang: "ru",
    site: "Городские новости",
    headline: "В Твери после ремонта открылась старейшая библиотека города",
    body: &[
        "В субботу в Твери после двухлетнего ремонта вновь открылась центральная городская библиотека имени Горького. На церемонию пришли несколько сотен жителей, а первые читатели выстроились в очередь ещё до девяти утра.",
        "Здание XIX века получило новую крышу, лифт и просторный читальный зал на втором этаже. Реставраторы сохранили чугунную лестницу и лепнину, которую, по словам директора, «собирали буквально по кусочкам».",
        "## Что изменилось для читателей",
        "Теперь библиотека работает без выходных, с десяти утра до девяти вечера. В фонде появилось более пятнадцати тысяч новых книг, в том числе детская литература и аудиокниги; электронный каталог доступен с любого телефона.",
        "«Мы хотим, чтобы сюда приходили не только за книгами, но и просто поговорить», — сказала директор библиотеки Ольга Семёнова. Уже в декабре здесь начнутся бесплатные лекции по истории края и занятия для пенсионеров.",
    ],
    chrome: [
        "Главная",
        "Политика",
        "Читайте также: погода на выходные",
        "© 2024 Городские новости. Все права защищены.",
    ],
};

const KOREAN: Article = Article {
    lang: "ko",
    site: "한빛일보",
    headline: "서울 지하철 9호선, 내년부터 출퇴근 시간 열차 증편",
    body: &[
        "서울시는 내년 3월부터 지하철 9호선의 출퇴근 시간대 열차 운행을 하루 24회 늘린다고 17일 밝혔다. 급행열차 혼잡도가 150%를 넘는 날이 잦아지자 시민들의 불편을 줄이기 위한 조치다.",
        "시는 이를 위해 6량 편성 열차 8대를 새로 들여오고, 신호 설비를 개선해 배차 간격을 최대 1분가량 줄일 계획이다. 사업비는 약 1,200억 원으로, 국비와 시비가 절반씩 투입된다.",
        "## 시민 반응",
        "매일 김포공항역에서 신논현역까지 출근한다는 직장인 이모(34) 씨는 \"아침마다 열차를 두세 대씩 보내야 했는데, 이제 조금은 숨통이 트일 것 같다\"고 말했다.",
        "전문가들은 증편만으로는 한계가 있다며 버스 노선 조정과 유연근무제 확대를 함께 추진해야 한다고 지적했다.",
    ],
    chrome: ["홈", "정치", "많이 본 뉴스: 주말 날씨", "ⓒ 한빛일보. 무단 전재 및 재배포 금지."],
};

const JAPANESE: Article = Article {
    lang: "ja",
    site: "みなと新聞",
    headline: "京都の老舗和菓子店、創業三百年を記念して新作を発表",
    body: &[
        "京都市東山区の老舗和菓子店「松風堂」は十七日、創業三百年を記念した新作の生菓子を発表した。地元産の抹茶と白あんを使い、春の桜をかたどった上品な一品に仕上げたという。",
        "店主の山本正和さん（六十二）は「代々受け継いできた技を守りながら、若い人にも手に取ってもらえる菓子を作りたかった」と話す。試作は一年以上に及び、百種類を超える配合を試したそうだ。",
        "## 限定販売は来月から",
        "新作は四月一日から一か月間、本店と京都駅前の直営店で一日三百個限定で販売される。価格は一個四百五十円（税込み）で、予約は受け付けない。",
        "同店では記念行事として、職人による実演や茶会も予定している。詳しい日程は店頭やウェブサイトで順次案内するとしている。",
    ],
    chrome: ["トップ", "経済", "関連記事：桜の開花予想", "Copyright © みなと新聞社 All rights reserved."],
};

impl Article {
    /// A news page around the article: navigation, sidebar, footer, scripts.
    fn page(&self, meta_charset: Option<&str>) -> String {
        let [nav_a, nav_b, related, footer] = self.chrome;
        let mut body = String::new();
        for part in self.body {
            match part.strip_prefix("## ") {
                Some(heading) => body.push_str(&format!("<h2>{heading}</h2>\n")),
                None => body.push_str(&format!("<p>{}</p>\n", escape(part))),
            }
        }
        let meta = meta_charset.map(|c| format!("<meta charset=\"{c}\">")).unwrap_or_default();
        format!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\"><head>{meta}<title>{headline} | {site}</title>\
             <meta property=\"og:site_name\" content=\"{site}\"><script>window.dataLayer = [];</script></head>\n\
             <body><header class=\"site-header\"><a href=\"/\">{site}</a><nav class=\"menu\"><ul>\
             <li><a href=\"/\">{nav_a}</a></li><li><a href=\"/politics\">{nav_b}</a></li></ul></nav></header>\n\
             <main><article class=\"article-body\"><h1>{headline}</h1>\n{body}</article>\n\
             <aside class=\"related\"><a href=\"/related\">{related}</a></aside></main>\n\
             <footer class=\"site-footer\"><p>{footer}</p></footer></body></html>",
            lang = self.lang,
            headline = self.headline,
            site = self.site,
        )
    }

    /// The article's text as extraction renders it: one block per paragraph
    /// or subheading, a blank line between.
    fn text(&self) -> String {
        self.body.iter().map(|p| p.strip_prefix("## ").unwrap_or(p)).collect::<Vec<_>>().join("\n\n")
    }

    fn check(&self, bytes: &[u8], content_type: Option<&str>, how: &str) {
        let out = extract_as(bytes, content_type, true);
        assert_sane(bytes, &out);
        assert_eq!(out.text, self.text(), "{} {how}", self.lang);
        for part in self.body {
            assert!(out.markdown.contains(part), "{} {how}: markdown keeps {part:?}", self.lang);
        }
        for chrome in self.chrome {
            assert!(!out.text.contains(chrome), "{} {how}: {chrome:?} is not the article", self.lang);
        }
        let title = out.doc.metadata.title.as_deref().unwrap_or_default();
        assert!(title.starts_with(self.headline), "{} {how}: title {title:?}", self.lang);
        assert_eq!(out.doc.metadata.lang.as_deref(), Some(self.lang));
        assert_eq!(out.doc.metadata.site_name.as_deref(), Some(self.site));
        // The whole page keeps the article too, and adds the chrome.
        let whole = extract_as(bytes, content_type, false);
        assert!(whole.text.contains(&self.text()), "{} {how}, whole page", self.lang);
    }

    /// UTF-8 as is, declared or not, and `encoding` declared in the header,
    /// in the page, and sniffed.
    fn check_all(&self, encoding: &'static Encoding) {
        let page = self.page(None);
        self.check(page.as_bytes(), None, "UTF-8, undeclared");
        self.check(page.as_bytes(), Some("text/html; charset=UTF-8"), "UTF-8 in the header");
        self.check(self.page(Some("utf-8")).as_bytes(), None, "UTF-8 in the page");
        let name = encoding.name();
        // What the encoding cannot hold (`©` in Shift_JIS) is written as a
        // numeric character reference, as a site would.
        let legacy = |page: &str| encoding.encode(page).0.into_owned();
        self.check(&legacy(&page), Some(&format!("text/html; charset={name}")), &format!("{name} in the header"));
        self.check(&legacy(&self.page(Some(name))), None, &format!("{name} in the page"));
        self.check(&legacy(&page), None, &format!("{name}, sniffed"));
    }
}

/// Text as HTML: `&`, `<` and `"` escaped, so the page holds what the article says.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
}

#[test]
fn a_russian_article_comes_out_intact() {
    RUSSIAN.check_all(encoding_rs::WINDOWS_1251);
    let page = RUSSIAN.page(None);
    let (koi8, _, _) = encoding_rs::KOI8_R.encode(&page);
    RUSSIAN.check(&koi8, Some("text/html; charset=koi8-r"), "KOI8-R in the header");
}

#[test]
fn a_korean_article_comes_out_intact() {
    KOREAN.check_all(encoding_rs::EUC_KR);
}

#[test]
fn a_japanese_article_comes_out_intact() {
    JAPANESE.check_all(encoding_rs::SHIFT_JIS);
    let page = JAPANESE.page(None);
    for encoding in [encoding_rs::EUC_JP, encoding_rs::ISO_2022_JP] {
        let (bytes, _, _) = encoding.encode(&page);
        JAPANESE.check(&bytes, Some(&format!("text/html; charset={}", encoding.name())), encoding.name());
    }
}

#[test]
fn all_three_in_one_page() {
    let body: String = [&RUSSIAN, &KOREAN, &JAPANESE]
        .iter()
        .flat_map(|a| a.body.iter().filter(|p| !p.starts_with("## ")))
        .map(|p| format!("<p>{}</p>", escape(p)))
        .collect();
    let page = format!("<html><body><article>{body}</article></body></html>");
    let out = extract_as(page.as_bytes(), None, true);
    for article in [&RUSSIAN, &KOREAN, &JAPANESE] {
        for part in article.body.iter().filter(|p| !p.starts_with("## ")) {
            assert!(out.text.contains(part), "{part}");
        }
    }
}
