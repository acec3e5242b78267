//! `vision-node bench`: end-to-end throughput and latency of a devnet, measured from finality.
//!
//! For each scenario the bench starts its own devnet (this executable, `devnet --fresh`, as a
//! child process) or uses a running node (`--target`), signs every transaction before the
//! measured window, subscribes to `GET /events`, submits open-loop at the target rate with
//! `POST /tx/batch`, and matches finalized transaction ids: an intra-shard transfer is complete
//! when a block event includes it, a cross-shard one when a block event reports its receipt
//! applied at the destination. Latency is submit → the event's `finalized_ms` (one machine,
//! one clock). CPU time and peak memory come from `/proc` for every devnet process
//! (`processes.json`), the devnet supervisor and the client itself. The ceiling
//! ([`ceiling`]) is what signature verification alone would allow on this machine.
//!
//! Modules: [`scenario`] (named runs), [`runner`] (one run), [`launch`] (the devnet child),
//! [`workload`] (accounts, plan, signing), [`pacing`], [`sse`], [`http`], [`procstat`],
//! [`stats`], [`ceiling`], [`report`] (table, JSON, HTML).

pub mod ceiling;
pub mod http;
pub mod launch;
pub mod pacing;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sse;
pub mod stats;
pub mod workload;

use anyhow::{Context, bail};
use clap::Args;
use report::{BenchReport, FindMax, FindMaxStep};
use runner::{RunOptions, Target};
use scenario::{Overrides, Scenario};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// How long each ed25519 measurement (single, then batch) of the ceiling runs, in
/// milliseconds.
pub const VERIFY_MEASURE_MS: u64 = 1_000;
/// Most steps of a `--find-max` search.
pub const FIND_MAX_STEPS: usize = 8;
/// Least completed share of admitted transactions for a `--find-max` step to pass.
pub const FIND_MAX_MIN_COMPLETED: f64 = 0.95;
/// Least share of the target rate a `--find-max` step must sustain (below it the node falls
/// behind and its backlog grows, whatever the latency of the window's transactions).
pub const FIND_MAX_MIN_RATE_SHARE: f64 = 0.9;
/// Default window of a `--find-max` step, in seconds.
pub const FIND_MAX_STEP_S: u64 = 10;
/// First rate a `--find-max` search tries without `--rate`, tx/s.
pub const FIND_MAX_START_TPS: f64 = 50.0;

/// `vision-node bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario: single-shard, 4-shards-no-batch, 4-shards-batch-50, 4-shards-batch-100,
    /// 16-shards-batch-100, scale (1, 2, 4, 8 shards), smoke, or all (every one but smoke,
    /// with 20 s windows so it fits 15 minutes on 2 cores).
    #[arg(long, value_name = "NAME", default_value = "all")]
    pub scenario: String,
    /// Measured window of each run, in seconds [default: 30; 20 under all; 4 for smoke].
    #[arg(long, value_name = "N")]
    pub duration_s: Option<u64>,
    /// Target submission rate, transactions per second [default: 1000; 20 for smoke].
    #[arg(long, value_name = "TPS")]
    pub rate: Option<f64>,
    /// Share of cross-shard transfers, 0 to 1 [default: 0.5; 0 with one shard].
    #[arg(long, value_name = "FRACTION")]
    pub cross_ratio: Option<f64>,
    /// Validators per shard of the started devnets [default: 4; 3 for 16 shards, scale and
    /// smoke].
    #[arg(long, value_name = "N")]
    pub validators_per_shard: Option<u64>,
    /// Write every measurement as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report (inline SVG charts) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Use the running node whose API is at URL (http://HOST:PORT) instead of starting a
    /// devnet; --dir must then name its devnet directory (for the bench account keys).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Devnet directory: where started devnets live (deleted and regenerated per run), or
    /// with --target the running devnet's [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Search the highest rate the network sustains (at least 90 % of it, 95 % of the
    /// transactions complete) with P99 latency under --max-p99-ms (doubling from --rate,
    /// then bisecting; steps of --duration-s, default 10 s) instead of one run per scenario.
    #[arg(long)]
    pub find_max: bool,
    /// The P99 bound of --find-max, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    pub max_p99_ms: u64,
    /// Load before each measured window, in seconds [default: 3; 1 for smoke].
    #[arg(long, value_name = "N")]
    pub warmup_s: Option<u64>,
    /// Longest wait after a window for its transactions to complete, in seconds.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub drain_s: u64,
    /// Start devnets even when their estimated peak memory exceeds what the machine has
    /// available (the run is still stopped if available memory falls under 1 GiB).
    #[arg(long)]
    pub skip_memory_check: bool,
}

