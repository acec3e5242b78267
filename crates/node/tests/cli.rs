//! End-to-end tests of the `vision-node` binary.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(args)
        .output()
        .expect("run vision-node")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fails_with(args: &[&str], needle: &str) {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} should fail");
    let e = stderr(&o);
    assert!(
        e.contains(needle),
        "{args:?}: stderr {e:?} lacks {needle:?}"
    );
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vision-node-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn version() {
    let o = run(&["version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn plan_twenty_nodes_adaptive_json() {
    let o = run(&[
        "shards",
        "plan",
        "--nodes",
        "20",
        "--strategy",
        "adaptive",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["strategy"], "adaptive");
    let shards = v["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let mut avgs = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(s["id"], i as u64);
        assert_eq!(s["members"].as_array().unwrap().len(), 10);
        assert!(s["coordinator"].is_string());
        avgs.push(s["avg_reputation"].as_f64().unwrap());
    }
    assert!((avgs[0] - avgs[1]).abs() < 0.01, "{avgs:?}");
    assert_eq!(v["metrics"]["active_shards"], 2);
    assert_eq!(v["metrics"]["total_nodes"], 20);
    assert!(v["metrics"]["reputation_spread"].as_f64().unwrap() < 0.01);
    // Reproducible.
    let again = run(&["shards", "plan", "--nodes", "20", "--json"]);
    assert_eq!(
        again.stdout, o.stdout,
        "default strategy adaptive, default seed 42"
    );
}

#[test]
fn plan_table_and_strategies() {
    for s in ["hash", "adaptive", "workload", "hybrid"] {
        let o = run(&["shards", "plan", "--nodes", "35", "--strategy", s]);
        assert!(o.status.success(), "{s}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("strategy: {s}")), "{out}");
        assert!(out.contains("coordinator"), "{out}");
    }
}

#[test]
fn plan_from_file() {
    let f = temp_file(
        "nodes.json",
        r#"[{"id":"a","reputation":0.9,"capabilities":["transfer"]},
            {"id":"b","reputation":0.5},{"id":"c","reputation":0.7,"capabilities":[]}]"#,
    );
    let o = run(&[
        "shards",
        "plan",
        "--nodes-file",
        f.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shards"][0]["coordinator"], "a");
    assert_eq!(v["shards"][0]["avg_reputation"], 0.7);
}

#[test]
fn bad_input_fails_clearly() {
    fails_with(&["shards", "plan", "--nodes", "0"], "--nodes 0");
    fails_with(&["shards", "plan", "--nodes", "2"], "between 3 and 300");
    fails_with(
        &["shards", "plan", "--nodes", "20", "--strategy", "random"],
        "hash, adaptive, workload, hybrid",
    );
    fails_with(&["shards", "plan"], "--nodes");
    let f = temp_file("ok.json", r#"[{"id":"a","reputation":0.9}]"#);
    fails_with(
        &[
            "shards",
            "plan",
            "--nodes",
            "5",
            "--nodes-file",
            f.to_str().unwrap(),
        ],
        "cannot be used with",
    );
    fails_with(
        &["shards", "plan", "--nodes-file", "/nonexistent/nodes.json"],
        "cannot read nodes file",
    );
    let bad = temp_file("bad.json", "{ not json");
    fails_with(
        &["shards", "plan", "--nodes-file", bad.to_str().unwrap()],
        "malformed nodes file",
    );
    let rep = temp_file(
        "rep.json",
        r#"[{"id":"a","reputation":1.5},{"id":"b","reputation":0.5},{"id":"c","reputation":0.5}]"#,
    );
    fails_with(
        &["shards", "plan", "--nodes-file", rep.to_str().unwrap()],
        "[0, 1]",
    );
    let dup = temp_file(
        "dup.json",
        r#"[{"id":"a","reputation":1},{"id":"a","reputation":0.5},{"id":"c","reputation":0.5}]"#,
    );
    fails_with(
        &["shards", "plan", "--nodes-file", dup.to_str().unwrap()],
        "duplicate node id",
    );
    let few = temp_file("few.json", r#"[{"id":"a","reputation":1}]"#);
    fails_with(
        &["shards", "plan", "--nodes-file", few.to_str().unwrap()],
        "at least 3",
    );
}

#[test]
fn help_explains_every_flag() {
    let o = run(&["shards", "plan", "--help"]);
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in ["--nodes ", "--nodes-file", "--strategy", "--seed", "--json"] {
        assert!(h.contains(flag), "help lacks {flag}: {h}");
    }
    assert!(
        h.contains("[default: adaptive]") && h.contains("[default: 42]"),
        "{h}"
    );
}

#[test]
fn config_shows_defaults_and_precedence() {
    let dir = std::env::temp_dir().join(format!("vision-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[shard]\nnum_shards = 6\nbatch_size = 50\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["config", "--home"])
        .arg(&dir)
        .args(["--batch-timeout-ms", "700"])
        .env("VISION_BATCH_SIZE", "70")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["num_shards"], 6);
    assert_eq!(v["batch_size"], 70);
    assert_eq!(v["batch_timeout_ms"], 700);
    assert_eq!(v["crosslink_frequency"], 10);
    let bad = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["config"])
        .env("VISION_NUM_SHARDS", "zero")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("VISION_NUM_SHARDS"));
    std::fs::remove_dir_all(&dir).ok();
}
