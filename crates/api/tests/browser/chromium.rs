//! Headless Chromium for tests: load a URL, let its scripts run, and return the serialized
//! DOM (and optionally a PNG screenshot of the same load).
//!
//! Self-contained (std only, blocking) so another test crate can reuse it as is:
//!
//! ```ignore
//! #[path = "../../api/tests/browser/chromium.rs"]
//! mod chromium;
//! let browser = chromium::Chromium::find(&work_dir)?;
//! let dom = browser.render_until(&url, None, |dom| dom.contains("data-loaded=\"true\""))?;
//! ```
//!
//! The binary is `$VISION_CHROMIUM` or else `/usr/bin/chromium` (Debian's package `chromium`,
//! which `scripts/test` installs). Every run gets a fresh profile directory, runs with the
//! flags a closed network needs (no background networking, component updates, sync or QUIC),
//! is bounded by a wall-clock timeout, and its whole process group is killed when it ends or
//! times out. Call it from a blocking context (`tokio::task::spawn_blocking` in async tests):
//! it waits for the browser, and a server on the same thread would never answer.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// The environment variable that names the Chromium binary.
pub const CHROMIUM_ENV: &str = "VISION_CHROMIUM";

/// Where Debian's `chromium` package puts the binary.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Numbers the runs of this process, so each gets its own files.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// The flags of every headless run: no sandbox (tests run as root), no GPU, nothing that
/// reaches the network on its own.
pub const HEADLESS_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
];

/// A headless Chromium and where its runs keep their files.
#[derive(Clone, Debug)]
pub struct Chromium {
    /// The browser binary.
    pub binary: PathBuf,
    /// Profiles (removed after each run), captured output and screenshots go here.
    pub work_dir: PathBuf,
    /// Wall-clock bound of one run; the browser is killed beyond it.
    pub timeout: Duration,
    /// Virtual time the first run gives the page's scripts (`--virtual-time-budget`), in ms.
    pub budget_ms: u64,
    /// Most runs [`Chromium::render_until`] makes (the budget doubles after each).
    pub attempts: u32,
    /// Window size in CSS pixels (layout and screenshots).
    pub window: (u32, u32),
}

impl Chromium {
    /// The browser of `$VISION_CHROMIUM` or `/usr/bin/chromium`, keeping its files under
    /// `work_dir` (created if missing). Defaults: 30 s per run, 3 s of virtual time doubling
    /// over at most 4 runs, a 1280×1800 window. The error says how to install it: a test
    /// that needs a browser fails rather than skips.
    pub fn find(work_dir: &Path) -> Result<Self, String> {
        let binary = std::env::var_os(CHROMIUM_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
        if !binary.is_file() {
            return Err(format!(
                "no Chromium at {} (set {CHROMIUM_ENV} to another binary): scripts/test installs \
                 it on Debian (apt-get install --no-install-recommends chromium)",
                binary.display()
            ));
        }
        fs::create_dir_all(work_dir)
            .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
        Ok(Chromium {
            binary,
            work_dir: work_dir.to_path_buf(),
            timeout: Duration::from_secs(30),
            budget_ms: 3_000,
            attempts: 4,
            window: (1280, 1800),
        })
    }

    /// One load of `url`: the DOM as serialized after `budget_ms` of virtual time, and a
    /// screenshot of the same load written to `screenshot` when given.
    pub fn render(
        &self,
        url: &str,
        budget_ms: u64,
        screenshot: Option<&Path>,
    ) -> Result<String, String> {
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("chromium-{}-{run}", std::process::id());
        let profile = self.work_dir.join(format!("{tag}.profile"));
        let out_path = self.work_dir.join(format!("{tag}.stdout"));
        let err_path = self.work_dir.join(format!("{tag}.stderr"));
        let file = |p: &Path| fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut cmd = Command::new(&self.binary);
        cmd.args(HEADLESS_ARGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg(format!("--window-size={},{}", self.window.0, self.window.1));
        if let Some(png) = screenshot {
            cmd.arg(format!("--screenshot={}", png.display()));
        }
        cmd.arg("--dump-dom")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(file(&out_path)?)
            .stderr(file(&err_path)?)
            // Its own process group, so the browser's helpers die with it.
            .process_group(0);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= self.timeout => break Err("timed out"),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break Err("could not be waited for"),
            }
        };
        kill_group(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir_all(&profile);
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        let fail = |what: String| {
            format!(
                "chromium {what} after {:?} loading {url}; its stderr ends:\n{}",
                started.elapsed(),
                tail(&stderr, 30)
            )
        };
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(fail(format!("exited with {s}"))),
            Err(why) => return Err(fail(why.to_string())),
        }
        if let Some(png) = screenshot.filter(|p| !p.is_file()) {
            return Err(fail(format!("wrote no screenshot to {}", png.display())));
        }
        let dom =
            fs::read_to_string(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        Ok(dom)
    }

    /// Loads `url` until `ready(dom)` holds, at most [`Chromium::attempts`] times, starting
    /// with [`Chromium::budget_ms`] of virtual time and doubling it after each miss: the first
    /// DOM that is ready, with its screenshot in `screenshot` when given. A load that fails
    /// (timeout, crash) counts as a miss. Virtual time does not wait for every reply of a real
    /// server, so a page should mark when it has its data (the dashboard sets
    /// `data-loaded="true"` on `<body>`).
    pub fn render_until(
        &self,
        url: &str,
        screenshot: Option<&Path>,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let started = Instant::now();
        let mut budget_ms = self.budget_ms;
        let mut misses = Vec::new();
        for attempt in 1..=self.attempts.max(1) {
            match self.render(url, budget_ms, screenshot) {
                Ok(dom) if ready(&dom) => {
                    eprintln!(
                        "chromium: {url} ready at load {attempt} (virtual-time budget \
                         {budget_ms} ms) after {:?}",
                        started.elapsed()
                    );
                    return Ok(dom);
                }
                Ok(dom) => misses.push(format!(
                    "load {attempt} ({budget_ms} ms of virtual time) not ready; its body:\n{}",
                    without_scripts(&dom)
                )),
                Err(e) => misses.push(format!("load {attempt}: {e}")),
            }
            budget_ms = budget_ms.saturating_mul(2);
        }
        Err(format!(
            "{url} not ready after {} loads in {:?}:\n{}",
            misses.len(),
            started.elapsed(),
            misses.join("\n---\n")
        ))
    }
}

/// Kills every process left in the group `pgid` (the browser's own group). A group that is
/// already gone is fine.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `html` from `<body` on, without its `<script>` elements (for failure messages).
fn without_scripts(html: &str) -> String {
    let mut rest = &html[html.find("<body").unwrap_or(0)..];
    let mut out = String::new();
    while let Some(open) = rest.find("<script") {
        out.push_str(&rest[..open]);
        rest = rest[open..]
            .find("</script>")
            .map_or("", |close| &rest[open + close + "</script>".len()..]);
    }
    out.push_str(rest);
    out
}

/// The last `lines` lines of `s`.
fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
