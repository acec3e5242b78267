//! Starting a devnet for a scenario (this executable, `devnet --fresh`, as a child process),
//! waiting until its API answers and every shard finalizes, and stopping it.

use super::{http::HttpClient, scenario::Scenario};
use anyhow::{Context, bail};
use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Longest wait for a started devnet's API to answer and every shard to finalize a block, in
/// seconds (generous: a loaded 2-core machine starting 48 processes).
pub const STARTUP_TIMEOUT_S: u64 = 300;
/// Longest wait for the devnet to stop after SIGINT before it is killed, in seconds.
pub const STOP_TIMEOUT_S: u64 = 60;
/// Bench accounts generated in a bench devnet.
pub const BENCH_ACCOUNTS: usize = 2_000;
/// Peak RSS of one devnet process with no peers, in MiB (measured by this bench, with a
/// margin for heavier load: see [`estimate_devnet_mib`]).
pub const EST_PROCESS_BASE_MIB: u64 = 100;
/// Extra peak RSS of one devnet process per process in the network, in KiB (measured, with a
/// margin).
pub const EST_PROCESS_PER_PEER_KIB: u64 = 1_536;
/// A started devnet must leave at least this much memory available, in MiB; below it the run
/// is stopped (a shared machine must not reach the OOM killer).
pub const MIN_MEM_AVAILABLE_MIB: u64 = 1_024;

/// Estimated peak memory of a devnet of `validators` validators plus its API node, in MiB.
///
/// Measured with this bench (2 cores, 23 GiB, November 2026, 1,000 tx/s offered): a
/// validator's peak RSS is about 60 MiB plus about 1.1 MiB per process in the network, for
/// the p2p channel mailboxes the network preallocates per peer (4 validators: 70 MiB each;
/// 12: 67; 16: 74; 24: 82; 48: 117), and grows with load (104 MiB at 2,000 tx/s on 4 × 4).
/// The estimate takes 100 MiB + 1.5 MiB per process, per process: 16 shards × 3 validators
/// come to about 8.3 GiB.
pub fn estimate_devnet_mib(validators: u64) -> u64 {
    let n = validators + 1;
    n * (EST_PROCESS_BASE_MIB + EST_PROCESS_PER_PEER_KIB * n / 1024)
}

/// Refuses a devnet whose estimated peak memory exceeds what the machine has available
/// (less [`MIN_MEM_AVAILABLE_MIB`]).
pub fn check_memory(validators: u64, available_mib: Option<u64>) -> anyhow::Result<()> {
    let Some(available) = available_mib else {
        return Ok(());
    };
    let need = estimate_devnet_mib(validators);
    if need + MIN_MEM_AVAILABLE_MIB > available {
        bail!(
            "not started: a devnet of {validators} validators needs about {:.1} GiB at peak \
             (estimated: {EST_PROCESS_BASE_MIB} MiB + {EST_PROCESS_PER_PEER_KIB} KiB per \
             network process, per process) and this machine has {:.1} GiB available; use a \
             bigger machine, fewer validators per shard, or --skip-memory-check",
            need as f64 / 1024.0,
            available as f64 / 1024.0
        );
    }
    Ok(())
}

/// A running devnet started by the bench. Dropping it kills it (SIGKILL; its validators exit
/// when their supervisor is gone); [`Launched::stop`] stops it cleanly.
pub struct Launched {
    child: Option<Child>,
    /// The devnet directory.
    pub dir: PathBuf,
    /// The devnet's output (its supervisor's stdout and stderr).
    pub log: PathBuf,
    /// The API's base URL.
    pub url: String,
}

