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
    let cases: &[(&str, &[&str])] = &[
        (
            "run",
            &[
                "--home",
                "--genesis",
                "--peers",
                "--role",
                "--log-format",
                "--batch-size",
            ],
        ),
        (
            "devnet",
            &[
                "--dir",
                "--shards",
                "--validators-per-shard",
                "--base-port",
                "--fresh",
                "--bench-accounts",
                "--num-shards",
            ],
        ),
        (
            "init",
            &["--home", "--p2p-address", "--chain-id", "--force"],
        ),
    ];
    for (cmd, flags) in cases {
        let o = run(&[cmd, "--help"]);
        assert!(o.status.success());
        let h = String::from_utf8_lossy(&o.stdout);
        for flag in *flags {
            assert!(h.contains(flag), "{cmd} --help lacks {flag}: {h}");
        }
        assert!(!h.contains("--parent-pid"), "internal flag hidden");
    }
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

/// A fresh temporary directory for one test.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vision-node-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_a_home_and_prints_its_genesis_entry() {
    let home = temp_dir("init").join("val-a");
    let o = run(&[
        "init",
        "--home",
        home.to_str().unwrap(),
        "--p2p-address",
        "10.0.0.5:31000",
        "--batch-size",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let entry: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(entry["name"], "val-a");
    assert_eq!(entry["p2p_address"], "10.0.0.5:31000");
    assert_ne!(entry["consensus_key"], entry["network_key"]);
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("keys")), 0o700);
    assert_eq!(mode(&home.join("keys/consensus.key")), 0o600);
    assert_eq!(mode(&home.join("keys/network.key")), 0o600);
    assert_eq!(mode(&home.join("config.toml")), 0o600);
    assert!(home.join("data").is_dir());
    let toml = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(toml.contains("batch_size = 50"), "{toml}");
    assert!(
        !toml.contains("num_shards"),
        "only explicit values; genesis decides the rest: {toml}"
    );
    // `config` reads the file it wrote.
    let c = run(&["config", "--home", home.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(v["batch_size"], 50);
    // Keys are kept, config.toml is not overwritten without --force.
    fails_with(&["init", "--home", home.to_str().unwrap()], "--force");
    let again = run(&["init", "--home", home.to_str().unwrap(), "--force"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let entry2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(entry["consensus_key"], entry2["consensus_key"]);
    fails_with(
        &[
            "init",
            "--home",
            home.to_str().unwrap(),
            "--force",
            "--batch-size",
            "0",
        ],
        "--batch-size",
    );
    std::fs::remove_dir_all(home.parent().unwrap()).ok();
}

#[test]
fn devnet_generation_files_modes_and_genesis() {
    let dir = temp_dir("devnet-gen");
    let o = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args([
            "devnet",
            "--no-start",
            "--shards",
            "2",
            "--validators-per-shard",
            "4",
        ])
        .args([
            "--base-port",
            "41000",
            "--bench-accounts",
            "10",
            "--batch-size",
            "20",
        ])
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("v07") && out.contains("127.0.0.1:41007"),
        "{out}"
    );
    for f in ["devnet.json", "genesis.json", "peers.json", "accounts.json"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert_eq!(mode(&dir.join("accounts.json")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let genesis: vision_types::Genesis =
        serde_json::from_str(&std::fs::read_to_string(dir.join("genesis.json")).unwrap()).unwrap();
    genesis.validate().unwrap();
    assert_eq!(genesis.validators.len(), 8);
    assert_eq!(genesis.shard_config.num_shards, 2);
    assert_eq!(genesis.shard_config.batch_size, 20);
    assert_eq!(genesis.accounts.len(), 15);
    for name in ["alice", "bob", "carol", "dave", "eve"] {
        let a = genesis.accounts.iter().find(|a| a.id.as_str() == name);
        assert!(a.is_some(), "{name} in genesis");
    }
    assert_eq!(genesis.config_authority.as_str(), "alice");
    let accounts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("accounts.json")).unwrap()).unwrap();
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 15);
    let shards: std::collections::BTreeSet<u64> = accounts
        .iter()
        .filter(|a| a["kind"] == "dev")
        .map(|a| a["shard"].as_u64().unwrap())
        .collect();
    assert_eq!(shards.len(), 2, "dev accounts on both shards: {shards:?}");
    for a in accounts {
        let sk = vision_types::SecretKey::from_seed(
            hex::decode(a["secret_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            sk.public_key().to_string(),
            a["public_key"].as_str().unwrap()
        );
    }
    let peers: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("peers.json")).unwrap()).unwrap();
    // Eight validators and the API node (role "api", the port after the last validator's).
    assert_eq!(peers.as_array().unwrap().len(), 9);
    assert_eq!(peers[8]["role"], "api");
    assert_eq!(peers[8]["address"], "127.0.0.1:41008");
    assert_eq!(mode(&dir.join("nodes/api/keys/consensus.key")), 0o600);
    assert!(
        genesis
            .validators
            .iter()
            .all(|v| peers[8]["consensus_key"] != v.consensus_key.to_string()),
        "the API node's key is not a validator's"
    );
    for (i, v) in genesis.validators.iter().enumerate() {
        let home = dir.join("nodes").join(&v.name);
        assert_eq!(mode(&home.join("keys/consensus.key")), 0o600);
        assert_eq!(mode(&home.join("keys/network.key")), 0o600);
        assert_eq!(v.p2p_address, format!("127.0.0.1:{}", 41000 + i));
        assert_eq!(peers[i]["consensus_key"], v.consensus_key.to_string());
        let keys = run(&["keys", "show", "--json", "--home", home.to_str().unwrap()]);
        let k: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
        assert_eq!(k["consensus_key"], v.consensus_key.to_string());
        assert_eq!(k["network_key"], v.network_key.to_string());
    }

    // Every node derives the same spec, whatever the validator order.
    let spec = vision_node::network::network_spec(&genesis).unwrap();
    let mut reordered = genesis.clone();
    reordered.validators.reverse();
    let spec2 = vision_node::network::network_spec(&reordered).unwrap();
    assert_eq!(spec.shard_committees, spec2.shard_committees);
    assert_eq!(spec.beacon_committee, spec2.beacon_committee);
    assert_eq!(spec.shard_committees.len(), 2);
    assert!(spec.shard_committees.values().all(|c| c.len() == 4));
    assert_eq!(spec.beacon_committee.len(), 4);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("devnet.json")).unwrap()).unwrap();
    let beacon = manifest["validators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["beacon"] == true)
        .count();
    assert_eq!(beacon, 4);

    // Reuse checks: same flags fine, different ones refused with a hint.
    let reuse = run(&["devnet", "--no-start", "--dir", dir.to_str().unwrap()]);
    assert!(reuse.status.success(), "{}", stderr(&reuse));
    assert!(String::from_utf8_lossy(&reuse.stdout).contains("reusing"));
    fails_with(
        &[
            "devnet",
            "--no-start",
            "--shards",
            "3",
            "--dir",
            dir.to_str().unwrap(),
        ],
        "--fresh",
    );
    fails_with(
        &[
            "devnet",
            "--no-start",
            "--batch-size",
            "7",
            "--dir",
            dir.to_str().unwrap(),
        ],
        "--batch-size sets batch_size = 7",
    );

    // run refuses bad values naming their source, and overrides that contradict genesis.
    let home = dir.join("nodes/v00");
    let genesis_path = dir.join("genesis.json");
    let bad = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["run", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .env("VISION_BATCH_TIMEOUT_MS", "soon")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("VISION_BATCH_TIMEOUT_MS"),
        "{}",
        stderr(&bad)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["run", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .env("VISION_NUM_SHARDS", "3")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("VISION_NUM_SHARDS sets num_shards = 3"),
        "{}",
        stderr(&bad)
    );
    fails_with(
        &["run", "--home", dir.join("nodes/nope").to_str().unwrap()],
        "no such directory",
    );
    // One process per home: a held lock is refused with a clear message.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join("run.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    fails_with(
        &["run", "--home", home.to_str().unwrap()],
        "another vision-node",
    );
    drop(lock);

    // --fresh regenerates, and refuses a directory that is not a devnet.
    let fresh = run(&[
        "devnet",
        "--no-start",
        "--fresh",
        "--shards",
        "1",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    let g2: vision_types::Genesis =
        serde_json::from_str(&std::fs::read_to_string(dir.join("genesis.json")).unwrap()).unwrap();
    assert_eq!(g2.validators.len(), 4);
    let not_devnet = temp_dir("not-devnet");
    std::fs::create_dir_all(&not_devnet).unwrap();
    std::fs::write(not_devnet.join("precious.txt"), "x").unwrap();
    fails_with(
        &[
            "devnet",
            "--no-start",
            "--fresh",
            "--dir",
            not_devnet.to_str().unwrap(),
        ],
        "refusing to delete",
    );
    assert!(not_devnet.join("precious.txt").exists());
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&not_devnet).ok();
}

#[test]
fn bench_help_and_bad_input() {
    let o = run(&["bench", "--help"]);
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--scenario",
        "--duration-s",
        "--rate",
        "--json",
        "--report",
        "--target",
        "--dir",
        "--find-max",
        "--max-p99-ms",
        "smoke",
        "16-shards-batch-100",
    ] {
        assert!(h.contains(flag), "bench --help lacks {flag}: {h}");
    }
    fails_with(&["bench", "--scenario", "nope"], "expected all or one of");
    fails_with(
        &[
            "bench",
            "--scenario",
            "smoke",
            "--target",
            "http://127.0.0.1:9",
        ],
        "--target needs --dir",
    );
    fails_with(
        &["bench", "--scenario", "smoke", "--cross-ratio", "2"],
        "between 0 and 1",
    );
    fails_with(
        &["bench", "--scenario", "all", "--find-max"],
        "one scenario",
    );
}

/// Longest a smoke bench may take before the test kills it (startup, a few seconds of load,
/// drain and stop on a loaded 2-core machine); only a hang guard, nothing asserts speed.
const BENCH_SMOKE_TIMEOUT_S: u64 = 600;

#[test]
fn bench_smoke_measures_from_finality() {
    let dir = temp_dir("bench-smoke");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("smoke.json");
    let html = dir.join("smoke.html");
    let devnet = dir.join("devnet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["bench", "--scenario", "smoke", "--json"])
        .arg(&json)
        .arg("--report")
        .arg(&html)
        .arg("--dir")
        .arg(&devnet)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vision-node bench");
    // Drain the pipes while waiting (the progress line fills stderr).
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(BENCH_SMOKE_TIMEOUT_S);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() >= deadline {
            // SIGINT stops the bench's devnet too (same process group).
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench --scenario smoke did not finish within {BENCH_SMOKE_TIMEOUT_S} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let devnet_log = std::fs::read_to_string(dir.join("devnet-devnet.log")).unwrap_or_default();
    assert!(
        status.success(),
        "bench failed: {status}\nstdout:\n{out}\nstderr:\n{err}\ndevnet output:\n{devnet_log}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON file"))
            .expect("JSON");
    let r = &v["results"][0];
    assert_eq!(r["name"], serde_json::json!("smoke"), "{v}");
    assert!(r["submitted"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["completed"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["sustained_tps"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    for kind in ["latency_intra", "latency_cross"] {
        let l = &r[kind];
        assert!(l["count"].as_u64().unwrap_or(0) > 0, "{kind}: {r}");
        let (p50, p99, max) = (&l["p50_ms"], &l["p99_ms"], &l["max_ms"]);
        assert!(
            p50.as_u64() <= p99.as_u64() && p99.as_u64() <= max.as_u64(),
            "{kind}: {l}"
        );
    }
    assert!(
        r["cpu_s_by_role"]["validator"].as_f64().is_some()
            || r["cpu_s_by_role"]["validator+beacon"].as_f64().is_some(),
        "{r}"
    );
    assert!(
        r["peak_rss_validator_max_kib"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    assert!(
        v["ceiling"]["ceiling_tps"].as_f64().unwrap_or(0.0) > 0.0,
        "{v}"
    );
    assert!(out.contains("smoke"), "the table: {out}");
    let html = std::fs::read_to_string(&html).expect("the HTML report");
    assert!(html.contains("<svg") && !html.contains("<script"));
    std::fs::remove_dir_all(&dir).ok();
}
