//! The analyses a user sees in `POST /enrich`: sentiment, named entities,
//! Unicode and HTML cleaning, on the real server bound to 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use api_enrichment::{serve, Config, StartupError};
use backend_common::testing::InProcess;
use serde_json::{json, Value};

type Server = InProcess<StartupError>;

async fn start() -> Server {
    let config = Config {
        workers: 2,
        ..Config::default()
    };
    InProcess::start(|listener, shutdown| serve(listener, config, shutdown)).await
}

async fn enrich(server: &Server, text: &str) -> Value {
    let (status, doc) = server.post_json("/enrich", &json!({ "text": text })).await;
    assert!(status.is_success(), "{status}");
    doc
}

fn source_status(doc: &Value, name: &str) -> String {
    doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn sentiment_of_known_sentences() {
    let server = start().await;
    let happy = enrich(
        &server,
        "I love this wonderful city. The food was great and the people were kind.",
    )
    .await;
    assert_eq!(happy["sentiment"]["label"], "positive", "{happy}");
    assert!(happy["sentiment"]["score"].as_f64().unwrap() > 0.5);
    assert!(happy["sentiment"]["positive_words"].as_u64().unwrap() >= 3);

    let angry = enrich(
        &server,
        "The service was terrible and the staff were rude. I hate waiting, what an awful mess.",
    )
    .await;
    assert_eq!(angry["sentiment"]["label"], "negative", "{angry}");
    assert!(angry["sentiment"]["score"].as_f64().unwrap() < -0.5);

    let negated = enrich(&server, "The film was not good at all.").await;
    assert_eq!(negated["sentiment"]["label"], "negative", "{negated}");

    let flat = enrich(&server, "The train leaves at nine from platform two.").await;
    assert_eq!(flat["sentiment"]["label"], "neutral", "{flat}");

    // The lexicon is English: French text is not scored.
    let french = enrich(
        &server,
        "Le chat est sur la table et il dort dans la maison avec les enfants.",
    )
    .await;
    assert_eq!(french["language"], "fr");
    assert_eq!(french["sentiment"], Value::Null);
    assert_eq!(source_status(&french, "sentiment"), "skipped");
}

#[tokio::test]
async fn entities_of_known_sentences() {
    let server = start().await;
    let doc = enrich(
        &server,
        "Engineers from Microsoft met the United Nations in Geneva. Later they flew \
             to Tokyo, Japan, where Microsoft opened an office. Ada Lovelace would have liked it.",
    )
    .await;
    assert_eq!(source_status(&doc, "entities"), "ok");
    let entities: Vec<(String, String, u64)> = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["text"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let has = |text: &str, kind: &str, count: u64| {
        entities.contains(&(text.to_owned(), kind.to_owned(), count))
    };
    assert!(has("Microsoft", "organization", 2), "{entities:?}");
    assert!(has("United Nations", "organization", 1), "{entities:?}");
    assert!(has("Tokyo", "city", 1), "{entities:?}");
    assert!(has("Japan", "country", 1), "{entities:?}");
    assert!(has("Ada Lovelace", "person", 1), "{entities:?}");
    let tokyo = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "Tokyo")
        .unwrap();
    assert_eq!(tokyo["country"], "JP");
    // in order of first appearance
    assert_eq!(doc["entities"][0]["text"], "Microsoft");

    let none = enrich(&server, "nothing here names a place or a firm.").await;
    assert_eq!(none["entities"], json!([]));
}

#[tokio::test]
async fn unicode_nfc_and_stray_html_are_cleaned() {
    let server = start().await;
    // "Café" with a combining acute accent (NFD), and "naïve" likewise
    let doc = enrich(&server, "Cafe\u{301} for the nai\u{308}ve.").await;
    assert_eq!(doc["text"], "Caf\u{e9} for the na\u{ef}ve.");
    assert_eq!(doc["cleaning"]["unicode_normalized"], true);
    assert_eq!(doc["character_count"], 19);

    let doc = enrich(
        &server,
        "<div class=\"post\"><h2>Paris &amp; Berlin</h2><p>Tom&#8217;s trip was <b>lovely</b>.\
             <script>track()</script></p><!-- ad --><p>Second&nbsp;paragraph.</p></div>",
    )
    .await;
    assert_eq!(
        doc["text"],
        "Paris & Berlin\n\nTom\u{2019}s trip was lovely.\n\nSecond paragraph."
    );
    assert_eq!(doc["cleaning"]["html_removed"], true);
    assert_eq!(doc["cleaning"]["html_elements_removed"], 7);
    assert_eq!(doc["sentiment"]["label"], "positive");
    let cities: Vec<&str> = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(cities, ["Paris", "Berlin"]);

    // plain text with angle brackets and ampersands is left as it is
    let plain = enrich(&server, "If a<b, AT&T wins; 3 < 5 > 1.").await;
    assert_eq!(plain["text"], "If a<b, AT&T wins; 3 < 5 > 1.");
    assert_eq!(plain["cleaning"]["html_removed"], false);
}
