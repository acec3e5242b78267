//! End-to-end test of `vision-node devnet`: real OS processes over authenticated TCP on
//! 127.0.0.1, a temporary directory and free ports. Timeouts only keep a broken run from
//! hanging; nothing here asserts speed.

use std::{
    collections::BTreeMap,
    fs,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use vision_node::status::{NodeStatus, read_status};

#[path = "../../api/tests/browser/cdp.rs"]
mod cdp;
#[path = "../../api/tests/browser/chromium.rs"]
#[allow(dead_code)]
mod chromium;

/// A minimal HTTP/1.1 client (one request per connection) for the API node.
mod http {
    use std::{
        io::{Read, Write},
        net::TcpStream,
        time::Duration,
    };

    /// Sends `method path` with an optional JSON body; returns the status and the JSON body.
    pub fn call(
        port: u16,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> std::io::Result<(u16, serde_json::Value)> {
        call_raw(
            port,
            method,
            path,
            &body.map(|b| b.to_string()).unwrap_or_default(),
        )
    }

    /// Sends `method path` with `body` as is; returns the status and the JSON body (`Null`
    /// when it is not JSON).
    pub fn call_raw(
        port: u16,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, serde_json::Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let json = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            serde_json::from_str(&dechunk(rest)).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::from_str(rest).unwrap_or(serde_json::Value::Null)
        };
        Ok((status, json))
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < n {
                break;
            }
            out.push_str(&rest[..n]);
            s = rest[n..].trim_start_matches("\r\n");
        }
        out
    }

    /// `GET path` → JSON (`Null` when the node does not answer yet).
    pub fn get(port: u16, path: &str) -> serde_json::Value {
        call(port, "GET", path, None).map_or(serde_json::Value::Null, |(_, j)| j)
    }
}

/// Longest wait for the devnet to come up and finalize, in seconds (a loaded 2-core machine).
const STARTUP_TIMEOUT_S: u64 = 300;
/// Longest wait for a killed validator to be restarted and catch up, in seconds.
const CATCH_UP_TIMEOUT_S: u64 = 300;
/// Longest wait for the devnet to stop after SIGINT, in seconds.
const STOP_TIMEOUT_S: u64 = 90;
/// Height every validator must pass before the crash.
const WARM_HEIGHT: u64 = 5;
/// Blocks a restarted validator must finalize past the height its shard had at the crash.
const CATCH_UP_BLOCKS: u64 = 3;

const SHARDS: usize = 2;
const PER_SHARD: usize = 4;
const VALIDATORS: usize = SHARDS * PER_SHARD;

fn pid_of(raw: u32) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(raw as i32).expect("non-zero pid")
}

fn alive(raw: u32) -> bool {
    rustix::process::test_kill_process(pid_of(raw)).is_ok()
}

/// A base port with `n` free ports after it on 127.0.0.1.
fn free_base_port(n: u16) -> u16 {
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 16;
    let mut base = start;
    loop {
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
        base = if base > 60_000 { 20_000 } else { base + n + 7 };
        assert_ne!(base, start, "no free ports");
    }
}

/// The devnet process; killed (with its validators) if the test fails half-way.
struct Devnet {
    child: Child,
    dir: PathBuf,
    out: PathBuf,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Validators notice their supervisor is gone within a second; make sure anyway.
        for i in 0..VALIDATORS {
            if let Ok(s) = read_status(&self.home(i))
                && s.state == "running"
                && alive(s.pid)
            {
                let _ = rustix::process::kill_process(pid_of(s.pid), rustix::process::Signal::KILL);
            }
        }
    }
}

impl Devnet {
    fn home(&self, i: usize) -> PathBuf {
        self.dir.join("nodes").join(format!("v{i:02}"))
    }
    fn statuses(&self) -> Vec<Option<NodeStatus>> {
        (0..VALIDATORS)
            .map(|i| read_status(&self.home(i)).ok())
            .collect()
    }
    fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
    /// The end of every log, for failure messages.
    fn logs(&self) -> String {
        let mut s = format!("--- devnet output ---\n{}\n", self.output());
        for i in 0..VALIDATORS {
            let log = fs::read_to_string(self.dir.join("logs").join(format!("v{i:02}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            s += &format!("--- v{i:02} ---\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
    fn wait_until(&self, what: &str, timeout_s: u64, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        while Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "timed out after {timeout_s}s waiting for {what}\nstatuses: {:#?}\n{}",
            self.statuses()
                .iter()
                .map(|s| s.as_ref().map(|s| (
                    s.name.clone(),
                    s.pid,
                    s.shard_height,
                    s.beacon_height
                )))
                .collect::<Vec<_>>(),
            self.logs()
        );
    }
}

/// Replicas of a shard agree on the hash and state root at every height they both list.
fn assert_replicas_agree(statuses: &[NodeStatus]) {
    let mut canon: BTreeMap<(Option<u32>, u64), (String, String, String)> = BTreeMap::new();
    for s in statuses {
        for b in &s.recent {
            let entry = canon.entry((s.shard, b.height)).or_insert((
                b.hash.to_string(),
                b.state_root.to_string(),
                s.name.clone(),
            ));
            assert_eq!(
                (&entry.0, &entry.1),
                (&b.hash.to_string(), &b.state_root.to_string()),
                "shard {:?} height {}: {} and {} differ",
                s.shard,
                b.height,
                entry.2,
                s.name
            );
        }
    }
}

/// Transfers submitted as load around a crash.
const LOAD_TXS: usize = 20;
/// Amount of each load transfer.
const LOAD_AMOUNT: u128 = 7;

/// Transfers in flight: their ids and the balances they must produce.
struct Load {
    ids: Vec<String>,
    from: (String, u128),
    to: (String, u128),
}

/// Two dev accounts on different shards (from `accounts.json`).
fn dev_pair(net: &Devnet) -> (String, String) {
    let accounts: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(net.dir.join("accounts.json")).unwrap()).unwrap();
    let devs: Vec<(String, u64)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "dev")
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["shard"].as_u64().unwrap(),
            )
        })
        .collect();
    let to = devs
        .iter()
        .find(|d| d.1 != devs[0].1)
        .expect("dev accounts on two shards");
    (devs[0].0.clone(), to.0.clone())
}

fn balance(port: u16, id: &str) -> u128 {
    let a = http::get(port, &format!("/account/{id}"));
    a["account"]["balance"]
        .as_str()
        .unwrap_or_else(|| panic!("{id}: {a}"))
        .parse()
        .unwrap()
}