impl Drop for Launched {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A base port with `n` free consecutive ports on 127.0.0.1, avoiding `avoid`.
pub fn free_base_port(n: u16, avoid: u16) -> anyhow::Result<u16> {
    let start = 20_000 + (std::process::id() % 1_500) as u16 * 20;
    let mut base = start;
    loop {
        let range = base..base.saturating_add(n);
        if !range.contains(&avoid)
            && range
                .clone()
                .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return Ok(base);
        }
        base = if base > 60_000 { 20_000 } else { base + n + 11 };
        if base == start {
            bail!("no {n} free consecutive ports on 127.0.0.1");
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the devnet binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `devnet` command line of a scenario.
pub fn devnet_args(s: &Scenario, dir: &Path, base_port: u16, api_port: u16) -> Vec<String> {
    vec![
        "devnet".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--fresh".into(),
        "--shards".into(),
        s.shards.to_string(),
        "--validators-per-shard".into(),
        s.validators_per_shard.to_string(),
        "--base-port".into(),
        base_port.to_string(),
        "--api-port".into(),
        api_port.to_string(),
        "--bench-accounts".into(),
        BENCH_ACCOUNTS.to_string(),
        "--chain-id".into(),
        "vision-bench".into(),
        "--batch-size".into(),
        s.batch_size.to_string(),
        "--batch-timeout-ms".into(),
        s.batch_timeout_ms.to_string(),
        "--async-crosslinks-enabled".into(),
        s.async_crosslinks.to_string(),
    ]
}

impl Launched {
    /// Starts the devnet of `s` in `dir` (deleted and regenerated), logging to `log`.
    pub fn start(s: &Scenario, dir: &Path, log: &Path) -> anyhow::Result<Launched> {
        let validators =
            u16::try_from(s.shards * s.validators_per_shard).context("too many validators")?;
        // The validators' p2p ports, the API node's p2p port, its HTTP port, then each
        // validator's own HTTP port (`devnet` gives validator i the API port + 1 + i).
        let base_port = free_base_port(2 * validators + 2, 0)?;
        let api_port = base_port + validators + 1;
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let exe = std::env::current_exe().context("locating the vision-node executable")?;
        let child = Command::new(exe)
            .args(devnet_args(s, dir, base_port, api_port))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the devnet")?;
        Ok(Launched {
            child: Some(child),
            dir: dir.to_path_buf(),
            log: log.to_path_buf(),
            url: format!("http://127.0.0.1:{api_port}"),
        })
    }

    /// The devnet supervisor's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the devnet's output (for error messages).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "the devnet exited ({status}) while starting; its output ({}):\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until `GET /health` answers and every one of `shards` shards finalized a block.
    pub async fn wait_ready(&mut self, http: &HttpClient, shards: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(STARTUP_TIMEOUT_S);
        loop {
            self.check_running()?;
            if let Ok(status) = http.get_json("/status").await {
                let heads = status["shards"].as_array().cloned().unwrap_or_default();
                let live = heads
                    .iter()
                    .filter(|h| h["height"].as_u64().unwrap_or(0) >= 1)
                    .count() as u64;
                if live >= shards {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the devnet's API at {} did not report {shards} finalizing shards within \
                     {STARTUP_TIMEOUT_S} s; its output ({}):\n{}",
                    self.url,
                    self.log.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops the devnet: SIGINT, then SIGKILL after [`STOP_TIMEOUT_S`].
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let deadline = Instant::now() + Duration::from_secs(STOP_TIMEOUT_S);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the devnet did not stop within {STOP_TIMEOUT_S} s of SIGINT; killed it");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_command_line() {
        let s = &super::super::scenario::expand("4-shards-no-batch", &Default::default(), 10)
            .expect("known")[0];
        let a = devnet_args(s, Path::new("/tmp/x"), 21000, 3031).join(" ");
        for want in [
            "devnet --dir /tmp/x --fresh",
            "--shards 4",
            "--validators-per-shard 4",
            "--base-port 21000",
            "--api-port 3031",
            "--batch-size 1",
            "--batch-timeout-ms 500",
            "--async-crosslinks-enabled true",
        ] {
            assert!(a.contains(want), "{a} lacks {want}");
        }
    }

    #[test]
    fn memory_estimate_and_check() {
        assert_eq!(estimate_devnet_mib(4), 5 * (100 + 7));
        // 16 x 3 validators: about 8.3 GiB, within a 23 GiB machine, not a 4 GiB one.
        assert_eq!(estimate_devnet_mib(48), 49 * (100 + 73));
        assert!(check_memory(48, Some(20_000)).is_ok());
        let e = check_memory(48, Some(4_000)).expect_err("too big");
        assert!(e.to_string().contains("48 validators"), "{e}");
        assert!(
            check_memory(48, None).is_ok(),
            "unknown memory: not refused"
        );
    }

    #[test]
    fn ports() {
        let p = free_port().expect("a port");
        let b = free_base_port(8, p).expect("ports");
        assert!(!(b..b + 8).contains(&p));
    }
}
