//! Results and their renderings: the stdout table, the JSON file and a self-contained HTML
//! report with inline SVG charts (pure).

use super::{
    ceiling::Ceiling,
    scenario::Scenario,
    stats::{Histogram, LatencySummary, short_ms},
};
use serde::Serialize;
use std::{collections::BTreeMap, fmt::Write as _};

/// Peak resident memory of one process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeakRss {
    /// Process name.
    pub name: String,
    /// Report role.
    pub role: String,
    /// Shard, if any.
    pub shard: Option<u32>,
    /// `VmHWM`, KiB.
    pub kib: u64,
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Scenario (or scale step, or find-max step) name.
    pub name: String,
    /// What ran.
    pub scenario: Scenario,
    /// Load before the window, in seconds.
    pub warmup_s: u64,
    /// Transactions per `POST /tx/batch`.
    pub batch_txs: u64,
    /// Time spent signing before the run, in seconds.
    pub sign_s: f64,
    /// Transactions sent during the window.
    pub submitted: u64,
    /// Of those, admitted by the node.
    pub accepted: u64,
    /// Of those, refused by the node (or the request failed).
    pub rejected: u64,
    /// Refusals by error code (whole run).
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Window transactions complete (intra: final; cross: applied at the destination).
    pub completed: u64,
    /// Of those, intra-shard.
    pub completed_intra: u64,
    /// Of those, cross-shard.
    pub completed_cross: u64,
    /// Window transactions included but failed.
    pub failed: u64,
    /// Window transactions admitted but not complete when the drain ended.
    pub unfinished: u64,
    /// Completions (of any transaction) per second during the window.
    pub sustained_tps: f64,
    /// The verification ceiling for this committee size, tx/s.
    pub ceiling_tps: f64,
    /// `sustained_tps ÷ ceiling_tps`.
    pub fraction_of_ceiling: f64,
    /// Submit → finalized latency of intra-shard transfers.
    pub latency_intra: Option<LatencySummary>,
    /// Submit → applied-at-destination latency of cross-shard transfers.
    pub latency_cross: Option<LatencySummary>,
    /// Both.
    pub latency_all: Option<LatencySummary>,
    /// Intra-shard latency distribution.
    pub histogram_intra: Histogram,
    /// Cross-shard latency distribution.
    pub histogram_cross: Histogram,
    /// How far behind its schedule the client fell at worst, in ms.
    pub client_max_lag_ms: u64,
    /// Block events received.
    pub events: u64,
    /// Events the node's stream reported lost (a slow client).
    pub lagged_events_skipped: u64,
    /// Times the event stream was reopened.
    pub stream_reconnects: u64,
    /// CPU seconds used during the window, by role.
    pub cpu_s_by_role: BTreeMap<String, f64>,
    /// CPU seconds per 1,000 completed transactions, by role.
    pub cpu_s_per_1k_tx_by_role: BTreeMap<String, f64>,
    /// CPU seconds used during the window, all measured processes.
    pub cpu_s_total: f64,
    /// CPU seconds per 1,000 completed transactions, all measured processes.
    pub cpu_s_per_1k_tx_total: f64,
    /// Peak RSS of every measured process.
    pub peak_rss: Vec<PeakRss>,
    /// Largest validator peak RSS, KiB.
    pub peak_rss_validator_max_kib: u64,
    /// Mean validator peak RSS, KiB.
    pub peak_rss_validator_mean_kib: u64,
    /// Processes that restarted during the window.
    pub restarted_processes: u64,
    /// The machine's 1-minute load average when the window began (other work on the
    /// machine shows here).
    pub load_avg_1m: f64,
    /// When this result is another run's (scale reusing `all`'s 1- and 4-shard runs).
    pub reused_from: Option<String>,
}

/// One step of a `--find-max` search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FindMaxStep {
    /// Target rate, tx/s.
    pub rate_tps: f64,
    /// Sustained rate, tx/s.
    pub sustained_tps: f64,
    /// P99 latency of all transfers, ms (`None`: nothing completed).
    pub p99_ms: Option<u64>,
    /// Completed share of the admitted window transactions.
    pub completed_ratio: f64,
    /// Whether the step met the bound.
    pub ok: bool,
}