/// Submits a transfer of `amount` from dev account `from` to `to`, signed by the devnet API
/// node; returns its id.
fn dev_transfer(port: u16, from: &str, to: &str, amount: u128) -> String {
    let body = serde_json::json!({
        "signer": from,
        "action": {"type": "transfer", "to": to, "amount": amount.to_string()},
    });
    let (code, reply) = http::call(port, "POST", "/tx", Some(&body)).unwrap();
    assert_eq!(code, 200, "{reply}");
    reply["tx_id"].as_str().unwrap().to_string()
}

/// Submits `n` cross-shard transfers (signed by the devnet API node) from one dev account to
/// another.
fn submit_load(net: &Devnet, port: u16, n: usize) -> Load {
    let (from, to) = dev_pair(net);
    let (from_before, to_before) = (balance(port, &from), balance(port, &to));
    let ids = (0..n)
        .map(|_| dev_transfer(port, &from, &to, LOAD_AMOUNT))
        .collect();
    let n = n as u128;
    Load {
        ids,
        from: (from, from_before - n * (LOAD_AMOUNT + 10)),
        to: (to, to_before + n * LOAD_AMOUNT),
    }
}

impl Load {
    /// Waits until every transfer completed, then checks both balances exactly.
    fn check(&self, net: &Devnet, port: u16) {
        net.wait_until(
            "every load transfer to complete",
            CATCH_UP_TIMEOUT_S,
            |_| {
                self.ids
                    .iter()
                    .all(|id| http::get(port, &format!("/tx/{id}"))["status"] == "completed")
            },
        );
        assert_eq!(
            balance(port, &self.from.0),
            self.from.1,
            "{} after the load",
            self.from.0
        );
        assert_eq!(
            balance(port, &self.to.0),
            self.to.1,
            "{} after the load",
            self.to.0
        );
    }
}

/// What a completed transfer left: the balances it produced, by account.
struct Transfer {
    /// The transfer's transaction id.
    tx_id: String,
    balances: Vec<(String, String)>,
}

/// A cross-shard transfer between two dev accounts, signed by the devnet API node: submitted
/// over HTTP, followed to `completed`, and checked in both balances.
fn cross_shard_transfer(net: &Devnet, port: u16) -> Transfer {
    let (from, to) = dev_pair(net);
    let balance = |id: &str| balance(port, id);
    let (from_before, to_before) = (balance(&from), balance(&to));
    let id = dev_transfer(port, &from, &to, 12345);
    let mut seen = Vec::new();
    net.wait_until(
        "the cross-shard transfer to complete",
        CATCH_UP_TIMEOUT_S,
        |_| {
            let st = http::get(port, &format!("/tx/{id}"));
            let status = st["status"].as_str().unwrap_or("").to_string();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            assert_ne!(status, "failed", "{st}");
            status == "completed"
        },
    );
    let (from_after, to_after) = (balance(&from), balance(&to));
    assert_eq!(to_after, to_before + 12345, "lifecycle seen: {seen:?}");
    assert_eq!(
        from_after,
        from_before - 12345 - 10,
        "amount plus the dev fee"
    );
    Transfer {
        tx_id: id,
        balances: vec![(from, from_after.to_string()), (to, to_after.to_string())],
    }
}

