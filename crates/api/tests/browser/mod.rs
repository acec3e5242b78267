//! The shard dashboard in a real browser: the API served over TCP on the in-memory double,
//! `/shard-dashboard.html` loaded in headless Chromium, and the rendered DOM checked against
//! the backend's values (so the page's script fetched and rendered them), before and after
//! the backend's data changes. Chromium is required: without it the test fails and says that
//! `scripts/test` installs it.

pub mod chromium;

use crate::support::FakeBackend;
use chromium::Chromium;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};
use vision_api::{ApiConfig, NodeBackend as _, router};
use vision_types::ShardId;

/// The marker the dashboard sets once every panel shows the node's data.
const LOADED: &str = "data-loaded=\"true\"";

/// Where the browser's files and the screenshots go (kept for inspection).
fn work_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-browser")
}

/// Loads `url` until the dashboard says it has its data; the screenshot goes to `png`.
async fn render(browser: &Chromium, url: &str, png: &Path) -> String {
    let (browser, url, png) = (browser.clone(), url.to_string(), png.to_path_buf());
    tokio::task::spawn_blocking(move || {
        browser.render_until(&url, Some(&png), |dom| dom.contains(LOADED))
    })
    .await
    .expect("browser thread")
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `n` as the page's `toLocaleString("en-US")` writes it: `1,234,567`.
fn grouped(n: impl ToString) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The part of `dom` from `start` to the first `end` after it.
fn region<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the DOM:\n{dom}"));
    let rest = &dom[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The text of the first element after `marker` (an attribute like ` id="total-txs"`): what
/// lies between the end of that tag and the next tag.
fn text_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in:\n{html}"));
    let rest = &html[at..];
    let open = rest.find('>').expect("tag end") + 1;
    let len = rest[open..].find('<').unwrap_or(rest.len() - open);
    &rest[open..open + len]
}

/// The text of the element with id `id`.
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    text_after(dom, &format!(" id=\"{id}\""))
}

/// Each shard card of the "Shards" panel, by shard id.
fn shard_cards(dom: &str) -> Vec<(u32, &str)> {
    let panel = region(dom, " id=\"shards\"", " id=\"pending-batches-section\"");
    panel
        .split("data-shard-id=\"")
        .skip(1)
        .map(|card| {
            let id = card[..card.find('"').expect("id end")]
                .parse()
                .expect("shard id");
            (id, card)
        })
        .collect()
}

/// Asserts that `dom` shows what `backend` holds now, panel by panel.
async fn assert_shows(dom: &str, backend: &FakeBackend) {
    assert!(dom.contains(LOADED), "not loaded:\n{dom}");
    assert_eq!(by_id(dom, "connection-status"), "connected");
    assert_eq!(by_id(dom, "error-message"), "", "the page reports an error");

    let config = backend.shard_config().await.expect("config");
    let shards = backend.shards().await.expect("shards");
    let network = backend.network_stats().await.expect("network");
    let contracts = backend.contract_stats().await.expect("contract stats");
    let perf = backend.performance().await.expect("performance");

    // Network, performance and configuration panels.
    for (id, want) in [
        ("total-shards", grouped(shards.len())),
        ("total-crosslinks", grouped(network.total_crosslinks)),
        ("batched-crosslinks", grouped(network.batched_crosslinks)),
        ("avg-batch-size", format!("{:.1}", network.avg_batch_size)),
        ("total-txs", grouped(network.total_txs)),
        ("completed-txs", grouped(network.completed_txs)),
        ("pending-txs", grouped(network.pending_txs)),
        ("pending-batch", grouped(network.pending_batch)),
        ("contracts-total", grouped(contracts.total)),
        ("cross-shard-calls", grouped(contracts.cross_shard_calls)),
        ("throughput-tps", format!("{:.1}", perf.throughput_tps)),
        (
            "avg-crosslink-latency",
            format!("{:.1}", perf.avg_crosslink_latency_ms),
        ),
        (
            "avg-batch-latency",
            format!("{:.1}", perf.avg_batch_latency_ms),
        ),
    ] {
        assert_eq!(by_id(dom, id), want, "#{id}");
    }
    for (field, want) in [
        ("num_shards", grouped(config.num_shards)),
        ("batch_size", grouped(config.batch_size)),
    ] {
        let got = text_after(dom, &format!("data-config-field=\"{field}\""));
        assert_eq!(got, want, "config {field}");
    }

    // One card per shard, with its own name, counts and balance.
    let cards = shard_cards(dom);
    assert_eq!(
        cards.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        shards.iter().map(|s| s.id.0).collect::<Vec<_>>(),
        "shard cards"
    );
    for ((_, card), s) in cards.iter().zip(&shards) {
        let field = |name: &str| text_after(card, &format!("data-field=\"{name}\""));
        assert_eq!(text_after(card, "<h3"), s.name, "name of shard {}", s.id);
        assert_eq!(field("tx_count"), grouped(s.tx_count), "txs of {}", s.name);
        assert_eq!(
            field("accounts"),
            grouped(s.accounts),
            "accounts of {}",
            s.name
        );
        assert_eq!(
            field("balance_total"),
            grouped(s.balance_total.0),
            "balance of {}",
            s.name
        );
        assert_eq!(
            field("pending_batch"),
            grouped(s.pending_batch),
            "pending batch of {}",
            s.name
        );
    }

    // Pending batches: one row per shard from /shard/batch/status.
    let batches = region(dom, " id=\"pending-batches\"", "</tbody>");
    for s in &shards {
        let status = backend
            .batch_status(s.id)
            .await
            .expect("batch status")
            .expect("known shard");
        let row = region(batches, &format!("data-shard-id=\"{}\"", s.id.0), "</tr>");
        assert_eq!(
            text_after(row, "data-field=\"pending_txs\""),
            grouped(status.pending_txs),
            "pending txs of {}",
            s.name
        );
    }

    // Recent crosslinks, in the backend's order.
    let crosslinks = backend.recent_crosslinks(20).await.expect("crosslinks");
    assert!(!crosslinks.is_empty());
    let table = region(dom, " id=\"crosslinks-table\"", "</tbody>");
    assert_eq!(table.matches("<tr").count(), crosslinks.len(), "{table}");
    let mut at = 0;
    for c in &crosslinks {
        let marker = format!("data-crosslink-id=\"{}\"", c.id);
        let pos = table[at..]
            .find(&marker)
            .unwrap_or_else(|| panic!("crosslink {} missing or out of order:\n{table}", c.id));
        at += pos + marker.len();
        let row = region(table, &marker, "</tr>");
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|td| text_after(td, ""))
            .collect();
        assert_eq!(cells[0], c.id);
        assert_eq!(cells[1], c.shard_id.0.to_string());
        assert_eq!(cells[2], grouped(c.height));
        assert_eq!(cells[3], grouped(c.batched_txs));
    }

    // Contracts.
    let page = backend.contracts(0, 100).await.expect("contracts");
    assert!(!page.contracts.is_empty());
    let list = region(dom, " id=\"contracts-list\"", "</tbody>");
    assert_eq!(list.matches("<tr").count(), page.contracts.len(), "{list}");
    for c in &page.contracts {
        let row = region(list, &format!("data-contract-id=\"{}\"", c.id), "</tr>");
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|td| text_after(td, ""))
            .collect();
        assert_eq!(cells[0], c.name);
        assert!(
            row.contains(&format!("title=\"{}\"", c.id)),
            "contract id: {row}"
        );
        assert_eq!(cells[2], c.owner.as_str());
        assert_eq!(cells[3], c.primary_shard.0.to_string());
        assert_eq!(cells[4], grouped(c.created_height));
    }
}

