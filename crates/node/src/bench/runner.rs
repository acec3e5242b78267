//! One measured run against a node that serves the API: sign everything first, subscribe to
//! `GET /events`, submit open-loop with `POST /tx/batch`, match finalized transaction ids,
//! sample CPU and memory, and summarize.

use super::{
    http::HttpClient,
    pacing::Pacer,
    procstat::{self, ProcSample},
    report::{PeakRss, ScenarioResult},
    scenario::Scenario,
    sse::{BlockEventData, LaggedData, SseParser},
    stats::{Histogram, summarize},
    workload::{self, ReadyTx, TxKind},
};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use std::{
    collections::{BTreeMap, HashMap},
    io::Write as _,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use vision_types::{ChainId, Hash};

/// Most `POST /tx/batch` requests in flight at once (the API answers each after admitting
/// its transactions; a slower node makes the client fall behind schedule, which is reported).
pub const MAX_IN_FLIGHT_REQUESTS: usize = 32;
/// Most account lookups in flight while reading nonces.
pub const MAX_IN_FLIGHT_LOOKUPS: usize = 16;
/// Largest `POST /tx/batch` the client sends (the API's limit is 1000).
pub const MAX_BATCH_TXS: usize = 1000;

/// How one run is measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// Load before the window (not measured), in seconds.
    pub warmup_s: u64,
    /// Longest wait after the window for its transactions to complete, in seconds.
    pub drain_s: u64,
    /// Whether to print a progress line on stderr.
    pub progress: bool,
}

/// The node under test.
pub struct Target<'a> {
    /// Its API.
    pub http: &'a HttpClient,
    /// The devnet directory (`accounts.json`, `processes.json`).
    pub dir: &'a Path,
    /// The devnet supervisor's pid, when the bench started it.
    pub supervisor_pid: Option<u32>,
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What became of one submitted transaction.
#[derive(Clone, Copy, Debug, Default)]
struct TxRecord {
    cross: bool,
    in_window: bool,
    /// Unix ms when its batch was sent (0: not sent).
    submit_ms: u64,
    rejected: bool,
    failed: bool,
    /// Unix ms (the node's `finalized_ms`) when it completed (0: not yet).
    done_ms: u64,
}

/// Shared between the submitter, the event reader and the progress line.
#[derive(Default)]
struct Tracker {
    index: HashMap<Hash, u32>,
    txs: Vec<TxRecord>,
    rejected_by_code: BTreeMap<String, u64>,
    /// Unix ms of every completion (successful or failed), for throughput.
    completions_ms: Vec<u64>,
    events: u64,
    lagged_skipped: u64,
    reconnects: u64,
}

impl Tracker {
    fn complete(&mut self, id: &Hash, at_ms: u64, failed: bool) {
        if let Some(&i) = self.index.get(id) {
            let r = &mut self.txs[i as usize];
            if r.done_ms == 0 {
                r.done_ms = at_ms.max(1);
                r.failed = failed;
                self.completions_ms.push(at_ms);
            }
        }
    }

    /// Applies one block event: an intra-shard transaction completes when included, a
    /// cross-shard one when its receipt is applied (or when it fails at the source).
    fn on_block(&mut self, e: &BlockEventData) {
        self.events += 1;
        for id in &e.tx_ids {
            let failed = e.failed_tx_ids.contains(id);
            if let Some(&i) = self.index.get(id)
                && (!self.txs[i as usize].cross || failed)
            {
                self.complete(id, e.finalized_ms, failed);
            }
        }
        for id in &e.completed_origin_tx_ids {
            self.complete(id, e.finalized_ms, false);
        }
    }

    fn window_done(&self) -> (u64, u64) {
        let (mut pending, mut done) = (0, 0);
        for r in self
            .txs
            .iter()
            .filter(|r| r.in_window && r.submit_ms > 0 && !r.rejected)
        {
            if r.done_ms == 0 {
                pending += 1;
            } else {
                done += 1;
            }
        }
        (pending, done)
    }
}