/// Each validator serves its own shard's HTTP API on `api_port + 1 + i`: it answers for its
/// shard like the API node, refuses other shards clearly, and a transaction signed by its
/// client and submitted to it is finalized.
fn validator_api(net: &Devnet, api_port: u16) {
    let accounts: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(net.dir.join("accounts.json")).unwrap()).unwrap();
    let accounts = accounts.as_array().unwrap();
    // The signer: a bench account nothing else in this test uses; the validator: one of its
    // shard's.
    let signer = accounts.iter().find(|a| a["kind"] == "bench").unwrap();
    let shard = signer["shard"].as_u64().unwrap();
    let signer_id = signer["id"].as_str().unwrap().to_string();
    let other = accounts
        .iter()
        .find(|a| a["kind"] == "dev" && a["shard"].as_u64() != Some(shard))
        .expect("a dev account on the other shard")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let i = net
        .statuses()
        .iter()
        .position(|s| s.as_ref().unwrap().shard == Some(shard as u32))
        .unwrap();
    let port = api_port + 1 + i as u16;

    // The API node's process list names every process's HTTP port.
    let st = http::get(api_port, "/status");
    for p in st["processes"].as_array().expect("processes") {
        let want = match p["name"].as_str().unwrap() {
            "api" => api_port,
            v => api_port + 1 + v[1..].parse::<u16>().unwrap(),
        };
        assert_eq!(p["api_port"].as_u64(), Some(u64::from(want)), "{st}");
    }

    let (code, health) = http::call(port, "GET", "/health", None).unwrap();
    assert_eq!(code, 200, "{health}");
    let st = http::get(port, "/status");
    assert_eq!(st["role"], "validator", "{st}");
    let heads = st["shards"].as_array().expect("shards");
    assert_eq!(heads.len(), 1, "{st}");
    assert_eq!(heads[0]["shard_id"].as_u64(), Some(shard), "{st}");

    // Its shard's accounts: the same as on the API node.
    let before = balance(api_port, &signer_id);
    assert_eq!(balance(port, &signer_id), before);
    let other_before = balance(api_port, &other);

    // Another shard, or every shard: 404 shard_not_served, naming its shard and the API node.
    for path in [
        format!("/account/{other}"),
        format!("/shard/batch/status/{}", 1 - shard),
        "/shard/dashboard".to_string(),
        "/supply".to_string(),
    ] {
        let (code, e) = http::call(port, "GET", &path, None).unwrap();
        assert_eq!(code, 404, "{path}: {e}");
        assert_eq!(e["error"]["code"], "shard_not_served", "{path}: {e}");
        let msg = e["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(&format!("serves shard {shard} only")) && msg.contains("API node"),
            "{path}: {e}"
        );
    }
    // No dev signing on a validator: the normal 401 that says how to sign.
    let (code, e) = http::call(
        port,
        "POST",
        "/tx",
        Some(&serde_json::json!({"signer": "alice",
            "action": {"type": "transfer", "to": "bob", "amount": "1"}})),
    )
    .unwrap();
    assert_eq!(code, 401, "{e}");
    assert_eq!(e["error"]["code"], "dev_signing_unavailable", "{e}");

    // A transfer signed by the client, submitted to the validator, is finalized.
    let seed: [u8; 32] = hex::decode(signer["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = vision_types::SecretKey::from_seed(seed);
    let nonce = http::get(port, &format!("/account/{signer_id}"))["account"]["nonce"]
        .as_u64()
        .unwrap();
    let amount = 4321u128;
    let tx = vision_types::Transaction {
        chain_id: vision_types::ChainId::new(st["chain_id"].as_str().unwrap()).unwrap(),
        signer: vision_types::AccountId::new(signer_id.clone()).unwrap(),
        nonce,
        fee: vision_types::Amount(10),
        action: vision_types::Action::Transfer {
            to: vision_types::AccountId::new(other.clone()).unwrap(),
            amount: vision_types::Amount(amount),
            priority: 0,
        },
    }
    .sign(&key);
    let (code, reply) = http::call(
        port,
        "POST",
        "/tx",
        Some(&serde_json::to_value(&tx).unwrap()),
    )
    .unwrap();
    assert_eq!(code, 200, "{reply}");
    assert_eq!(reply["shard_id"].as_u64(), Some(shard), "{reply}");
    let id = reply["tx_id"].as_str().unwrap().to_string();
    // The validator follows it while its shard holds it; the API node to the destination.
    net.wait_until(
        "the transfer submitted to a validator to complete",
        CATCH_UP_TIMEOUT_S,
        |_| {
            let at_validator = http::get(port, &format!("/tx/{id}"));
            assert_ne!(at_validator["status"], "failed", "{at_validator}");
            at_validator["status"] != "pending"
                && http::get(api_port, &format!("/tx/{id}"))["status"] == "completed"
        },
    );
    let after = before - amount - 10;
    assert_eq!(balance(api_port, &signer_id), after);
    assert_eq!(balance(api_port, &other), other_before + amount);
    net.wait_until("the validator to show the new balance", 60, |_| {
        balance(port, &signer_id) == after
    });
}

#[test]
fn devnet_finalizes_survives_kill_9_and_stops_cleanly() {
    let root = std::env::temp_dir().join(format!("vision-node-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let dir = root.join("devnet");
    let out = root.join("devnet-output.log");
    // Validators, the API node's p2p port, its HTTP port, then the validators' HTTP ports.
    let base_port = free_base_port(2 * VALIDATORS as u16 + 2);
    let api_port = base_port + VALIDATORS as u16 + 1;
    let out_file = fs::File::create(&out).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vision-node"))
        .args(["devnet", "--shards", "2", "--validators-per-shard", "4"])
        .args([
            "--bench-accounts",
            "4",
            "--base-port",
            &base_port.to_string(),
            "--api-port",
            &api_port.to_string(),
        ])
        .arg("--dir")
        .arg(&dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file)
        .spawn()
        .unwrap();
    let net = Devnet {
        child,
        dir: dir.clone(),
        out,
    };

    // 1. Every validator finalizes past WARM_HEIGHT.
    net.wait_until("every validator to finalize", STARTUP_TIMEOUT_S, |n| {
        n.statuses()
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.shard_height >= WARM_HEIGHT))
    });
    let before: Vec<NodeStatus> = net.statuses().into_iter().map(Option::unwrap).collect();
    assert_replicas_agree(&before);
    let mut pids: Vec<u32> = before.iter().map(|s| s.pid).collect();
    for s in &before {
        assert_eq!(s.role, "validator");
        assert!(s.shard.is_some());
    }
    assert_eq!(before.iter().filter(|s| s.beacon_member).count(), 4);

    // 1b. The API node follows every shard and the beacon and serves the HTTP API.
    net.wait_until(
        "the API node to follow every shard",
        STARTUP_TIMEOUT_S,
        |_| {
            let st = http::get(api_port, "/status");
            st["beacon_height"].as_u64() > Some(0)
                && st["shards"].as_array().is_some_and(|a| {
                    a.len() == SHARDS && a.iter().all(|s| s["height"].as_u64() >= Some(WARM_HEIGHT))
                })
        },
    );
    // GET /status lists every supervised process with its height and health.
    net.wait_until(
        "every process to report healthy in GET /status",
        STARTUP_TIMEOUT_S,
        |_| {
            let st = http::get(api_port, "/status");
            st["processes"].as_array().is_some_and(|p| {
                p.len() == VALIDATORS + 1
                    && p.iter()
                        .all(|p| p["health"] == "ok" && p["pid"].as_u64().is_some())
                    && p.iter().filter(|p| p["role"] == "api").count() == 1
                    && p.iter()
                        .filter(|p| p["role"] == "validator")
                        .all(|p| p["height"].as_u64() >= Some(WARM_HEIGHT))
            })
        },
    );
    let transfer = cross_shard_transfer(&net, api_port);
    validator_api(&net, api_port);
    let supply = http::get(api_port, "/supply");
    assert_eq!(supply["balanced"], true, "{supply}");
    assert_eq!(
        supply["shards"].as_array().map(Vec::len),
        Some(SHARDS),
        "{supply}"
    );

    let st = http::get(api_port, "/status");
    assert_eq!(
        (st["role"].as_str(), st["peers"].as_u64()),
        (Some("api"), Some(VALIDATORS as u64)),
        "{st}"
    );
    assert!(st["syncing"].is_boolean(), "{st}");

    // PRSM metrics: the genesis plan and live figures (the transfer above crossed shards).
    let prsm = http::get(api_port, "/consensus/metrics");
    assert_eq!(prsm["active_shards"], SHARDS, "{prsm}");
    assert_eq!(prsm["total_nodes"], VALIDATORS, "{prsm}");
    assert!(prsm["cross_shard_operations"].as_u64() >= Some(1), "{prsm}");
    let beacon = prsm["beacon_committee"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(beacon.len(), 4, "{prsm}");
    for s in prsm["shards"].as_array().expect("shards") {
        assert_eq!(
            s["members"].as_array().map(Vec::len),
            Some(PER_SHARD),
            "{prsm}"
        );
        assert!(
            beacon.contains(&s["coordinator"]),
            "coordinator on the beacon: {prsm}"
        );
        assert!(s["height"].as_u64() >= Some(WARM_HEIGHT), "{prsm}");
    }
    // Reputation recorded by the beacon: one entry per validator, scores in [0, 1].
    let validators = prsm["validators"].as_array().expect("validators");
    assert_eq!(validators.len(), VALIDATORS, "{prsm}");
    for v in validators {
        let score = v["reputation"].as_f64().expect("reputation");
        assert!((0.0..=1.0).contains(&score), "{prsm}");
        assert!(
            v["finalize_votes"].is_u64() && v["missed"].is_u64(),
            "{prsm}"
        );
    }
    assert!(
        validators
            .iter()
            .any(|v| v["finalize_votes"].as_u64() >= Some(1)),
        "the beacon credited no finalization vote: {prsm}"
    );

    // 1b'. A configuration change goes through the beacon and applies at the height the
    // reply states; a field that needs resharding is refused with a clear error.
    let applied = change_config(&net, api_port, serde_json::json!({"batch_timeout_ms": 400}));
    assert_eq!(applied["config"]["batch_timeout_ms"], 400, "{applied}");
    let dash = http::get(api_port, "/shard/dashboard");
    assert_eq!(dash["config"]["batch_timeout_ms"], 400, "in force: {dash}");
    let (code, refused) = http::call(
        api_port,
        "POST",
        "/shard/config",
        Some(&serde_json::json!({"enabled": true, "num_shards": 8, "batch_size": 200})),
    )
    .unwrap();
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "config_conflict", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("num_shards")),
        "{refused}"
    );

    // 1b''. Rebalancing: a dev account moves to another shard through the beacon; its balance
    // and nonce arrive there and it keeps transacting; the same move again is refused.
    move_an_account(&net, api_port);

    // Every curl example of docs/api.md, in order, answers with its documented status.
    run_api_doc_examples(api_port);

    // 1c. The dashboard, driven in headless Chromium against the live network.
    dashboard_in_the_browser(&net, &root, api_port);

    // Load in flight across the crash: cross-shard transfers between two dev accounts.
    let load = submit_load(&net, api_port, LOAD_TXS);

    // 2. kill -9 one validator in every shard at once, one of them a beacon member; the
    // supervisor restarts them, the beacon member rebuilds its beacon state from its archive,
    // and each catches up with its shard and the beacon.
    let beacon_victim = before.iter().find(|s| s.beacon_member).unwrap().clone();
    let mut victims = vec![beacon_victim.clone()];
    // Exactly one beacon member: two of the four at once is more than the beacon tolerates
    // (and see docs/operations.md, Known limits, for its recovery after that).
    for s in &before {
        if !s.beacon_member && victims.iter().all(|v| v.shard != s.shard) {
            victims.push(s.clone());
        }
    }
    assert_eq!(victims.len(), SHARDS);
    let beacon_height_at_kill = net
        .statuses()
        .iter()
        .flatten()
        .map(|s| s.beacon_height)
        .max()
        .unwrap();
    let shard_height_at_kill = |shard: Option<u32>| {
        net.statuses()
            .iter()
            .flatten()
            .filter(|s| s.shard == shard)
            .map(|s| s.shard_height)
            .max()
            .unwrap()
    };
    let heights_at_kill: Vec<u64> = victims
        .iter()
        .map(|v| shard_height_at_kill(v.shard))
        .collect();
    for v in &victims {
        rustix::process::kill_process(pid_of(v.pid), rustix::process::Signal::KILL).unwrap();
    }
    for (victim, at_kill) in victims.iter().zip(&heights_at_kill) {
        let i: usize = victim.name[1..].parse().unwrap();
        net.wait_until(
            "a killed validator to restart and catch up",
            CATCH_UP_TIMEOUT_S,
            |n| {
                read_status(&n.home(i)).is_ok_and(|s| {
                    s.pid != victim.pid
                        && s.state == "running"
                        && s.shard_height >= at_kill + CATCH_UP_BLOCKS
                        && s.beacon_height >= beacon_height_at_kill
                })
            },
        );
        let restarted = read_status(&net.home(i)).unwrap();
        pids.push(restarted.pid);
        let output = net.output();
        assert!(
            output.contains(&format!(
                "{} (pid {}) exited (signal 9)",
                victim.name, victim.pid
            )),
            "{output}"
        );
        assert!(
            output.contains(&format!("restarted {} (pid {}", victim.name, restarted.pid)),
            "{output}"
        );
    }
    let victim = beacon_victim;
    // Every other validator kept going.
    net.wait_until(
        "every validator to keep finalizing",
        CATCH_UP_TIMEOUT_S,
        |n| {
            n.statuses().iter().zip(&before).all(|(now, then)| {
                now.as_ref()
                    .is_some_and(|s| s.shard_height > then.shard_height)
            })
        },
    );
    let after: Vec<NodeStatus> = net.statuses().into_iter().map(Option::unwrap).collect();
    assert_replicas_agree(&after);
    // No transaction submitted around the crash was lost, and each applied exactly once.
    load.check(&net, api_port);

    // 2a. kill -9 of two of a shard's four validators, held down (their `hold` file keeps the
    // supervisor from restarting them): that shard's finality stops, the other shard goes on;
    // when the holds are removed the supervisor restarts them and the shard resumes.
    let frozen_shard = before[VALIDATORS - 1].shard;
    let mut held: Vec<&NodeStatus> = before
        .iter()
        .filter(|s| s.shard == frozen_shard && s.name != victim.name)
        .collect();
    held.sort_by_key(|s| s.beacon_member); // non-beacon members first: keep the beacon live
    let held: Vec<(usize, u32)> = held
        .iter()
        .take(2)
        .map(|s| {
            let i: usize = s.name[1..].parse().unwrap();
            (i, read_status(&net.home(i)).unwrap().pid)
        })
        .collect();
    let shard_height = |port: u16, shard: u32| -> u64 {
        http::get(port, "/status")["shards"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["shard_id"] == shard))
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    };
    let halted = frozen_shard.unwrap();
    let other_shard = (0..SHARDS as u32).find(|s| *s != halted).unwrap();
    let hold_file = |i: usize| net.home(i).join(vision_node::devnet::HOLD_FILE);
    for (i, pid) in &held {
        fs::write(hold_file(*i), b"").unwrap();
        rustix::process::kill_process(pid_of(*pid), rustix::process::Signal::KILL).unwrap();
    }
    net.wait_until(
        "both killed validators to be held",
        CATCH_UP_TIMEOUT_S,
        |n| {
            let output = n.output();
            held.iter().all(|(i, pid)| {
                !alive(*pid) && output.contains(&format!("v{i:02} held: not restarting it"))
            })
        },
    );
    // GET /status shows them held.
    net.wait_until(
        "GET /status to show the held validators",
        CATCH_UP_TIMEOUT_S,
        |_| {
            let st = http::get(api_port, "/status");
            st["processes"].as_array().is_some_and(|p| {
                held.iter().all(|(i, _)| {
                    p.iter()
                        .any(|p| p["name"] == format!("v{i:02}") && p["health"] == "held")
                })
            })
        },
    );
    // Let in-flight votes settle, then watch: the halted shard stays put, the other moves.
    std::thread::sleep(Duration::from_secs(3));
    let (halted_at, other_at) = (
        shard_height(api_port, halted),
        shard_height(api_port, other_shard),
    );
    std::thread::sleep(Duration::from_secs(5));
    let halted_now = shard_height(api_port, halted);
    let other_now = shard_height(api_port, other_shard);
    for (i, _) in &held {
        fs::remove_file(hold_file(*i)).unwrap();
    }
    assert_eq!(
        halted_now, halted_at,
        "shard {halted} finalized without a quorum"
    );
    assert!(
        other_now > other_at,
        "shard {other_shard} stopped too ({other_at} → {other_now})"
    );
    net.wait_until("the halted shard to resume", CATCH_UP_TIMEOUT_S, |_| {
        shard_height(api_port, halted) > halted_at + CATCH_UP_BLOCKS
    });
    for (i, pid) in &held {
        net.wait_until(
            "a released validator to restart and catch up",
            CATCH_UP_TIMEOUT_S,
            |n| {
                read_status(&n.home(*i)).is_ok_and(|s| {
                    s.pid != *pid
                        && s.state == "running"
                        && s.shard_height > halted_at + CATCH_UP_BLOCKS
                })
            },
        );
        pids.push(read_status(&net.home(*i)).unwrap().pid);
    }
    assert!(
        net.output()
            .contains(&format!("v{:02} released: restarting it", held[0].0)),
        "{}",
        net.output()
    );
    let released: Vec<NodeStatus> = net.statuses().into_iter().map(Option::unwrap).collect();
    assert_replicas_agree(&released);

    // 2b. kill -9 of the API node loses nothing: the supervisor restarts it, it resumes from
    // its own store and reports the same balances.
    let api_home = dir.join("nodes").join("api");
    let heights_before: Vec<u64> = (0..SHARDS as u32)
        .map(|s| shard_height(api_port, s))
        .collect();
    let balances_before: Vec<(String, String)> = transfer
        .balances
        .iter()
        .map(|(a, _)| (a.clone(), balance(api_port, a).to_string()))
        .collect();
    let api_before = read_status(&api_home).unwrap();
    assert_eq!(api_before.role, "api");
    rustix::process::kill_process(pid_of(api_before.pid), rustix::process::Signal::KILL).unwrap();
    net.wait_until(
        "the API node to restart and follow again",
        CATCH_UP_TIMEOUT_S,
        |_| {
            read_status(&api_home).is_ok_and(|s| s.pid != api_before.pid && s.state == "running")
                && (0..SHARDS as u32)
                    .all(|s| shard_height(api_port, s) >= heights_before[s as usize])
        },
    );
    pids.push(read_status(&api_home).unwrap().pid);
    for (account, balance) in &balances_before {
        let got = http::get(api_port, &format!("/account/{account}"));
        assert_eq!(
            got["account"]["balance"].as_str(),
            Some(balance.as_str()),
            "{account} after the API node restarted: {got}"
        );
    }
    // Its durable transaction index still knows the transfer finalized before the kill.
    let st = http::get(api_port, &format!("/tx/{}", transfer.tx_id));
    assert_eq!(
        st["status"].as_str(),
        Some("completed"),
        "the transfer after the API node restarted: {st}"
    );

    // 3. SIGINT stops the devnet and every validator, cleanly.
    let mut net = net;
    rustix::process::kill_process(pid_of(net.child.id()), rustix::process::Signal::INT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(STOP_TIMEOUT_S);
    let status = loop {
        if let Some(s) = net.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "devnet did not stop\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "devnet exit {status:?}\n{}", net.logs());
    let output = net.output();
    assert!(output.contains("SIGINT: stopping 9 processes"), "{output}");
    assert!(
        output.contains("all processes stopped (0 killed)"),
        "{output}"
    );
    for pid in pids {
        assert!(!alive(pid), "validator pid {pid} still alive");
    }
    for s in net.statuses() {
        let s = s.unwrap();
        assert_eq!(
            s.state,
            "stopped",
            "{} did not stop cleanly\n{}",
            s.name,
            net.logs()
        );
    }
    drop(net);
    fs::remove_dir_all(&root).ok();
}

/// One `curl` example of docs/api.md.
#[derive(Debug)]
struct DocExample {
    line: usize,
    method: String,
    path: String,
    body: Option<String>,
    expect: u16,
}

/// The `curl` commands of the ```bash blocks of `md`, each with the status of the
/// `<!-- expect: N -->` line before its block (200 without one).
fn doc_examples(md: &str) -> Vec<DocExample> {
    let mut out = Vec::new();
    let mut expect = 200;
    let mut lines = md.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let line = line.trim();
        if let Some(code) = line.strip_prefix("<!-- expect:") {
            expect = code
                .trim_end_matches("-->")
                .trim()
                .parse()
                .expect("expect: N");
            continue;
        }
        if line != "```bash" {
            continue;
        }
        let mut cmd = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            cmd.push_str(l.trim_end().trim_end_matches('\\'));
            cmd.push(' ');
        }
        let words = shell_words(&cmd);
        if words.first().map(String::as_str) == Some("curl") {
            out.push(parse_curl(&words, expect, i + 2));
        }
        expect = 200;
    }
    out
}