/// A `--find-max` search on one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FindMax {
    /// The scenario searched.
    pub scenario: String,
    /// The P99 bound, ms.
    pub max_p99_ms: u64,
    /// Least completed share of a passing step.
    pub min_completed_ratio: f64,
    /// Least share of the target rate a passing step sustains.
    pub min_rate_share: f64,
    /// The steps in order.
    pub steps: Vec<FindMaxStep>,
    /// The highest passing target rate (`None`: even the first failed).
    pub max_rate_tps: Option<f64>,
    /// Its sustained rate.
    pub max_sustained_tps: Option<f64>,
}

/// Everything a bench invocation measured (the `--json` file).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// `vision-node` version.
    pub version: String,
    /// Unix ms when the bench started.
    pub started_unix_ms: u64,
    /// Cores of this machine.
    pub cores: usize,
    /// Where the load went (`self-started devnet` or the `--target` URL).
    pub target: String,
    /// The verification ceiling (for the default committee size).
    pub ceiling: Ceiling,
    /// Every run, in order.
    pub results: Vec<ScenarioResult>,
    /// `--find-max` searches.
    pub find_max: Vec<FindMax>,
    /// Notes on method (windows, shortened durations, reuse).
    pub notes: Vec<String>,
}

fn opt_ms(l: &Option<LatencySummary>, f: fn(&LatencySummary) -> u64) -> String {
    l.as_ref().map_or_else(|| "-".into(), |l| f(l).to_string())
}

/// The stdout table.
pub fn render_table(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (load average {:.1} while measuring)",
        r.ceiling.formula, r.ceiling.rates.load_avg_1m
    );
    let _ = writeln!(
        out,
        "{:<22} {:>3} {:>2} {:>5} {:>6} {:>7} {:>6} {:>19} {:>23} {:>6} {:>6} {:>4} {:>6} {:>7} {:>7}",
        "scenario",
        "sh",
        "V",
        "batch",
        "rate",
        "tps",
        "%ceil",
        "intra p50/p95/p99",
        "cross p50/p95/p99/max",
        "sent",
        "done",
        "fail",
        "unfin",
        "cpu/1k",
        "rssMiB"
    );
    for s in &r.results {
        let lat = |l: &Option<LatencySummary>, max: bool| -> String {
            match l {
                None => "-".into(),
                Some(l) if max => format!("{}/{}/{}/{}", l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
                Some(l) => format!("{}/{}/{}", l.p50_ms, l.p95_ms, l.p99_ms),
            }
        };
        let _ = writeln!(
            out,
            "{:<22} {:>3} {:>2} {:>5} {:>6.0} {:>7.1} {:>5.1}% {:>19} {:>23} {:>6} {:>6} {:>4} {:>6} {:>7.2} {:>7.0}",
            s.name,
            s.scenario.shards,
            s.scenario.validators_per_shard,
            s.scenario.batch_size,
            s.scenario.rate_tps,
            s.sustained_tps,
            s.fraction_of_ceiling * 100.0,
            lat(&s.latency_intra, false),
            lat(&s.latency_cross, true),
            s.submitted,
            s.completed,
            s.failed,
            s.unfinished,
            s.cpu_s_per_1k_tx_total,
            s.peak_rss_validator_max_kib as f64 / 1024.0
        );
    }
    for s in &r.results {
        if s.cpu_s_per_1k_tx_by_role.is_empty() {
            continue;
        }
        let roles: Vec<String> = s
            .cpu_s_per_1k_tx_by_role
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect();
        let _ = writeln!(
            out,
            "  {}: CPU s per 1k tx by role: {}; peak RSS per validator max {:.0} MiB, mean {:.0} \
             MiB; load average {:.1}",
            s.name,
            roles.join(", "),
            s.peak_rss_validator_max_kib as f64 / 1024.0,
            s.peak_rss_validator_mean_kib as f64 / 1024.0,
            s.load_avg_1m
        );
    }
    for f in &r.find_max {
        let _ = writeln!(
            out,
            "find-max {}: highest rate with P99 <= {} ms: {}",
            f.scenario,
            f.max_p99_ms,
            f.max_rate_tps.map_or_else(
                || "none".into(),
                |x| format!(
                    "{x:.0} tx/s target, {:.1} tx/s sustained",
                    f.max_sustained_tps.unwrap_or(0.0)
                )
            )
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The ceiling line is drawn on the TPS chart only up to this multiple of the tallest bar.
const CEILING_ON_CHART_MAX_RATIO: f64 = 4.0;
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 260.0;
const PAD_L: f64 = 60.0;
const PAD_B: f64 = 70.0;
const PAD_T: f64 = 20.0;

/// A bar chart: `bars` are (label, value); `line` an optional horizontal reference line.
pub fn svg_bars(
    title: &str,
    unit: &str,
    bars: &[(String, f64)],
    line: Option<(&str, f64)>,
) -> String {
    let mut s = String::new();
    let max = bars
        .iter()
        .map(|b| b.1)
        .chain(line.map(|l| l.1))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let plot_w = CHART_W - PAD_L - 10.0;
    let plot_h = CHART_H - PAD_T - PAD_B;
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{y}" stroke="#444"/><line x1="{PAD_L}" y1="{y}" x2="{x}" y2="{y}" stroke="#444"/>"##,
        y = PAD_T + plot_h,
        x = CHART_W - 10.0
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = PAD_T + plot_h - plot_h * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{x}" y="{y}" font-size="10" text-anchor="end">{v:.0}</text><line x1="{PAD_L}" y1="{y}" x2="{x2}" y2="{y}" stroke="#ddd"/>"##,
            x = PAD_L - 4.0,
            x2 = CHART_W - 10.0
        );
    }
    let n = bars.len().max(1) as f64;
    let slot = plot_w / n;
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = plot_h * v / max;
        let x = PAD_L + slot * i as f64 + slot * 0.15;
        let y = PAD_T + plot_h - h;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#3b82f6"><title>{l}: {v:.1} {u}</title></rect><text x="{cx:.1}" y="{ty:.1}" font-size="10" text-anchor="middle">{v:.0}</text><text x="{cx:.1}" y="{ly:.1}" font-size="10" text-anchor="end" transform="rotate(-30 {cx:.1} {ly:.1})">{l}</text>"##,
            w = slot * 0.7,
            l = escape(label),
            u = escape(unit),
            cx = x + slot * 0.35,
            ty = y - 3.0,
            ly = PAD_T + plot_h + 14.0
        );
    }
    if let Some((label, v)) = line {
        let y = PAD_T + plot_h - plot_h * v / max;
        let _ = write!(
            s,
            r##"<line x1="{PAD_L}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="#dc2626" stroke-dasharray="6 4"/><text x="{x2}" y="{ty:.1}" font-size="10" fill="#dc2626" text-anchor="end">{l} {v:.0}</text>"##,
            x2 = CHART_W - 10.0,
            ty = y - 4.0,
            l = escape(label)
        );
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{y}" font-size="10" transform="rotate(-90 12 {y})" text-anchor="middle">{u}</text></svg>"#,
        y = PAD_T + plot_h / 2.0,
        u = escape(unit)
    );
    s
}