/// Reads every account's next nonce from the node.
async fn nonces(
    http: &HttpClient,
    accounts: &[workload::BenchAccount],
) -> anyhow::Result<Vec<u64>> {
    let mut out = vec![0u64; accounts.len()];
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0usize;
    loop {
        while set.len() < MAX_IN_FLIGHT_LOOKUPS && next < accounts.len() {
            let http = http.clone();
            let path = format!("/account/{}", accounts[next].id);
            let i = next;
            set.spawn(async move {
                let v = http.get_json(&path).await?;
                let nonce = v["account"]["nonce"]
                    .as_u64()
                    .with_context(|| format!("GET {path}: no account.nonce in {v}"))?;
                anyhow::Ok((i, nonce))
            });
            next += 1;
        }
        match set.join_next().await {
            Some(r) => {
                let (i, n) = r.context("nonce lookup task")??;
                out[i] = n;
            }
            None => break,
        }
    }
    Ok(out)
}

/// Reads `GET /events` into the tracker until aborted, reconnecting when the stream ends.
async fn read_events(
    http: HttpClient,
    tracker: Arc<Mutex<Tracker>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        match http.stream("/events").await {
            Ok(mut body) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let mut parser = SseParser::default();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let Ok(events) = parser.push(&data) else {
                        break;
                    };
                    for ev in events {
                        let mut t = tracker.lock().expect("tracker");
                        match ev.event.as_str() {
                            "block" => {
                                if let Ok(e) = serde_json::from_str::<BlockEventData>(&ev.data) {
                                    t.on_block(&e);
                                }
                            }
                            "lagged" => {
                                if let Ok(l) = serde_json::from_str::<LaggedData>(&ev.data) {
                                    t.lagged_skipped += l.skipped;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Err(e) if ready.is_some() => {
                eprintln!("bench: GET /events: {e:#}; retrying");
            }
            Err(_) => {}
        }
        tracker.lock().expect("tracker").reconnects += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every process to measure: the devnet's (from `processes.json`), its supervisor, and this
/// client.
fn processes(target: &Target<'_>) -> Vec<(String, String, Option<u32>, u32)> {
    let mut out: Vec<(String, String, Option<u32>, u32)> = procstat::read_processes(target.dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let pid = p.pid?;
            let shard = p.shard.filter(|&s| s != u32::MAX);
            Some((p.name.clone(), p.report_role(), shard, pid))
        })
        .collect();
    if let Some(pid) = target.supervisor_pid {
        out.push(("devnet".into(), "supervisor".into(), None, pid));
    }
    out.push((
        "bench".into(),
        "bench-client".into(),
        None,
        std::process::id(),
    ));
    out
}

/// One progress line on stderr (overwritten in place).
fn progress(name: &str, phase: &str, t: &Tracker, started: Instant, window: (u64, u64)) {
    let now = unix_ms();
    let recent = t
        .completions_ms
        .iter()
        .rev()
        .take_while(|&&ms| ms + 5_000 >= now)
        .count();
    let sent = t.txs.iter().filter(|r| r.submit_ms > 0).count();
    let done = t.txs.iter().filter(|r| r.done_ms > 0).count();
    let (pending, _) = t.window_done();
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r{name}: {phase} {:>4}s  sent {sent:>7}  done {done:>7}  {:>7.1} tx/s  window pending \
         {pending:>6}  [{}..{} s]   ",
        started.elapsed().as_secs(),
        recent as f64 / 5.0,
        window.0,
        window.1
    );
    let _ = err.flush();
}

/// Runs `s` against `target`; `ceiling_tps` is the ceiling for its committee size.
pub async fn run(
    target: &Target<'_>,
    s: &Scenario,
    opts: &RunOptions,
    ceiling_tps: f64,
) -> anyhow::Result<ScenarioResult> {
    let http = target.http;
    // Chain id and accounts.
    let status = http.get_json("/status").await?;
    let chain_id = status["chain_id"]
        .as_str()
        .context("GET /status: no chain_id")?;
    let chain_id = ChainId::new(chain_id).map_err(|e| anyhow::anyhow!("chain id: {e}"))?;
    let accounts = workload::load_accounts(target.dir)?;
    let account_shards: Vec<u32> = accounts.iter().map(|a| a.shard).collect();
    let network_shards = status["shards"].as_array().map_or(0, Vec::len) as u64;
    if network_shards != s.shards {
        bail!(
            "the target has {network_shards} shards, the scenario {} expects {}",
            s.name,
            s.shards
        );
    }
    let nonces = nonces(http, &accounts).await?;

    // Plan and sign everything before any load.
    let pacer = Pacer::new(s.rate_tps, MAX_BATCH_TXS);
    let total_s = opts.warmup_s + s.duration_s;
    let batches = pacer.batches_for(Duration::from_secs(total_s));
    let count = (batches as usize * pacer.batch_txs()).min(workload::MAX_PLANNED_TXS);
    let planned = workload::plan(&account_shards, &nonces, count, s.cross_ratio);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sign_start = Instant::now();
    let ready: Vec<ReadyTx> = workload::sign_all(&accounts, &planned, &chain_id, cores);
    let sign_s = sign_start.elapsed().as_secs_f64();
    let bodies: Vec<Bytes> = ready
        .chunks(pacer.batch_txs())
        .map(workload::batch_body)
        .collect();
    let warmup = Duration::from_secs(opts.warmup_s);
    let window_end = warmup + Duration::from_secs(s.duration_s);
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    {
        let mut t = tracker.lock().expect("tracker");
        for (k, chunk) in ready.chunks(pacer.batch_txs()).enumerate() {
            let due = pacer.due(k as u64);
            let in_window = due >= warmup && due < window_end;
            for r in chunk {
                let i = t.txs.len() as u32;
                t.index.insert(r.id, i);
                t.txs.push(TxRecord {
                    cross: r.kind == TxKind::Cross,
                    in_window,
                    ..TxRecord::default()
                });
            }
        }
    }
    let batch_ids: Vec<std::ops::Range<usize>> = (0..bodies.len())
        .map(|k| k * pacer.batch_txs()..((k + 1) * pacer.batch_txs()).min(ready.len()))
        .collect();
    drop(ready);

    // Subscribe before the first transaction.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(read_events(http.clone(), tracker.clone(), ready_tx));
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .context("GET /events did not open within 30 s")?
        .context("event reader")?;

    // Submit open-loop.
    let procs = processes(target);
    let ticks_per_s = procstat::ticks_per_s();
    let limiter = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT_REQUESTS));
    let mut requests = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut cpu_before: Option<Vec<ProcSample>> = None;
    let mut cpu_after: Option<Vec<ProcSample>> = None;
    let mut window_start_ms = 0u64;
    let mut load_avg_1m = 0.0;
    let mut window_end_ms = 0u64;
    let mut max_lag_ms = 0u64;
    let mut last_progress = Instant::now();
    let window_s = (opts.warmup_s, total_s);
    for (k, body) in bodies.into_iter().enumerate() {
        let due = start + pacer.due(k as u64);
        tokio::time::sleep_until(due.into()).await;
        // Window edges: CPU samples and the wall clock the throughput is counted in.
        if cpu_before.is_none() && start.elapsed() >= warmup {
            cpu_before = Some(procstat::sample(&procs));
            window_start_ms = unix_ms();
            load_avg_1m = procstat::load_avg_1m();
        }
        if cpu_after.is_none() && start.elapsed() >= window_end {
            cpu_after = Some(procstat::sample(&procs));
            window_end_ms = unix_ms();
        }
        let permit = limiter
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        max_lag_ms = max_lag_ms.max(due.elapsed().as_millis() as u64);
        let ids = batch_ids[k].clone();
        {
            let now = unix_ms();
            let mut t = tracker.lock().expect("tracker");
            for r in &mut t.txs[ids.clone()] {
                r.submit_ms = now;
            }
        }
        let http = http.clone();
        let shared = tracker.clone();
        requests.spawn(async move {
            let answer = http.post("/tx/batch", body).await;
            let mut t = shared.lock().expect("tracker");
            record_answer(&mut t, ids, answer);
            drop(permit);
        });
        while requests.try_join_next().is_some() {}
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let t = tracker.lock().expect("tracker");
            progress(&s.name, "load ", &t, start, window_s);
        }
    }
    // The last batch is due just before the window ends.
    tokio::time::sleep_until((start + window_end).into()).await;
    if cpu_before.is_none() {
        cpu_before = Some(procstat::sample(&procs));
        window_start_ms = unix_ms();
        load_avg_1m = procstat::load_avg_1m();
    }
    if cpu_after.is_none() {
        cpu_after = Some(procstat::sample(&procs));
        window_end_ms = unix_ms();
    }
    while requests.join_next().await.is_some() {}

    // Drain: wait for the window's transactions.
    let drain_deadline = Instant::now() + Duration::from_secs(opts.drain_s);
    loop {
        let (pending, _) = tracker.lock().expect("tracker").window_done();
        if pending == 0 || Instant::now() >= drain_deadline {
            break;
        }
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let t = tracker.lock().expect("tracker");
            progress(&s.name, "drain", &t, start, window_s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    let _ = reader.await;
    if opts.progress {
        eprintln!();
    }

    // Memory: peak RSS of every process so far.
    let peak_rss: Vec<PeakRss> = procs
        .iter()
        .filter_map(|(name, role, shard, pid)| {
            Some(PeakRss {
                name: name.clone(),
                role: role.clone(),
                shard: *shard,
                kib: procstat::vm_hwm_kib(*pid)?,
            })
        })
        .collect();
    let (cpu_s_by_role, restarted) = procstat::cpu_s_by_role(
        cpu_before.as_deref().unwrap_or_default(),
        cpu_after.as_deref().unwrap_or_default(),
        ticks_per_s,
    );
    let t = tracker.lock().expect("tracker");
    Ok(summarize_run(
        s,
        opts,
        &t,
        Summary {
            window_ms: (window_start_ms, window_end_ms),
            cpu_s_by_role,
            restarted_processes: restarted,
            peak_rss,
            client_max_lag_ms: max_lag_ms,
            sign_s,
            batch_txs: pacer.batch_txs(),
            ceiling_tps,
            load_avg_1m,
        },
    ))
}

/// Applies a `POST /tx/batch` answer: each rejected transaction is counted by error code.
fn record_answer(
    t: &mut Tracker,
    ids: std::ops::Range<usize>,
    answer: anyhow::Result<(hyper::StatusCode, Bytes)>,
) {
    let reject_all = |t: &mut Tracker, code: String| {
        for r in &mut t.txs[ids.clone()] {
            r.rejected = true;
        }
        *t.rejected_by_code.entry(code).or_default() += ids.len() as u64;
    };
    let (status, body) = match answer {
        Ok(a) => a,
        Err(_) => return reject_all(t, "request_failed".into()),
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != hyper::StatusCode::OK {
        let code = v["error"]["code"]
            .as_str()
            .map_or_else(|| format!("http_{}", status.as_u16()), str::to_string);
        return reject_all(t, code);
    }
    for item in v["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(code) = item["error"]["code"].as_str() {
            let id: Option<Hash> = item["tx_id"].as_str().and_then(|s| s.parse().ok());
            if let Some(&i) = id.as_ref().and_then(|id| t.index.get(id)) {
                t.txs[i as usize].rejected = true;
            }
            *t.rejected_by_code.entry(code.to_string()).or_default() += 1;
        }
    }
}

/// Measurements of a run besides the tracker.
struct Summary {
    window_ms: (u64, u64),
    cpu_s_by_role: BTreeMap<String, f64>,
    restarted_processes: usize,
    peak_rss: Vec<PeakRss>,
    client_max_lag_ms: u64,
    sign_s: f64,
    batch_txs: usize,
    ceiling_tps: f64,
    load_avg_1m: f64,
}

fn summarize_run(s: &Scenario, opts: &RunOptions, t: &Tracker, m: Summary) -> ScenarioResult {
    let window: Vec<&TxRecord> = t
        .txs
        .iter()
        .filter(|r| r.in_window && r.submit_ms > 0)
        .collect();
    let submitted = window.len() as u64;
    let rejected = window.iter().filter(|r| r.rejected).count() as u64;
    let failed = window
        .iter()
        .filter(|r| !r.rejected && r.done_ms > 0 && r.failed)
        .count() as u64;
    let ok: Vec<&&TxRecord> = window
        .iter()
        .filter(|r| !r.rejected && r.done_ms > 0 && !r.failed)
        .collect();
    let completed = ok.len() as u64;
    let latency = |cross: Option<bool>| -> Vec<u64> {
        ok.iter()
            .filter(|r| cross.is_none_or(|c| r.cross == c))
            .map(|r| r.done_ms.saturating_sub(r.submit_ms))
            .collect()
    };
    let (intra, cross, all) = (latency(Some(false)), latency(Some(true)), latency(None));
    let (w0, w1) = m.window_ms;
    let window_s = (w1.saturating_sub(w0) as f64 / 1_000.0).max(0.001);
    let in_window = t
        .completions_ms
        .iter()
        .filter(|&&ms| ms >= w0 && ms < w1)
        .count() as f64;
    let sustained_tps = in_window / window_s;
    let per_1k = |cpu_s: f64| {
        if in_window > 0.0 {
            cpu_s * 1_000.0 / in_window
        } else {
            0.0
        }
    };
    let cpu_s_total: f64 = m.cpu_s_by_role.values().sum();
    let validators: Vec<u64> = m
        .peak_rss
        .iter()
        .filter(|p| p.role.starts_with("validator"))
        .map(|p| p.kib)
        .collect();
    ScenarioResult {
        name: s.name.clone(),
        scenario: s.clone(),
        warmup_s: opts.warmup_s,
        batch_txs: m.batch_txs as u64,
        sign_s: m.sign_s,
        submitted,
        accepted: submitted - rejected,
        rejected,
        rejected_by_code: t.rejected_by_code.clone(),
        completed,
        completed_intra: intra.len() as u64,
        completed_cross: cross.len() as u64,
        failed,
        unfinished: submitted - rejected - failed - completed,
        sustained_tps,
        fraction_of_ceiling: if m.ceiling_tps > 0.0 {
            sustained_tps / m.ceiling_tps
        } else {
            0.0
        },
        ceiling_tps: m.ceiling_tps,
        latency_intra: summarize(intra.clone()),
        latency_cross: summarize(cross.clone()),
        latency_all: summarize(all),
        histogram_intra: Histogram::of(&intra),
        histogram_cross: Histogram::of(&cross),
        client_max_lag_ms: m.client_max_lag_ms,
        events: t.events,
        lagged_events_skipped: t.lagged_skipped,
        stream_reconnects: t.reconnects,
        cpu_s_per_1k_tx_by_role: m
            .cpu_s_by_role
            .iter()
            .map(|(k, v)| (k.clone(), per_1k(*v)))
            .collect(),
        cpu_s_by_role: m.cpu_s_by_role,
        cpu_s_total,
        cpu_s_per_1k_tx_total: per_1k(cpu_s_total),
        peak_rss_validator_max_kib: validators.iter().copied().max().unwrap_or(0),
        peak_rss_validator_mean_kib: if validators.is_empty() {
            0
        } else {
            validators.iter().sum::<u64>() / validators.len() as u64
        },
        peak_rss: m.peak_rss,
        restarted_processes: m.restarted_processes as u64,
        load_avg_1m: m.load_avg_1m,
        reused_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u32) -> Hash {
        Hash::sha256(&i.to_be_bytes())
    }

    fn tracker(cross: &[bool]) -> Tracker {
        let mut t = Tracker::default();
        for (i, &c) in cross.iter().enumerate() {
            t.index.insert(h(i as u32), i as u32);
            t.txs.push(TxRecord {
                cross: c,
                in_window: true,
                submit_ms: 1_000,
                ..TxRecord::default()
            });
        }
        t
    }

    fn block(tx_ids: Vec<Hash>, failed: Vec<Hash>, origins: Vec<Hash>, at: u64) -> BlockEventData {
        BlockEventData {
            shard_id: vision_types::ShardId(0),
            height: 1,
            timestamp_ms: at,
            finalized_ms: at,
            tx_ids,
            failed_tx_ids: failed,
            completed_origin_tx_ids: origins,
        }
    }

    #[test]
    fn intra_completes_on_inclusion_cross_on_receipt() {
        let mut t = tracker(&[false, true, false, true]);
        t.on_block(&block(
            vec![h(0), h(1), h(2), h(3)],
            vec![h(2), h(3)],
            vec![],
            1_300,
        ));
        assert_eq!(t.txs[0].done_ms, 1_300);
        assert_eq!(t.txs[1].done_ms, 0, "cross-shard waits for its receipt");
        assert!(t.txs[2].failed && t.txs[2].done_ms == 1_300);
        assert!(
            t.txs[3].failed,
            "a cross-shard tx failing at the source is done"
        );
        t.on_block(&block(vec![h(99)], vec![], vec![h(1)], 2_500));
        assert_eq!(t.txs[1].done_ms, 2_500);
        // A repeated event changes nothing.
        t.on_block(&block(vec![], vec![], vec![h(1)], 9_000));
        assert_eq!(t.txs[1].done_ms, 2_500);
        assert_eq!(t.completions_ms.len(), 4);
        assert_eq!(t.events, 3);
    }

    #[test]
    fn answers_count_rejections_by_code() {
        let mut t = tracker(&[false, false, false]);
        let body = serde_json::json!({"success": true, "accepted": 1, "rejected": 1, "results": [
            {"tx_id": h(0).to_string(), "shard_id": 0},
            {"tx_id": h(1).to_string(), "error": {"code": "mempool_full", "message": "full"}},
        ]});
        record_answer(
            &mut t,
            0..2,
            Ok((hyper::StatusCode::OK, Bytes::from(body.to_string()))),
        );
        assert!(!t.txs[0].rejected && t.txs[1].rejected);
        record_answer(&mut t, 2..3, Err(anyhow::anyhow!("connection refused")));
        assert!(t.txs[2].rejected);
        assert_eq!(t.rejected_by_code["mempool_full"], 1);
        assert_eq!(t.rejected_by_code["request_failed"], 1);
        let mut t = tracker(&[false]);
        let err = serde_json::json!({"success": false, "error": {"code": "too_many_txs", "message": "x"}});
        record_answer(
            &mut t,
            0..1,
            Ok((
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                Bytes::from(err.to_string()),
            )),
        );
        assert_eq!(t.rejected_by_code["too_many_txs"], 1);
    }

    #[test]
    fn summary_counts_and_latencies() {
        let mut t = tracker(&[false, true, false, false]);
        t.txs[3].in_window = false;
        t.on_block(&block(vec![h(0), h(3)], vec![], vec![], 1_200));
        t.on_block(&block(vec![], vec![], vec![h(1)], 1_900));
        let s = &super::super::scenario::expand("smoke", &Default::default(), 5).expect("smoke")[0];
        let opts = RunOptions {
            warmup_s: 1,
            drain_s: 1,
            progress: false,
        };
        let r = summarize_run(
            s,
            &opts,
            &t,
            Summary {
                window_ms: (1_000, 2_000),
                cpu_s_by_role: BTreeMap::from([("validator".to_string(), 0.3)]),
                restarted_processes: 0,
                peak_rss: vec![PeakRss {
                    name: "v00".into(),
                    role: "validator".into(),
                    shard: Some(0),
                    kib: 1000,
                }],
                client_max_lag_ms: 3,
                sign_s: 0.1,
                batch_txs: 1,
                ceiling_tps: 30.0,
                load_avg_1m: 0.5,
            },
        );
        assert_eq!(
            (r.submitted, r.completed, r.failed, r.unfinished),
            (3, 2, 0, 1)
        );
        assert_eq!(r.latency_intra.as_ref().map(|l| l.p50_ms), Some(200));
        assert_eq!(r.latency_cross.as_ref().map(|l| l.max_ms), Some(900));
        // Three completions (the warm-up one too) in a one-second window.
        assert!((r.sustained_tps - 3.0).abs() < 1e-9);
        assert!((r.fraction_of_ceiling - 0.1).abs() < 1e-9);
        assert!((r.cpu_s_per_1k_tx_by_role["validator"] - 100.0).abs() < 1e-9);
        assert_eq!(r.peak_rss_validator_max_kib, 1000);
    }
}