/// Splits a command line into words the way a shell does for these examples (single and
/// double quotes, whitespace); a `|` outside quotes ends the command.
fn shell_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    cur.push(q);
                }
            }
            '|' => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn parse_curl(words: &[String], expect: u16, line: usize) -> DocExample {
    let (mut method, mut url, mut body) = (None, None, None);
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-X" => method = it.next().cloned(),
            "-H" => {
                it.next();
            }
            "-d" => body = it.next().cloned(),
            "-N" | "-s" => {}
            u if u.starts_with("http://localhost:3030") => url = Some(u.to_string()),
            other => panic!("docs/api.md line {line}: unexpected curl word {other:?}"),
        }
    }
    let url = url.unwrap_or_else(|| panic!("docs/api.md line {line}: no URL"));
    DocExample {
        line,
        method: method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into()),
        path: url["http://localhost:3030".len()..].to_string(),
        body,
        expect,
    }
}

/// Runs every curl example of docs/api.md against the API node on `port`, in order,
/// replacing the placeholders with what earlier examples returned.
fn run_api_doc_examples(port: u16) {
    let md = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md");
    let examples = doc_examples(&md);
    assert!(examples.len() >= 20, "few examples found: {examples:#?}");
    let mut values: std::collections::BTreeMap<&str, String> = Default::default();
    for ex in &examples {
        let fill = |s: &str| {
            let mut s = s.to_string();
            for placeholder in ["contract_uuid", "xscall_uuid", "tx_uuid", "proposal_uuid"] {
                if s.contains(placeholder) {
                    let v = values.get(placeholder).unwrap_or_else(|| {
                        panic!(
                            "docs/api.md line {}: no earlier example gave {placeholder}",
                            ex.line
                        )
                    });
                    s = s.replace(placeholder, v);
                }
            }
            s
        };
        let (path, body) = (
            fill(&ex.path),
            ex.body.as_deref().map(fill).unwrap_or_default(),
        );
        let (code, reply) = http::call_raw(port, &ex.method, &path, &body).unwrap();
        assert_eq!(
            code, ex.expect,
            "docs/api.md line {}: {} {path} {body}\n{reply}",
            ex.line, ex.method
        );
        for (key, placeholder) in [
            ("contract_id", "contract_uuid"),
            ("tx_id", "tx_uuid"),
            ("proposal_id", "proposal_uuid"),
        ] {
            if let Some(v) = reply[key].as_str() {
                values.insert(placeholder, v.to_string());
            }
        }
        if let Some(v) = reply["result"]["call_id"].as_str() {
            values.insert("xscall_uuid", v.to_string());
        }
        if ex.path == "/consensus/proposal" {
            // Every shard accepts this one: achieved, with a finalized vote from each of the
            // devnet's two shards.
            assert_eq!(reply["consensus_achieved"], true, "{reply}");
            assert_eq!(reply["target_shards"], serde_json::json!([0, 1]), "{reply}");
            assert_eq!(
                reply["shard_results"].as_array().map(Vec::len),
                Some(2),
                "{reply}"
            );
        }
    }
}