/// The load state the page gives shard `id`.
fn load_state(dom: &str, id: u32) -> &str {
    let (_, card) = shard_cards(dom)
        .into_iter()
        .find(|(s, _)| *s == id)
        .unwrap_or_else(|| panic!("no card for shard {id}"));
    let marker = "data-load-state=\"";
    let at = card.find(marker).expect("load state") + marker.len();
    &card[at..at + card[at..].find('"').expect("end")]
}

#[tokio::test]
async fn dashboard_renders_the_backend_in_headless_chromium() {
    let started = Instant::now();
    let dir = work_dir();
    let browser = Chromium::find(&dir).unwrap_or_else(|e| panic!("{e}"));
    let backend = FakeBackend::devnet();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vision_api::serve(
        listener,
        router(Arc::clone(&backend), ApiConfig::default()),
        async move {
            let _ = stopped.await;
        },
    ));
    let url = format!("http://{addr}/shard-dashboard.html");

    // The values differ per shard, so a card showing another shard's data would fail.
    let before = backend.shards().await.expect("shards");
    for (i, a) in before.iter().enumerate() {
        for b in &before[i + 1..] {
            assert!(a.tx_count != b.tx_count && a.balance_total != b.balance_total);
        }
    }

    let dom = render(&browser, &url, &dir.join("dashboard-1.png")).await;
    assert_shows(&dom, &backend).await;
    // The history chart has its first sample; the node answered, so nothing is stale.
    let chart = &dom[dom.find("id=\"chart-tps\"").expect("chart")..];
    let points = chart["points=\"".len() + chart.find("points=\"").expect("points")..]
        .split('"')
        .next()
        .unwrap_or_default();
    assert!(points.starts_with("0.0,"), "chart points: {points:.60}");
    assert!(
        dom.contains("id=\"stale-warning\" hidden"),
        "stale warning shown"
    );
    for s in &before {
        assert_eq!(load_state(&dom, s.id.0), "ok", "{}", s.name);
    }

    // More finalized transactions on shard 2: a new load shows them, and the shard runs hot.
    backend.add_txs(ShardId(2), 3_000);
    let dom = render(&browser, &url, &dir.join("dashboard-2.png")).await;
    assert_shows(&dom, &backend).await;
    let cards = shard_cards(&dom);
    let txs_2 = text_after(cards[2].1, "data-field=\"tx_count\"");
    assert_eq!(txs_2, grouped(before[2].tx_count + 3_000));
    assert_eq!(load_state(&dom, 2), "hot");

    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown")
        .expect("join")
        .expect("serve");
    eprintln!(
        "dashboard rendered twice in {:?}; screenshots in {}",
        started.elapsed(),
        dir.display()
    );
}