fn say(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

/// Where runs' devnets live.
struct Place {
    /// The devnet directory.
    dir: PathBuf,
    /// The devnet output file.
    log: PathBuf,
    /// A temporary base to delete at the end.
    temp: Option<PathBuf>,
}

impl Place {
    fn new(dir: Option<&Path>) -> anyhow::Result<Place> {
        Ok(match dir {
            Some(d) => {
                let name = d
                    .file_name()
                    .map_or_else(|| "devnet".into(), |n| n.to_string_lossy().to_string());
                let parent = d.parent().unwrap_or(Path::new("."));
                Place {
                    dir: d.to_path_buf(),
                    log: parent.join(format!("{name}-devnet.log")),
                    temp: None,
                }
            }
            None => {
                let base = std::env::temp_dir().join(format!(
                    "vision-bench-{}-{}",
                    std::process::id(),
                    runner::unix_ms()
                ));
                std::fs::create_dir_all(&base)
                    .with_context(|| format!("creating {}", base.display()))?;
                Place {
                    dir: base.join("devnet"),
                    log: base.join("devnet.log"),
                    temp: Some(base),
                }
            }
        })
    }
}

impl BenchArgs {
    fn runs(&self) -> anyhow::Result<Vec<Scenario>> {
        let o = Overrides {
            duration_s: self.duration_s.or(self.find_max.then_some(FIND_MAX_STEP_S)),
            rate_tps: self.rate,
            cross_ratio: self.cross_ratio,
            validators_per_shard: self.validators_per_shard,
        };
        if let Some(r) = self.rate
            && !(r > 0.0 && r.is_finite())
        {
            bail!("--rate {r}: must be positive");
        }
        if let Some(c) = self.cross_ratio
            && !(0.0..=1.0).contains(&c)
        {
            bail!("--cross-ratio {c}: must be between 0 and 1");
        }
        if self.duration_s == Some(0) {
            bail!("--duration-s must be at least 1");
        }
        if self.scenario == "all" {
            let mut out = Vec::new();
            for name in scenario::ALL {
                out.extend(
                    scenario::expand(name, &o, scenario::ALL_DURATION_S).unwrap_or_default(),
                );
            }
            return Ok(out);
        }
        scenario::expand(&self.scenario, &o, scenario::DEFAULT_DURATION_S).with_context(|| {
            format!(
                "--scenario {:?}: expected all or one of {}",
                self.scenario,
                scenario::NAMES.join(", ")
            )
        })
    }

    fn options(&self, s: &Scenario) -> RunOptions {
        let smoke = s.name == "smoke";
        RunOptions {
            warmup_s: self.warmup_s.unwrap_or(if smoke { 1 } else { 3 }),
            drain_s: self.drain_s,
            progress: true,
        }
    }

    /// Runs `bench`.
    pub fn run(self) -> anyhow::Result<()> {
        let runs = self.runs()?;
        if self.target.is_some() {
            if self.dir.is_none() {
                bail!("--target needs --dir: the devnet directory holding accounts.json");
            }
            if runs.len() != 1 {
                bail!(
                    "--target runs one scenario's load on the target's network; --scenario \
                     {} has {} runs",
                    self.scenario,
                    runs.len()
                );
            }
        }
        if self.find_max && runs.len() != 1 {
            bail!(
                "--find-max searches one scenario; --scenario {} has {} runs",
                self.scenario,
                runs.len()
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        say(format!(
            "measuring ed25519 verification on {cores} cores ({} ms single, {} ms batch)",
            VERIFY_MEASURE_MS, VERIFY_MEASURE_MS
        ));
        let rates = ceiling::measure(cores, Duration::from_millis(VERIFY_MEASURE_MS));
        let default_v = self
            .validators_per_shard
            .unwrap_or(scenario::DEFAULT_VALIDATORS_PER_SHARD);
        let mut report = BenchReport {
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix_ms: runner::unix_ms(),
            cores,
            target: self
                .target
                .clone()
                .unwrap_or_else(|| "self-started devnets (127.0.0.1)".into()),
            ceiling: ceiling::ceiling(&rates, &ceiling::VerifyCount::for_committee(default_v)),
            results: Vec::new(),
            find_max: Vec::new(),
            notes: Vec::new(),
        };
        say(report.ceiling.formula.clone());
        if self.scenario == "all" && self.duration_s.is_none() {
            report.notes.push(format!(
                "all: windows shortened to {} s per run (plus warm-up and drain) so the whole \
                 set fits 15 minutes on a 2-core machine",
                scenario::ALL_DURATION_S
            ));
        }
        report.notes.push(
            "latency = POST /tx/batch sent -> the API node's finalized_ms of the block that \
             completed the transfer (intra: its own block; cross: the destination block \
             applying its receipt); sustained tx/s = completions of any transaction whose \
             finalized_ms falls in the window / window length"
                .into(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the bench runtime")?;
        let outcome = runtime.block_on(self.run_all(&runs, &rates, &mut report));
        print!("{}", report::render_table(&report));
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
            say(format!("wrote {}", path.display()));
        }
        if let Some(path) = &self.report {
            std::fs::write(path, report::render_html(&report))
                .with_context(|| format!("writing {}", path.display()))?;
            say(format!("wrote {}", path.display()));
        }
        outcome
    }

    async fn run_all(
        &self,
        runs: &[Scenario],
        rates: &ceiling::VerifyRates,
        report: &mut BenchReport,
    ) -> anyhow::Result<()> {
        let place = match &self.target {
            Some(_) => None,
            None => Some(Place::new(self.dir.as_deref())?),
        };
        let mut failures = Vec::new();
        for s in runs {
            let ceiling_tps = ceiling::ceiling(
                rates,
                &ceiling::VerifyCount::for_committee(s.validators_per_shard),
            )
            .ceiling_tps;
            if let Some(prev) = report
                .results
                .iter()
                .find(|r| r.reused_from.is_none() && scenario::same_run(&r.scenario, s))
                .cloned()
            {
                say(format!(
                    "{}: same network and load as {}; reusing its result",
                    s.name, prev.name
                ));
                report
                    .notes
                    .push(format!("{} reuses the {} run", s.name, prev.name));
                let mut r = prev.clone();
                r.reused_from = Some(prev.name.clone());
                r.name = s.name.clone();
                r.scenario.name = s.name.clone();
                report.results.push(r);
                continue;
            }
            let outcome = match (&self.target, &place) {
                (Some(url), _) => {
                    let http = http::HttpClient::new(url)?;
                    let dir = self.dir.clone().unwrap_or_default();
                    let target = Target {
                        http: &http,
                        dir: &dir,
                        supervisor_pid: None,
                    };
                    self.measure(&target, s, ceiling_tps, report).await
                }
                (None, Some(place)) => {
                    let fits = if self.skip_memory_check {
                        Ok(())
                    } else {
                        launch::check_memory(
                            s.shards * s.validators_per_shard,
                            procstat::mem_available_mib(),
                        )
                    };
                    if let Err(e) = fits {
                        say(format!("{}: skipped: {e:#}", s.name));
                        report.notes.push(format!("{} skipped: {e:#}", s.name));
                        continue;
                    }
                    self.on_own_devnet(place, s, ceiling_tps, report).await
                }
                (None, None) => unreachable!("a place without a target"),
            };
            if let Err(e) = outcome {
                say(format!("{}: failed: {e:#}", s.name));
                report.notes.push(format!("{} failed: {e:#}", s.name));
                failures.push(s.name.clone());
                if format!("{e:#}").contains("interrupted") {
                    break;
                }
            }
        }
        if let Some(place) = &place
            && let Some(temp) = &place.temp
        {
            if failures.is_empty() {
                let _ = std::fs::remove_dir_all(temp);
            } else {
                say(format!("kept {} for inspection", temp.display()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{} run(s) failed: {}", failures.len(), failures.join(", "))
        }
    }

    /// Starts the devnet of `s`, measures, stops it.
    async fn on_own_devnet(
        &self,
        place: &Place,
        s: &Scenario,
        ceiling_tps: f64,
        report: &mut BenchReport,
    ) -> anyhow::Result<()> {
        say(format!(
            "{}: starting a devnet of {} shards x {} validators (batch size {}) in {} (output: {})",
            s.name,
            s.shards,
            s.validators_per_shard,
            s.batch_size,
            place.dir.display(),
            place.log.display()
        ));
        let mut devnet = launch::Launched::start(s, &place.dir, &place.log)?;
        let http = http::HttpClient::new(&devnet.url)?;
        let pid = devnet.pid();
        let measured = tokio::select! {
            r = async {
                devnet.wait_ready(&http, s.shards).await?;
                say(format!("{}: devnet up; API at {}", s.name, http.base()));
                let target = Target { http: &http, dir: &place.dir, supervisor_pid: pid };
                self.measure(&target, s, ceiling_tps, report).await
            } => r,
            low = memory_watch() => Err(anyhow::anyhow!(
                "stopped: the machine has only {low} MiB of memory left (under {} MiB)",
                launch::MIN_MEM_AVAILABLE_MIB
            )),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        say(format!("{}: stopping the devnet", s.name));
        let stopped = devnet.stop().await;
        measured?;
        stopped
    }

    /// One run, or a `--find-max` search, against a ready target.
    async fn measure(
        &self,
        target: &Target<'_>,
        s: &Scenario,
        ceiling_tps: f64,
        report: &mut BenchReport,
    ) -> anyhow::Result<()> {
        let opts = self.options(s);
        if !self.find_max {
            let r = runner::run(target, s, &opts, ceiling_tps).await?;
            report.results.push(r);
            return Ok(());
        }
        let mut steps: Vec<FindMaxStep> = Vec::new();
        let mut search = RateSearch::new(self.rate.unwrap_or(FIND_MAX_START_TPS));
        while let Some(rate) = search.next_rate() {
            if steps.len() >= FIND_MAX_STEPS {
                break;
            }
            let mut step = s.clone();
            step.rate_tps = rate;
            step.name = format!("{}@{rate:.0}", s.name);
            let r = runner::run(target, &step, &opts, ceiling_tps).await?;
            let completed_ratio = if r.accepted > 0 {
                r.completed as f64 / r.accepted as f64
            } else {
                0.0
            };
            let p99_ms = r.latency_all.as_ref().map(|l| l.p99_ms);
            let ok = p99_ms.is_some_and(|p| p <= self.max_p99_ms)
                && completed_ratio >= FIND_MAX_MIN_COMPLETED
                && r.sustained_tps >= FIND_MAX_MIN_RATE_SHARE * rate
                && r.rejected * 100 <= r.submitted;
            say(format!(
                "{}: {rate:.0} tx/s -> {:.1} tx/s sustained, P99 {} ms, {:.1}% completed: {}",
                s.name,
                r.sustained_tps,
                p99_ms.map_or_else(|| "-".into(), |p| p.to_string()),
                completed_ratio * 100.0,
                if ok { "ok" } else { "over" }
            ));
            steps.push(FindMaxStep {
                rate_tps: rate,
                sustained_tps: r.sustained_tps,
                p99_ms,
                completed_ratio,
                ok,
            });
            search.record(rate, ok);
            report.results.push(r);
        }
        let best = steps
            .iter()
            .filter(|st| st.ok)
            .max_by(|a, b| a.rate_tps.total_cmp(&b.rate_tps));
        report.find_max.push(FindMax {
            scenario: s.name.clone(),
            max_p99_ms: self.max_p99_ms,
            min_completed_ratio: FIND_MAX_MIN_COMPLETED,
            min_rate_share: FIND_MAX_MIN_RATE_SHARE,
            max_rate_tps: best.map(|b| b.rate_tps),
            max_sustained_tps: best.map(|b| b.sustained_tps),
            steps,
        });
        Ok(())
    }
}

/// Resolves (with the available MiB) once the machine's available memory falls under
/// [`launch::MIN_MEM_AVAILABLE_MIB`].
async fn memory_watch() -> u64 {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(m) = procstat::mem_available_mib()
            && m < launch::MIN_MEM_AVAILABLE_MIB
        {
            return m;
        }
    }
}

/// The rate search of `--find-max` (pure): double while steps pass, then bisect between the
/// highest pass and the lowest failure until they are within 10 %.
#[derive(Clone, Debug, PartialEq)]
pub struct RateSearch {
    next: Option<f64>,
    best_ok: Option<f64>,
    lowest_bad: Option<f64>,
}

impl RateSearch {
    /// A search starting at `start_tps`.
    pub fn new(start_tps: f64) -> RateSearch {
        RateSearch {
            next: Some(start_tps.max(1.0)),
            best_ok: None,
            lowest_bad: None,
        }
    }

    /// The next rate to try, `None` when done.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records the outcome of trying `rate`.
    pub fn record(&mut self, rate: f64, ok: bool) {
        if ok {
            self.best_ok = Some(self.best_ok.map_or(rate, |b| b.max(rate)));
        } else {
            self.lowest_bad = Some(self.lowest_bad.map_or(rate, |b| b.min(rate)));
        }
        self.next = match (self.best_ok, self.lowest_bad) {
            (Some(ok), None) => Some(ok * 2.0),
            (None, Some(bad)) if bad / 2.0 >= 1.0 && bad > 2.0 => Some((bad / 2.0).floor()),
            (None, Some(_)) => None,
            (Some(ok), Some(bad)) if bad > ok * 1.1 => Some(((ok + bad) / 2.0).round()),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_search_doubles_then_bisects() {
        let mut s = RateSearch::new(100.0);
        let capacity = 700.0;
        let mut tried = Vec::new();
        while let Some(r) = s.next_rate() {
            tried.push(r);
            s.record(r, r <= capacity);
            assert!(tried.len() < 20, "terminates: {tried:?}");
        }
        assert_eq!(&tried[..4], &[100.0, 200.0, 400.0, 800.0]);
        let best = tried
            .iter()
            .copied()
            .filter(|&r| r <= capacity)
            .fold(0.0, f64::max);
        assert!(
            best >= capacity / 1.1 * 0.95 && best <= capacity,
            "{tried:?}"
        );
        // Failing from the start halves down.
        let mut s = RateSearch::new(100.0);
        s.record(100.0, false);
        assert_eq!(s.next_rate(), Some(50.0));
        s.record(50.0, true);
        assert_eq!(s.next_rate(), Some(75.0));
    }

    #[test]
    fn argument_checks() {
        let args = |scenario: &str| BenchArgs {
            scenario: scenario.into(),
            duration_s: None,
            rate: None,
            cross_ratio: None,
            validators_per_shard: None,
            json: None,
            report: None,
            target: None,
            dir: None,
            find_max: false,
            max_p99_ms: 3_000,
            warmup_s: None,
            drain_s: 30,
            skip_memory_check: false,
        };
        let all = args("all").runs().expect("all");
        assert_eq!(all.len(), 9, "5 scenarios + 4 scale steps");
        assert!(all.iter().all(|s| s.duration_s == scenario::ALL_DURATION_S));
        assert!(all.iter().all(|s| s.name != "smoke"));
        assert!(args("bogus").runs().is_err());
        let mut a = args("smoke");
        a.rate = Some(-1.0);
        assert!(a.runs().is_err());
        a.rate = None;
        a.cross_ratio = Some(1.5);
        assert!(a.runs().is_err());
        let a = args("smoke");
        assert_eq!(a.options(&a.runs().expect("smoke")[0]).warmup_s, 1);
    }
}