/// Posts a configuration change and waits until the API node's beacon view is at its
/// effective height; returns the reply.
fn change_config(net: &Devnet, port: u16, update: serde_json::Value) -> serde_json::Value {
    let (code, applied) = http::call(port, "POST", "/shard/config", Some(&update)).unwrap();
    assert_eq!(code, 200, "{update}: {applied}");
    let effective = applied["effective_height"]
        .as_u64()
        .expect("effective height");
    net.wait_until("the configuration change to take effect", 60, |_| {
        http::get(port, "/status")["beacon_height"].as_u64() >= Some(effective)
    });
    applied
}

/// Moves the last dev account (not one `dev_pair` uses) to the next shard with
/// `POST /shard/rebalance`, waits until the account is on its new shard with the same balance
/// and nonce, sends a transfer from it there, and checks that moving it again to the shard it
/// now lives on is refused with 409.
fn move_an_account(net: &Devnet, port: u16) {
    let accounts: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(net.dir.join("accounts.json")).unwrap()).unwrap();
    let dev = accounts
        .as_array()
        .unwrap()
        .iter()
        .rfind(|a| a["kind"] == "dev")
        .expect("a dev account");
    let id = dev["id"].as_str().unwrap().to_string();
    let before = http::get(port, &format!("/account/{id}"))["account"].clone();
    let from = before["shard_id"].as_u64().expect("shard_id");
    let to = (from + 1) % SHARDS as u64;
    let body = serde_json::json!({"moves": [{"account": id, "to": to}]});
    let (code, moved) = http::call(port, "POST", "/shard/rebalance", Some(&body)).unwrap();
    assert_eq!(code, 200, "{moved}");
    assert_eq!(moved["moves"][0]["from"], from, "{moved}");
    assert_eq!(moved["moves"][0]["to"], to, "{moved}");
    assert!(moved["effective_height"].as_u64().is_some(), "{moved}");
    net.wait_until("the moved account on its new shard", 60, |_| {
        let (code, a) = http::call(port, "GET", &format!("/account/{id}"), None).unwrap();
        code == 200 && a["account"]["shard_id"] == to
    });
    let after = http::get(port, &format!("/account/{id}"))["account"].clone();
    assert_eq!(after["balance"], before["balance"], "{before} -> {after}");
    assert_eq!(after["nonce"], before["nonce"], "{before} -> {after}");
    let (first, _) = dev_pair(net);
    let tx = dev_transfer(port, &id, &first, 1);
    net.wait_until("the moved account's transfer", 60, |_| {
        http::get(port, &format!("/tx/{tx}"))["status"]
            .as_str()
            .is_some_and(|s| s != "pending")
    });
    let sent = http::get(port, &format!("/account/{id}"))["account"].clone();
    assert_eq!(sent["shard_id"], to, "{sent}");
    assert_eq!(
        sent["nonce"].as_u64(),
        before["nonce"].as_u64().map(|n| n + 1),
        "{sent}"
    );
    let (code, refused) = http::call(port, "POST", "/shard/rebalance", Some(&body)).unwrap();
    assert_eq!(code, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already lives")),
        "{refused}"
    );
}

