//! The real `api-generation` binary: `train CORPUS -o MODEL`, then serving
//! that model from `GENERATION_MODEL_PATH` on a free loopback port; a bad
//! model file stops the start-up with an error naming it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use backend_common::testing::Service;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_api-generation");

/// A corpus with words that Aesop's fables never use.
const CORPUS: &str = "The robot compiled the kernel. The kernel booted the robot.\n\n\
The compiler optimised the kernel and the robot deployed the server.\n\n\
The server answered the robot, and the robot rebooted the server.";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(env: &[(&str, &str)]) -> Service {
    Service::start(BIN, &[&[("WORKER_PROCESSES", "2")], env].concat()).await
}

fn train(corpus: &Path, model: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("train")
        .arg(corpus)
        .arg("-o")
        .arg(model)
        .args(extra)
        .output()
        .unwrap()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test]
async fn trained_model_file_is_served_and_differs_from_the_default() {
    let dir = TempDir::new("api-generation-train");
    let corpus = dir.0.join("robots.txt");
    std::fs::write(&corpus, CORPUS).unwrap();
    let model = dir.0.join("robots.model");
    let out = train(&corpus, &model, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("model trigram-robots"), "{stdout}");
    assert!(std::fs::metadata(&model).unwrap().len() > 0);

    let custom = start(&[("GENERATION_MODEL_PATH", model.to_str().unwrap())]).await;
    let default = start(&[]).await;
    let request = json!({"prompt": "The robot", "max_tokens": 40, "seed": 11});
    let from_file = custom.post_ok("/generate", &request).await;
    let from_default = default.post_ok("/generate", &request).await;

    assert_eq!(from_file["model"], "trigram-robots");
    assert_eq!(from_default["model"], "trigram-aesop");
    assert_eq!(from_file["tokens"], 40);
    let vocabulary = words(CORPUS);
    let generated = words(from_file["text"].as_str().unwrap());
    assert!(generated.len() >= 10, "{from_file}");
    for w in &generated {
        assert!(
            vocabulary.contains(w),
            "{w:?} is not in the corpus: {from_file}"
        );
    }
    assert_ne!(from_file["text"], from_default["text"]);
    let ready = custom.get_json("/ready").await;
    assert_eq!(ready["model"], "trigram-robots");
    assert_eq!(ready["workers"], 2);
}

#[tokio::test]
async fn train_names_the_model_and_refuses_bad_input() {
    let dir = TempDir::new("api-generation-train-errors");
    let corpus = dir.0.join("c.txt");
    std::fs::write(&corpus, CORPUS).unwrap();
    let model = dir.0.join("named.model");
    let out = train(&corpus, &model, &["--name", "robots-v2"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("model robots-v2"));

    let missing = dir.0.join("missing.txt");
    let out = train(&missing, &dir.0.join("x.model"), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");

    let empty = dir.0.join("empty.txt");
    std::fs::write(&empty, "  \n\n  ").unwrap();
    let out = train(&empty, &dir.0.join("y.model"), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no words"));
}

#[test]
fn bad_or_missing_model_file_stops_the_start_naming_the_path() {
    let dir = TempDir::new("api-generation-bad-model");
    let not_a_model = dir.0.join("corpus-not-model.txt");
    std::fs::write(&not_a_model, CORPUS).unwrap();
    let missing = dir.0.join("missing.model");
    for path in [&not_a_model, &missing] {
        let out = Command::new(BIN)
            .env("PORT", "0")
            .env("GENERATION_MODEL_PATH", path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with {}", path.display());
        let logs = String::from_utf8_lossy(&out.stdout);
        assert!(
            logs.contains(&format!("GENERATION_MODEL_PATH={}", path.display())),
            "{logs}"
        );
    }
}
