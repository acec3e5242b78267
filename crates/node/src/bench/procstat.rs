//! CPU time and peak memory of processes from `/proc` (Linux), and the devnet's
//! `processes.json`.

use serde::Deserialize;
use std::{collections::BTreeMap, path::Path};

/// One line of the devnet's `processes.json` (fields the bench does not need are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProcessInfo {
    /// Process name (`v00`, `api`, ...).
    pub name: String,
    /// Its role (`validator`, `api`, ...).
    pub role: String,
    /// Its shard (`u32::MAX` or absent when it has none).
    #[serde(default)]
    pub shard: Option<u32>,
    /// Whether it is in the beacon committee.
    #[serde(default)]
    pub beacon: bool,
    /// Its pid while running.
    pub pid: Option<u32>,
}

impl ProcessInfo {
    /// The role the report groups by: `validator+beacon` for beacon members, else `role`.
    pub fn report_role(&self) -> String {
        if self.role == "validator" && self.beacon {
            "validator+beacon".into()
        } else {
            self.role.clone()
        }
    }
}

/// Parses `processes.json`.
pub fn parse_processes(text: &str) -> anyhow::Result<Vec<ProcessInfo>> {
    Ok(serde_json::from_str(text)?)
}

/// Reads `DIR/processes.json`.
pub fn read_processes(dir: &Path) -> anyhow::Result<Vec<ProcessInfo>> {
    let path = dir.join(crate::devnet::PROCESSES_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    parse_processes(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `utime + stime` (clock ticks) from the text of `/proc/<pid>/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of the whole line; the rest starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` (peak resident set, KiB) from the text of `/proc/<pid>/status`.
pub fn parse_status_vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// CPU time of `pid` so far (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Peak resident set of `pid`, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    parse_status_vm_hwm_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `MemAvailable` (KiB) from the text of `/proc/meminfo`.
pub fn parse_meminfo_available_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Memory the machine can still give out without swapping, in MiB (`None` if unreadable).
pub fn mem_available_mib() -> Option<u64> {
    parse_meminfo_available_kib(&std::fs::read_to_string("/proc/meminfo").ok()?).map(|k| k / 1024)
}

/// The 1-minute load average from the text of `/proc/loadavg`.
pub fn parse_loadavg_1m(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// This machine's 1-minute load average (0 if unreadable).
pub fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg_1m(&t))
        .unwrap_or(0.0)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_s() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// One measured process: identity and CPU ticks at a point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// Name (`v00`, `api`, `supervisor`, `bench-client`).
    pub name: String,
    /// Report role.
    pub role: String,
    /// Shard, if any.
    pub shard: Option<u32>,
    /// Pid.
    pub pid: u32,
    /// CPU ticks so far.
    pub cpu_ticks: u64,
}

/// Samples every listed process that is running (those whose `/proc` entry vanished are left
/// out).
pub fn sample(procs: &[(String, String, Option<u32>, u32)]) -> Vec<ProcSample> {
    procs
        .iter()
        .filter_map(|(name, role, shard, pid)| {
            Some(ProcSample {
                name: name.clone(),
                role: role.clone(),
                shard: *shard,
                pid: *pid,
                cpu_ticks: cpu_ticks(*pid)?,
            })
        })
        .collect()
}

/// CPU seconds per role between two samples. A process is counted only if the same pid is in
/// both (a restarted process is counted from its restart; the count of such is returned).
pub fn cpu_s_by_role(
    before: &[ProcSample],
    after: &[ProcSample],
    ticks_per_s: u64,
) -> (BTreeMap<String, f64>, usize) {
    let mut out = BTreeMap::new();
    let mut restarted = 0;
    for a in after {
        let start = match before.iter().find(|b| b.name == a.name) {
            Some(b) if b.pid == a.pid => b.cpu_ticks,
            Some(_) => {
                restarted += 1;
                0
            }
            None => 0,
        };
        *out.entry(a.role.clone()).or_insert(0.0) +=
            a.cpu_ticks.saturating_sub(start) as f64 / ticks_per_s.max(1) as f64;
    }
    (out, restarted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let line = "4242 (vision (node) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 \
                    9 0 12345 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0";
        assert_eq!(parse_stat_cpu_ticks(line), Some(175));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        // This process.
        assert!(cpu_ticks(std::process::id()).is_some());
    }

    #[test]
    fn status_peak_rss() {
        let s = "Name:\tvision-node\nVmPeak:\t  999 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_status_vm_hwm_kib(s), Some(51_234));
        assert_eq!(parse_status_vm_hwm_kib("Name: x\n"), None);
        assert!(vm_hwm_kib(std::process::id()).is_some_and(|k| k > 0));
        assert!(ticks_per_s() > 0);
        assert_eq!(parse_loadavg_1m("3.99 4.34 5.63 3/912 21886\n"), Some(3.99));
        assert_eq!(parse_loadavg_1m(""), None);
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(parse_meminfo_available_kib(meminfo), Some(20_480_000));
        assert_eq!(parse_meminfo_available_kib("MemTotal: 1 kB\n"), None);
        assert!(mem_available_mib().is_some_and(|m| m > 0));
    }

    #[test]
    fn processes_file_and_roles() {
        let text = r#"[
            {"name": "v00", "role": "validator", "shard": 0, "beacon": true, "pid": 10,
             "p2p_address": "127.0.0.1:1", "state": "running"},
            {"name": "v01", "role": "validator", "shard": 0, "beacon": false, "pid": null},
            {"name": "api", "role": "api", "pid": 12}
        ]"#;
        let p = parse_processes(text).expect("parse");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].report_role(), "validator+beacon");
        assert_eq!(p[1].report_role(), "validator");
        assert_eq!(p[1].pid, None);
        assert_eq!(p[2].report_role(), "api");
        assert_eq!(p[2].shard, None);
    }

    #[test]
    fn cpu_by_role_handles_restarts() {
        let s = |name: &str, role: &str, pid: u32, t: u64| ProcSample {
            name: name.into(),
            role: role.into(),
            shard: None,
            pid,
            cpu_ticks: t,
        };
        let before = [s("v00", "validator", 1, 100), s("v01", "validator", 2, 50)];
        let after = [
            s("v00", "validator", 1, 300),
            s("v01", "validator", 9, 40),
            s("api", "api", 3, 100),
        ];
        let (by_role, restarted) = cpu_s_by_role(&before, &after, 100);
        assert_eq!(restarted, 1);
        assert!((by_role["validator"] - 2.4).abs() < 1e-9);
        assert!((by_role["api"] - 1.0).abs() < 1e-9);
    }
}