/// The dashboard in a real browser against the live devnet: it shows every shard and a batch
/// kept open (long timeout, no periodic crosslinks) with its pending transaction; its Flush
/// button closes that batch and the page then shows it empty; a click on a contract opens its
/// details; hiding the tab stops the refreshes and showing it resumes them; no console error
/// or failed load happens throughout. The screenshot is kept in
/// `$CARGO_TARGET_TMPDIR/dashboard-browser/dashboard-live.png`.
fn dashboard_in_the_browser(net: &Devnet, root: &std::path::Path, port: u16) {
    let work = root.join("browser");
    let browser = chromium::Chromium::find(&work).unwrap_or_else(|e| panic!("{e}"));
    change_config(
        net,
        port,
        serde_json::json!({"batch_timeout_ms": 60_000, "crosslink_frequency": 10_000}),
    );
    let (from, to) = dev_pair(net);
    let shard = http::get(port, &format!("/account/{from}"))["account"]["shard_id"]
        .as_u64()
        .expect("shard");
    dev_transfer(port, &from, &to, 7);
    net.wait_until("a pending batch", 60, |_| {
        http::get(port, &format!("/shard/batch/status/{shard}"))["pending_txs"].as_u64() >= Some(1)
    });

    let mut page =
        cdp::Page::open(&browser.binary, &work, (1280, 1800)).unwrap_or_else(|e| panic!("{e}"));
    let secs = Duration::from_secs;
    let step = |page: &mut cdp::Page, what: &str, js: &str, timeout_s: u64| {
        page.wait_for(js, secs(timeout_s))
            .unwrap_or_else(|e| panic!("dashboard: {what}: {e}; page errors: {:?}", page.errors));
    };
    page.navigate(&format!("http://127.0.0.1:{port}/shard-dashboard.html"))
        .unwrap();
    step(
        &mut page,
        "loads",
        "document.body.dataset.loaded === 'true'",
        30,
    );
    step(
        &mut page,
        "shows every shard",
        &format!("document.querySelectorAll('#shards .shard-card').length === {SHARDS}"),
        10,
    );
    step(
        &mut page,
        "shows every validator's reputation",
        &format!(
            "document.querySelectorAll('#reputation-table tr[data-validator]').length === {VALIDATORS}"
        ),
        10,
    );
    let pending = format!(
        "document.querySelector('#pending-batches tr[data-shard-id=\"{shard}\"] \
         [data-field=\"pending_txs\"]').textContent"
    );
    step(
        &mut page,
        "shows the pending batch",
        &format!("{pending} !== '0'"),
        20,
    );
    page.eval(&format!(
        "document.querySelector('[data-flush-shard=\"{shard}\"]').click()"
    ))
    .unwrap();
    step(
        &mut page,
        "reports the flush",
        &format!(
            "document.getElementById('flush-result').textContent.startsWith('Shard {shard}: crosslink_')"
        ),
        60,
    );
    step(
        &mut page,
        "shows the batch empty",
        &format!("{pending} === '0'"),
        20,
    );
    page.eval("document.querySelector('.contract-row').click()")
        .unwrap();
    step(
        &mut page,
        "opens a contract",
        "document.getElementById('contract-detail').textContent.includes('\"code_hash\"')",
        20,
    );

    // Hidden: no refresh for more than a refresh period; visible again: refreshes resume.
    page.eval(
        "window.__fetches = 0; const f = window.fetch; \
         window.fetch = function () { window.__fetches++; return f.apply(this, arguments); }; \
         Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'}); \
         document.dispatchEvent(new Event('visibilitychange'))",
    )
    .unwrap();
    step(
        &mut page,
        "pauses when hidden",
        "document.getElementById('connection-status').dataset.state === 'paused'",
        10,
    );
    // Let a refresh that was already under way finish before counting.
    std::thread::sleep(secs(2));
    page.eval("window.__fetches = 0").unwrap();
    std::thread::sleep(secs(7));
    assert_eq!(
        page.eval("window.__fetches").unwrap(),
        0,
        "the hidden dashboard kept refreshing"
    );
    page.eval(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'}); \
         document.dispatchEvent(new Event('visibilitychange'))",
    )
    .unwrap();
    step(
        &mut page,
        "resumes when visible",
        "window.__fetches > 0 && document.getElementById('connection-status').dataset.state === 'connected'",
        20,
    );
    // Kept after the run (the devnet's temp dir is removed): target/tmp/dashboard-browser/.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-browser");
    fs::create_dir_all(&shots).unwrap();
    page.screenshot(&shots.join("dashboard-live.png")).unwrap();
    assert!(
        page.errors.is_empty(),
        "dashboard errors: {:#?}",
        page.errors
    );
    drop(page);
    change_config(
        net,
        port,
        serde_json::json!({"batch_timeout_ms": 500, "crosslink_frequency": 10}),
    );
}

