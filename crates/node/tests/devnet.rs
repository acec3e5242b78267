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
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
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

/// Submits `n` cross-shard transfers (signed by the devnet API node) from one dev account to
/// another.
fn submit_load(net: &Devnet, port: u16, n: usize) -> Load {
    let (from, to) = dev_pair(net);
    let (from_before, to_before) = (balance(port, &from), balance(port, &to));
    let ids = (0..n)
        .map(|_| {
            let body = serde_json::json!({
                "signer": from,
                "action": {"type": "transfer", "to": to, "amount": LOAD_AMOUNT.to_string()},
            });
            let (code, reply) = http::call(port, "POST", "/tx", Some(&body)).unwrap();
            assert_eq!(code, 200, "{reply}");
            reply["tx_id"].as_str().unwrap().to_string()
        })
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
    balances: Vec<(String, String)>,
}

/// A cross-shard transfer between two dev accounts, signed by the devnet API node: submitted
/// over HTTP, followed to `completed`, and checked in both balances.
fn cross_shard_transfer(net: &Devnet, port: u16) -> Transfer {
    let (from, to) = dev_pair(net);
    let balance = |id: &str| balance(port, id);
    let (from_before, to_before) = (balance(&from), balance(&to));
    let body = serde_json::json!({
        "signer": from,
        "action": {"type": "transfer", "to": to, "amount": "12345"},
    });
    let (code, reply) = http::call(port, "POST", "/tx", Some(&body)).unwrap();
    assert_eq!(code, 200, "{reply}");
    let id = reply["tx_id"].as_str().unwrap().to_string();
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
        balances: vec![(from, from_after.to_string()), (to, to_after.to_string())],
    }
}

#[test]
fn devnet_finalizes_survives_kill_9_and_stops_cleanly() {
    let root = std::env::temp_dir().join(format!("vision-node-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let dir = root.join("devnet");
    let out = root.join("devnet-output.log");
    // Validators, the API node's p2p port, then its HTTP port.
    let base_port = free_base_port(VALIDATORS as u16 + 2);
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
    let supply = http::get(api_port, "/supply");
    assert_eq!(supply["balanced"], true, "{supply}");
    assert_eq!(
        supply["shards"].as_array().map(Vec::len),
        Some(SHARDS),
        "{supply}"
    );

    // 1c. The dashboard renders the live network in headless Chromium.
    let browser = chromium::Chromium::find(&root.join("browser")).unwrap_or_else(|e| panic!("{e}"));
    let page = browser
        .render_until(
            &format!("http://127.0.0.1:{api_port}/shard-dashboard.html"),
            None,
            |dom| dom.contains("data-loaded=\"true\""),
        )
        .unwrap_or_else(|e| panic!("dashboard did not render: {e}"));
    for s in 0..SHARDS {
        assert!(
            page.contains(&format!("shard_{s}")),
            "dashboard lacks shard_{s}:\n{page}"
        );
    }

    // Load in flight across the crash: cross-shard transfers between two dev accounts.
    let load = submit_load(&net, api_port, LOAD_TXS);

    // 2. kill -9 one validator in every shard at once, one of them a beacon member; the
    // supervisor restarts them, the beacon member rebuilds its beacon state from its archive,
    // and each catches up with its shard and the beacon.
    let beacon_victim = before.iter().find(|s| s.beacon_member).unwrap().clone();
    let mut victims = vec![beacon_victim.clone()];
    for s in &before {
        if victims.iter().all(|v| v.shard != s.shard) {
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

    // 2a. Two of a shard's four validators down (frozen with SIGSTOP, so the supervisor does
    // not replace them): that shard's finality stops, the other shard goes on; it resumes
    // when they come back (SIGCONT).
    let frozen_shard = before[VALIDATORS - 1].shard;
    let mut frozen: Vec<&NodeStatus> = before
        .iter()
        .filter(|s| s.shard == frozen_shard && s.name != victim.name)
        .collect();
    frozen.sort_by_key(|s| s.beacon_member); // non-beacon members first: keep the beacon live
    let frozen: Vec<u32> = frozen
        .iter()
        .take(2)
        .map(|s| {
            read_status(&net.home(s.name[1..].parse().unwrap()))
                .unwrap()
                .pid
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
    for pid in &frozen {
        rustix::process::kill_process(pid_of(*pid), rustix::process::Signal::STOP).unwrap();
    }
    // Let in-flight votes settle, then watch: the halted shard stays put, the other moves.
    std::thread::sleep(Duration::from_secs(3));
    let (halted_at, other_at) = (
        shard_height(api_port, halted),
        shard_height(api_port, other_shard),
    );
    std::thread::sleep(Duration::from_secs(5));
    let halted_now = shard_height(api_port, halted);
    let other_now = shard_height(api_port, other_shard);
    for pid in &frozen {
        rustix::process::kill_process(pid_of(*pid), rustix::process::Signal::CONT).unwrap();
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