/// A line chart of one or more series over shared x values.
pub fn svg_lines(
    title: &str,
    x_label: &str,
    xs: &[f64],
    series: &[(&str, &str, Vec<f64>)],
) -> String {
    let mut s = String::new();
    let plot_w = CHART_W - PAD_L - 60.0;
    let plot_h = CHART_H - PAD_T - 40.0;
    let x_max = xs.iter().copied().fold(0.0f64, f64::max).max(1e-9);
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{y}" stroke="#444"/><line x1="{PAD_L}" y1="{y}" x2="{x}" y2="{y}" stroke="#444"/>"##,
        y = PAD_T + plot_h,
        x = PAD_L + plot_w
    );
    for &x in xs {
        let px = PAD_L + plot_w * x / x_max;
        let _ = write!(
            s,
            r#"<text x="{px:.1}" y="{y:.1}" font-size="10" text-anchor="middle">{x}</text>"#,
            y = PAD_T + plot_h + 14.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="10" text-anchor="middle">{l}</text>"#,
        x = PAD_L + plot_w / 2.0,
        y = PAD_T + plot_h + 30.0,
        l = escape(x_label)
    );
    for (k, (name, color, ys)) in series.iter().enumerate() {
        // Each series on its own scale (labelled at its last point).
        let y_max = ys.iter().copied().fold(0.0f64, f64::max).max(1e-9);
        let pts: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| {
                format!(
                    "{:.1},{:.1}",
                    PAD_L + plot_w * x / x_max,
                    PAD_T + plot_h - plot_h * y / y_max
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>"#,
            c = escape(color),
            p = pts.join(" ")
        );
        for (&x, &y) in xs.iter().zip(ys) {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{n}: {y:.2} at {x}</title></circle>"#,
                PAD_L + plot_w * x / x_max,
                PAD_T + plot_h - plot_h * y / y_max,
                c = escape(color),
                n = escape(name)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="11" fill="{c}">{n} (max {m:.2})</text>"#,
            x = PAD_L + 8.0,
            y = PAD_T + 12.0 + 14.0 * k as f64,
            c = escape(color),
            n = escape(name),
            m = y_max
        );
    }
    s.push_str("</svg>");
    s
}

/// The self-contained HTML report (inline CSS and SVG; no scripts, no external resources).
pub fn render_html(r: &BenchReport) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vision Node \
         benchmark</title><style>body{font-family:system-ui,sans-serif;margin:24px;color:#111}\
         table{border-collapse:collapse;font-size:13px;margin:12px 0;display:block;\
         overflow-x:auto}td:first-child{white-space:nowrap}td,th{border:1px solid \
         #ccc;padding:3px 7px;text-align:right}th{background:#f3f4f6}td:first-child{text-align:\
         left}code{background:#f3f4f6;padding:1px 4px;white-space:pre-wrap}section{margin-bottom:28px}</style></head>\
         <body><h1>Vision Node benchmark</h1>",
    );
    let _ = write!(
        h,
        "<p>vision-node {} · {} cores · target: {} · started {} (Unix ms)</p>",
        escape(&r.version),
        r.cores,
        escape(&r.target),
        r.started_unix_ms
    );
    let _ = write!(
        h,
        "<section><h2>Ceiling</h2><p>ed25519 on {} cores: {:.0} single and {:.0} batch \
         (×{}) verifications per second per core (load average {:.1} while measuring).</p>\
         <p><code>{}</code></p></section>",
        r.ceiling.rates.cores,
        r.ceiling.rates.single_per_core_per_s,
        r.ceiling.rates.batch_per_core_per_s,
        r.ceiling.rates.batch_size,
        r.ceiling.rates.load_avg_1m,
        escape(&r.ceiling.formula)
    );
    // Results table.
    h.push_str(
        "<section><h2>Results</h2><table><tr><th>scenario</th><th>shards</th><th>V</th>\
         <th>batch</th><th>rate</th><th>sustained tx/s</th><th>% ceiling</th><th>intra \
         p50/p95/p99/max ms</th><th>cross p50/p95/p99/max ms</th><th>sent</th><th>done</th>\
         <th>failed</th><th>unfinished</th><th>rejected</th><th>CPU s/1k tx</th><th>max \
         validator RSS MiB</th><th>load avg</th></tr>",
    );
    let lat = |l: &Option<LatencySummary>| {
        l.as_ref().map_or_else(
            || "-".to_string(),
            |l| format!("{}/{}/{}/{}", l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
        )
    };
    for s in &r.results {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td>\
             <td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{:.2}</td><td>{:.0}</td><td>{:.1}</td></tr>",
            escape(&s.name),
            s.scenario.shards,
            s.scenario.validators_per_shard,
            s.scenario.batch_size,
            s.scenario.rate_tps,
            s.sustained_tps,
            s.fraction_of_ceiling * 100.0,
            lat(&s.latency_intra),
            lat(&s.latency_cross),
            s.submitted,
            s.completed,
            s.failed,
            s.unfinished,
            s.rejected,
            s.cpu_s_per_1k_tx_total,
            s.peak_rss_validator_max_kib as f64 / 1024.0,
            s.load_avg_1m
        );
    }
    h.push_str(
        "</table><p>% ceiling uses each run's committee size V; load avg is the machine's \
         1-minute load average when the window began (other work on the machine).</p>\
         </section>",
    );
    // TPS per scenario.
    let bars: Vec<(String, f64)> = r
        .results
        .iter()
        .map(|s| (s.name.clone(), s.sustained_tps))
        .collect();
    // The ceiling is drawn only when it does not flatten every bar.
    let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let line = (r.ceiling.ceiling_tps <= top * CEILING_ON_CHART_MAX_RATIO)
        .then_some(("ceiling", r.ceiling.ceiling_tps));
    let _ = write!(
        h,
        "<section><h2>Sustained throughput per scenario</h2><p>Verification ceiling: {:.0} \
         tx/s{}.</p>{}</section>",
        r.ceiling.ceiling_tps,
        if line.is_none() {
            " (far above every bar; not drawn)"
        } else {
            ""
        },
        svg_bars("Sustained TPS per scenario", "tx/s", &bars, line)
    );
    // Latency distributions.
    h.push_str("<section><h2>Latency distribution</h2>");
    for s in &r.results {
        for (kind, hist, l) in [
            ("intra-shard", &s.histogram_intra, &s.latency_intra),
            ("cross-shard", &s.histogram_cross, &s.latency_cross),
        ] {
            if l.is_none() {
                continue;
            }
            let bars: Vec<(String, f64)> = hist
                .counts
                .iter()
                .enumerate()
                .map(|(i, &c)| (hist.label(i), c as f64))
                .collect();
            let title = format!(
                "{} {kind}: P50 {} P99 {}",
                s.name,
                opt_ms(l, |l| l.p50_ms),
                opt_ms(l, |l| l.p99_ms)
            );
            let _ = write!(
                h,
                "<h3>{}</h3>{}",
                escape(&title),
                svg_bars(&title, "transactions", &bars, None)
            );
        }
    }
    h.push_str("</section>");
    // Scale curve.
    let scale: Vec<&ScenarioResult> = r
        .results
        .iter()
        .filter(|s| s.name.starts_with("scale/"))
        .collect();
    if !scale.is_empty() {
        let xs: Vec<f64> = scale.iter().map(|s| s.scenario.shards as f64).collect();
        let _ = write!(
            h,
            "<section><h2>Scale</h2>{}</section>",
            svg_lines(
                "TPS and CPU per transaction by shard count",
                "shards",
                &xs,
                &[
                    (
                        "sustained tx/s",
                        "#2563eb",
                        scale.iter().map(|s| s.sustained_tps).collect()
                    ),
                    (
                        "CPU s per 1k tx",
                        "#d97706",
                        scale.iter().map(|s| s.cpu_s_per_1k_tx_total).collect()
                    ),
                ]
            )
        );
    }
    // CPU and memory by role.
    h.push_str(
        "<section><h2>CPU and memory by role</h2><table><tr><th>scenario</th><th>role</th>\
         <th>CPU s in window</th><th>CPU s per 1k tx</th></tr>",
    );
    for s in &r.results {
        for (role, cpu) in &s.cpu_s_by_role {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                escape(&s.name),
                escape(role),
                cpu,
                s.cpu_s_per_1k_tx_by_role.get(role).copied().unwrap_or(0.0)
            );
        }
    }
    h.push_str("</table>");
    h.push_str(
        "<table><tr><th>scenario</th><th>process</th><th>role</th><th>shard</th><th>peak \
         RSS MiB</th></tr>",
    );
    for s in &r.results {
        if s.reused_from.is_some() {
            continue;
        }
        for p in &s.peak_rss {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
                escape(&s.name),
                escape(&p.name),
                escape(&p.role),
                p.shard.map_or_else(|| "-".into(), |x| x.to_string()),
                p.kib as f64 / 1024.0
            );
        }
    }
    h.push_str("</table></section>");
    for f in &r.find_max {
        let _ = write!(
            h,
            "<section><h2>Highest rate of {} with P99 ≤ {}</h2><table><tr><th>rate</th>\
             <th>sustained</th><th>P99</th><th>completed</th><th>ok</th></tr>",
            escape(&f.scenario),
            short_ms(f.max_p99_ms)
        );
        for st in &f.steps {
            let _ = write!(
                h,
                "<tr><td>{:.0}</td><td>{:.1}</td><td>{}</td><td>{:.1}%</td><td>{}</td></tr>",
                st.rate_tps,
                st.sustained_tps,
                st.p99_ms.map_or_else(|| "-".into(), |p| p.to_string()),
                st.completed_ratio * 100.0,
                if st.ok { "yes" } else { "no" }
            );
        }
        h.push_str("</table></section>");
    }
    if !r.notes.is_empty() {
        h.push_str("<section><h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></section>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::{
        ceiling::{VerifyCount, VerifyRates, ceiling},
        scenario::{Overrides, expand},
        stats::summarize,
    };

    pub(crate) fn sample_report() -> BenchReport {
        let rates = VerifyRates {
            cores: 2,
            single_per_core_per_s: 20_000.0,
            batch_per_core_per_s: 40_000.0,
            batch_size: 64,
            duration_s: 1.0,
            load_avg_1m: 0.0,
        };
        let mut results = Vec::new();
        for (i, s) in expand("scale", &Overrides::default(), 10)
            .expect("scale")
            .into_iter()
            .enumerate()
        {
            let lat: Vec<u64> = (1..=100).map(|x| x * (i as u64 + 1) * 10).collect();
            results.push(ScenarioResult {
                name: s.name.clone(),
                scenario: s,
                warmup_s: 2,
                batch_txs: 10,
                sign_s: 0.1,
                submitted: 2000,
                accepted: 2000,
                rejected: 0,
                rejected_by_code: BTreeMap::new(),
                completed: 1990,
                completed_intra: 1000,
                completed_cross: 990,
                failed: 0,
                unfinished: 10,
                sustained_tps: 100.0 * (i as f64 + 1.0),
                ceiling_tps: 5000.0,
                fraction_of_ceiling: 0.02 * (i as f64 + 1.0),
                latency_intra: summarize(lat.clone()),
                latency_cross: summarize(lat.iter().map(|x| x * 3).collect()),
                latency_all: summarize(lat.clone()),
                histogram_intra: Histogram::of(&lat),
                histogram_cross: Histogram::of(&lat),
                client_max_lag_ms: 2,
                events: 100,
                lagged_events_skipped: 0,
                stream_reconnects: 0,
                cpu_s_by_role: BTreeMap::from([("validator".into(), 3.0), ("api".into(), 1.0)]),
                cpu_s_per_1k_tx_by_role: BTreeMap::from([
                    ("validator".into(), 1.5),
                    ("api".into(), 0.5),
                ]),
                cpu_s_total: 4.0,
                cpu_s_per_1k_tx_total: 2.0,
                peak_rss: vec![PeakRss {
                    name: "v00".into(),
                    role: "validator".into(),
                    shard: Some(0),
                    kib: 80_000,
                }],
                peak_rss_validator_max_kib: 80_000,
                peak_rss_validator_mean_kib: 80_000,
                restarted_processes: 0,
                load_avg_1m: 1.0,
                reused_from: None,
            });
        }
        BenchReport {
            version: "0.1.0".into(),
            started_unix_ms: 1,
            cores: 2,
            target: "self-started devnet <&>".into(),
            ceiling: ceiling(&rates, &VerifyCount::for_committee(4)),
            results,
            find_max: vec![FindMax {
                scenario: "4-shards-batch-100".into(),
                max_p99_ms: 2000,
                min_completed_ratio: 0.95,
                min_rate_share: 0.9,
                steps: vec![FindMaxStep {
                    rate_tps: 100.0,
                    sustained_tps: 99.0,
                    p99_ms: Some(900),
                    completed_ratio: 1.0,
                    ok: true,
                }],
                max_rate_tps: Some(100.0),
                max_sustained_tps: Some(99.0),
            }],
            notes: vec!["windows shortened to 20 s".into()],
        }
    }

    #[test]
    fn table_lists_every_run() {
        let r = sample_report();
        let t = render_table(&r);
        for s in &r.results {
            assert!(t.contains(&s.name), "{t}");
        }
        assert!(t.contains("ceiling = "));
        assert!(t.contains("find-max 4-shards-batch-100"));
        assert!(t.contains("note: windows shortened"));
        assert!(t.contains("500/950/990"), "{t}");
        assert!(t.contains("1500/2850/2970/3000"), "{t}");
        assert!(t.contains("api 0.50, validator 1.50"), "{t}");
    }

    #[test]
    fn json_has_everything() {
        let r = sample_report();
        let v: serde_json::Value = serde_json::to_value(&r).expect("json");
        assert_eq!(v["results"].as_array().map(Vec::len), Some(4));
        let first = &v["results"][0];
        for k in [
            "sustained_tps",
            "latency_intra",
            "latency_cross",
            "completed",
            "failed",
            "unfinished",
            "cpu_s_per_1k_tx_by_role",
            "peak_rss_validator_max_kib",
            "fraction_of_ceiling",
        ] {
            assert!(!first[k].is_null(), "{k} missing");
        }
        assert_eq!(first["latency_intra"]["p99_ms"], serde_json::json!(990));
        assert!(
            v["ceiling"]["ceiling_tps"]
                .as_f64()
                .is_some_and(|c| c > 0.0)
        );
    }

    #[test]
    fn html_is_self_contained_with_charts() {
        let html = render_html(&sample_report());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.matches("<svg").count() >= 3,
            "TPS, latency and scale charts"
        );
        assert!(html.contains("<polyline"), "scale curve");
        assert!(!html.contains("<script"));
        for forbidden in ["http://", "https://", "src=", "href="] {
            // The SVG namespace is not needed inline in HTML.
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        assert!(
            html.contains("self-started devnet &lt;&amp;&gt;"),
            "escaped"
        );
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    }
}