/// Two simulated hosts: network namespaces `a` and `b` made by this test, joined by a veth
/// pair (10.77.0.1 in `a`, 10.77.0.2 in `b`); deleted (with the pair) on drop.
struct TwoHosts {
    a: String,
    b: String,
    veth: String,
}

/// Runs `ip ARGS`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TwoHosts {
    /// Host address of namespace `a` (validators 0–2) and `b` (validator 3).
    const ADDRS: [&'static str; 2] = ["10.77.0.1", "10.77.0.2"];

    fn create() -> Result<Self, String> {
        let tag = std::process::id();
        let hosts = Self {
            a: format!("vn{tag}a"),
            b: format!("vn{tag}b"),
            veth: format!("vn{tag}v"),
        };
        ip(&["netns", "add", &hosts.a])?;
        // From here on, drop cleans up whatever was made.
        ip(&["netns", "add", &hosts.b])?;
        let peer = format!("{}p", hosts.veth);
        ip(&[
            "link",
            "add",
            &hosts.veth,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ip(&["link", "set", &hosts.veth, "netns", &hosts.a])?;
        ip(&["link", "set", &peer, "netns", &hosts.b])?;
        for (ns, dev, addr) in [
            (&hosts.a, &hosts.veth, Self::ADDRS[0]),
            (&hosts.b, &peer, Self::ADDRS[1]),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(hosts)
    }

    /// Cuts (`false`) or restores (`true`) the only link between the two hosts.
    fn link(&self, up: bool) {
        ip(&[
            "-n",
            &self.a,
            "link",
            "set",
            &self.veth,
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// Runs `f` on a thread inside network namespace `ns` (the test's own namespace for `None`),
/// so that 127.0.0.1 is that host's loopback.
fn on_host<T: Send + 'static>(ns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsFd;
    let path = ns.map(|n| PathBuf::from("/run/netns").join(n));
    std::thread::spawn(move || {
        if let Some(path) = path {
            let file = fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
        }
        f()
    })
    .join()
    .unwrap()
}

/// The procedure of docs/operations.md ("Several machines: init and run") on two hosts: four
/// validators of one shard, each set up by `vision-node init`, one genesis file built from the
/// entries `init` printed, each started with `vision-node run`. Three run on host `a`, one on
/// host `b`. A signed transfer submitted on `a` is seen on `b`; then the link between the
/// hosts is cut: `a` (3 of 4) keeps finalizing and takes another transfer while `b` stops;
/// after the link comes back `b` catches up to the same blocks, state roots and balances.
/// Where network namespaces cannot be made (not root, no `ip`), all four run on 127.0.0.1 and
/// the partition is skipped with the reason printed.
#[test]
fn validators_on_two_hosts_partition_and_heal() {
    let root = std::env::temp_dir().join(format!("vision-node-hosts-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let hosts = match TwoHosts::create() {
        Ok(h) => {
            eprintln!(
                "two hosts: network namespaces {} ({}) and {} ({})",
                h.a,
                TwoHosts::ADDRS[0],
                h.b,
                TwoHosts::ADDRS[1]
            );
            Some(h)
        }
        Err(why) => {
            eprintln!(
                "network namespaces unavailable ({why}): running all validators on 127.0.0.1, \
                 partition step skipped"
            );
            None
        }
    };
    let ns_of = |i: usize| -> Option<String> {
        hosts
            .as_ref()
            .map(|h| if i < 3 { h.a.clone() } else { h.b.clone() })
    };
    // p2p and HTTP ports: fixed inside fresh namespaces, free ones on the shared loopback.
    let base = if hosts.is_some() {
        31_000
    } else {
        free_base_port(8)
    };
    let p2p = |i: usize| -> String {
        let host = match &hosts {
            Some(_) => TwoHosts::ADDRS[usize::from(i >= 3)],
            None => "127.0.0.1",
        };
        format!("{host}:{}", base + i as u16)
    };
    let api_port = |i: usize| base + 4 + i as u16;

    // 1. `init` on every "machine"; the genesis from the entries it printed.
    let bin = env!("CARGO_BIN_EXE_vision-node");
    let homes: Vec<PathBuf> = (0..4).map(|i| root.join(format!("h{i}"))).collect();
    let mut validators = Vec::new();
    for (i, home) in homes.iter().enumerate() {
        let out = Command::new(bin)
            .arg("init")
            .arg("--home")
            .arg(home)
            .args(["--p2p-address", &p2p(i)])
            .args(["--api-listen", &format!("127.0.0.1:{}", api_port(i))])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entry: vision_types::GenesisValidator = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(entry.name, format!("h{i}"));
        validators.push(entry);
    }
    let payer_key = vision_types::SecretKey::from_seed([0x11; 32]);
    let payer = vision_types::AccountId::new("payer").unwrap();
    let payee = vision_types::AccountId::new("payee").unwrap();
    let genesis = vision_types::Genesis {
        chain_id: vision_types::ChainId::new("two-hosts").unwrap(),
        genesis_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        shard_config: vision_types::ShardConfig {
            num_shards: 1,
            ..Default::default()
        },
        strategy: "hash".into(),
        validators,
        accounts: vec![
            vision_types::GenesisAccount {
                id: payer.clone(),
                public_key: payer_key.public_key(),
                balance: vision_types::Amount(1_000_000),
            },
            vision_types::GenesisAccount {
                id: payee.clone(),
                public_key: vision_types::SecretKey::from_seed([0x22; 32]).public_key(),
                balance: vision_types::Amount(0),
            },
        ],
        config_authority: payer.clone(),
    };
    let genesis_file = root.join("genesis.json");
    fs::write(&genesis_file, serde_json::to_vec_pretty(&genesis).unwrap()).unwrap();

    // 2. `run` on every machine.
    struct Procs(Vec<Child>);
    impl Drop for Procs {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut procs = Procs(Vec::new());
    for (i, home) in homes.iter().enumerate() {
        let log = fs::File::create(root.join(format!("h{i}.log"))).unwrap();
        let mut cmd = match ns_of(i) {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("run")
            .arg("--home")
            .arg(home)
            .arg("--genesis")
            .arg(&genesis_file)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        procs.0.push(cmd.spawn().unwrap());
    }
    let logs = || -> String {
        (0..4)
            .map(|i| {
                let log = fs::read_to_string(root.join(format!("h{i}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(12).collect();
                format!(
                    "--- h{i} ---\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    };
    let status = |i: usize| read_status(&homes[i]).ok();
    let height = |i: usize| status(i).map_or(0, |s| s.shard_height);
    let wait = |what: &str, ok: &mut dyn FnMut() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(STARTUP_TIMEOUT_S);
        while Instant::now() < deadline {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "timed out after {STARTUP_TIMEOUT_S}s waiting for {what}; heights {:?}\n{}",
            (0..4).map(height).collect::<Vec<_>>(),
            logs()
        );
    };
    wait("every validator to finalize", &mut || {
        (0..4).all(|i| height(i) >= WARM_HEIGHT)
    });
    let get = |i: usize, path: String| -> serde_json::Value {
        let port = api_port(i);
        on_host(ns_of(i).as_deref(), move || http::get(port, &path))
    };
    let balance_at = |i: usize, who: &vision_types::AccountId| -> Option<u128> {
        get(i, format!("/account/{who}"))["account"]["balance"]
            .as_str()
            .and_then(|b| b.parse().ok())
    };
    let mut nonce = 0;
    let mut transfer = |i: usize, amount: u128| {
        let tx = vision_types::Transaction {
            chain_id: genesis.chain_id.clone(),
            signer: payer.clone(),
            nonce,
            fee: vision_types::Amount(10),
            action: vision_types::Action::Transfer {
                to: payee.clone(),
                amount: vision_types::Amount(amount),
                priority: 0,
            },
        }
        .sign(&payer_key);
        nonce += 1;
        let port = api_port(i);
        let body = serde_json::to_value(&tx).unwrap();
        let (code, reply) = on_host(ns_of(i).as_deref(), move || {
            http::call(port, "POST", "/tx", Some(&body)).unwrap()
        });
        assert_eq!(code, 200, "{reply}");
    };

    // 3. A transfer submitted on host a reaches every replica, host b's included.
    transfer(0, 1_000);
    wait("the first transfer on every replica", &mut || {
        (0..4).all(|i| balance_at(i, &payee) == Some(1_000))
    });
    assert_replicas_agree(&(0..4).filter_map(status).collect::<Vec<_>>());

    match &hosts {
        None => eprintln!("two hosts: partition and healing skipped (no network namespaces)"),
        Some(hosts) => {
            // 4. Cut the link: host a (3 of 4) keeps finalizing and takes a transfer, host b
            // stops.
            hosts.link(false);
            std::thread::sleep(Duration::from_secs(3)); // votes already in flight land
            let (a_at, b_at) = (height(0), height(3));
            eprintln!("two hosts: link cut at heights {a_at} (a) and {b_at} (b)");
            transfer(1, 2_000);
            wait("host a to finalize without host b", &mut || {
                (0..3).all(|i| height(i) >= a_at + 5 && balance_at(i, &payee) == Some(3_000))
            });
            assert_eq!(height(3), b_at, "host b finalized alone");
            assert_eq!(
                balance_at(3, &payee),
                Some(1_000),
                "host b alone saw the transfer"
            );

            // 5. Heal: host b catches up to the same blocks, state roots and balances.
            hosts.link(true);
            let target = (0..3).map(height).max().unwrap();
            wait("host b to catch up after the partition healed", &mut || {
                height(3) >= target + CATCH_UP_BLOCKS && balance_at(3, &payee) == Some(3_000)
            });
            let after: Vec<NodeStatus> = (0..4).filter_map(status).collect();
            assert_eq!(after.len(), 4);
            eprintln!(
                "two hosts: healed at height {target}; b caught up to {}",
                height(3)
            );
            assert_replicas_agree(&after);
            assert_eq!(balance_at(3, &payer), balance_at(0, &payer));
        }
    }

    // 6. SIGTERM stops every validator cleanly.
    for c in &procs.0 {
        rustix::process::kill_process(pid_of(c.id()), rustix::process::Signal::TERM).unwrap();
    }
    for (i, c) in procs.0.iter_mut().enumerate() {
        let code = c.wait().unwrap();
        assert!(code.success(), "h{i} exited {code:?}\n{}", logs());
    }
    drop(procs);
    fs::remove_dir_all(&root).ok();
}
