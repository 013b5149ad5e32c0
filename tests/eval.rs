//! `cav eval` and `cav train` on labelled scenario clips (tests/data/scenarios, see its README):
//! one clip of each class through the real models, the rules' verdicts, the baseline, and a head
//! trained, saved, loaded and used.

mod common;

use common::{cav, repo, CLASSES};
use serde_json::Value;

fn run(args: &[&str]) -> Vec<Value> {
    run_with(args, &[])
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let out = cav()
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .expect("cav");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cav {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn rules_classify_one_clip_of_each_class_and_a_trained_head_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenarios = repo().join("tests/data/scenarios");
    // The first clip of each class, listed from another folder: paths are relative to the CSV.
    let mut csv = String::from("file,class\n");
    for c in CLASSES {
        csv += &format!("{}/{c}_1.mp4,{c}\n", scenarios.display());
    }
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, csv).expect("labels");
    let cache = dir.path().join("features.json");
    let (labels_s, cache_s) = (labels.to_str().unwrap(), cache.to_str().unwrap());

    let reports = run(&[
        "eval",
        labels_s,
        "--classifier",
        "rules,original",
        "--json",
        "--cache",
        cache_s,
    ]);
    assert_eq!(reports.len(), 2);
    let rules = &reports[0];
    assert_eq!(rules["classifier"], "rules-v2");
    assert_eq!(rules["files"], 7);
    for v in rules["verdicts"].as_array().unwrap() {
        println!(
            "{} -> {} {:.2} {}",
            v["truth"], v["predicted"], v["confidence"], v["drivers"]
        );
    }
    // Every clip is right on this machine (see the README's evaluation); one miss is allowed so
    // that a model's rounding on another CPU does not fail the build, two are a regression.
    let correct = rules["correct"].as_u64().unwrap();
    assert!(correct >= 6, "rules-v2: {correct}/7 right: {rules}");
    // The confusion matrix adds up to the files, rows by true class.
    let matrix = rules["confusion"]["counts"].as_array().unwrap();
    let total: u64 = matrix
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 7);
    // The baseline says 70 % whatever it decides.
    let original = &reports[1];
    assert_eq!(original["classifier"], "original-rules");
    assert!(original["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| (v["confidence"].as_f64().unwrap() - 0.7).abs() < 1e-6));
    assert!(
        original["correct"].as_u64().unwrap() < correct,
        "the baseline should not match the rules: {original}"
    );

    // Train on the cached features (no new analysis), then evaluate with the head.
    let head = dir.path().join("head.safetensors");
    let train = run(&[
        "train",
        labels_s,
        "--cache",
        cache_s,
        "--out",
        head.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(train[0]["files"], 7);
    assert_eq!(train[0]["folds"], 7);
    // Seven separable examples: the head fits them all.
    assert_eq!(train[0]["training_accuracy"], 1.0);
    assert!(head.is_file());
    let with_head = run_with(
        &["eval", labels_s, "--json", "--cache", cache_s],
        &[
            ("CAV_CLASSIFIER__MODEL", "head"),
            ("CAV_CLASSIFIER__HEAD_PATH", head.to_str().unwrap()),
        ],
    );
    assert_eq!(with_head[0]["classifier"], "head-v1");
    assert_eq!(with_head[0]["correct"], 7, "{}", with_head[0]);
    // Its drivers name the features that pushed the decision.
    let drivers = with_head[0]["verdicts"][0]["drivers"].as_array().unwrap();
    assert!(!drivers.is_empty());

    // A head file that is not one is refused, naming the key.
    std::fs::write(&head, b"garbage").unwrap();
    let out = cav()
        .args(["eval", labels_s, "--cache", cache_s])
        .env("CAV_CLASSIFIER__MODEL", "head")
        .env("CAV_CLASSIFIER__HEAD_PATH", &head)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("classifier.head_path"), "{err}");
}
