//! A small Chrome DevTools Protocol client for tests, on std only: starts headless Chromium
//! with a debugging port (the flags of [`crate::chromium::HEADLESS_ARGS`], so a test that
//! includes this module includes `chromium` too), opens one page over a WebSocket, runs JavaScript in it (clicks,
//! reads), records console errors and uncaught exceptions, and takes screenshots.
//!
//! ```ignore
//! let mut page = cdp::Page::open(&chromium_binary, &work_dir, (1280, 900))?;
//! page.navigate("http://127.0.0.1:3030/shard-dashboard.html")?;
//! page.wait_for("document.body.dataset.loaded === 'true'", Duration::from_secs(20))?;
//! page.eval("document.querySelector('button').click()")?;
//! assert!(page.errors.is_empty());
//! ```

use serde_json::{Value, json};
use std::{
    fs,
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Longest wait for Chromium to open its debugging port.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the answer to one protocol command.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One page of a headless Chromium driven over the DevTools protocol. Dropping it kills the
/// browser and removes its profile.
pub struct Page {
    child: Child,
    ws: TcpStream,
    session: String,
    next_id: u64,
    profile: PathBuf,
    /// Console errors, failed loads and uncaught exceptions seen so far, in order.
    pub errors: Vec<String>,
}

impl Page {
    /// Starts `binary` headless (profile under `work_dir`) and opens a blank page.
    pub fn open(binary: &Path, work_dir: &Path, window: (u32, u32)) -> Result<Page, String> {
        let profile = work_dir.join(format!("cdp-{}.profile", std::process::id()));
        let _ = fs::remove_dir_all(&profile);
        fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let log = fs::File::create(work_dir.join(format!("cdp-{}.stderr", std::process::id())))
            .map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args(crate::chromium::HEADLESS_ARGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={},{}", window.0, window.1))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // Chromium writes its port and browser endpoint path to DevToolsActivePort.
        let active = profile.join("DevToolsActivePort");
        let started = Instant::now();
        let (port, path) = loop {
            if let Ok(text) = fs::read_to_string(&active) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_string(), path.trim().to_string());
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err("Chromium did not open its debugging port".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let ws = connect(&format!("127.0.0.1:{port}"), &path)?;
        let mut page = Page {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            profile,
            errors: Vec::new(),
        };
        let target = page.call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("no targetId")?
            .to_string();
        let attached = page.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        page.session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_string();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(domain, json!({}))?;
        }
        Ok(page)
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        match r["errorText"].as_str() {
            Some(e) if !e.is_empty() => Err(format!("navigating to {url}: {e}")),
            _ => Ok(()),
        }
    }

    /// Evaluates `expression` in the page (promises are awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {}", describe_exception(ex)));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expression` every 100 ms until it is `true`; fails after `timeout`. An
    /// exception (the page still loading, an element not there yet) counts as not yet.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let last = match self.eval(expression) {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(v) => format!("last value {v}"),
                Err(e) => format!("last error {e}"),
            };
            if started.elapsed() > timeout {
                return Err(format!("not true after {timeout:?} ({last}): {expression}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the page to `png`.
    pub fn screenshot(&mut self, png: &Path) -> Result<(), String> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = base64_decode(r["data"].as_str().ok_or("no screenshot data")?)?;
        fs::write(png, data).map_err(|e| format!("{}: {e}", png.display()))
    }

    /// Sends one command (to the page's session once attached) and waits for its answer,
    /// recording the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        send_text(&mut self.ws, &msg.to_string())?;
        let started = Instant::now();
        loop {
            if started.elapsed() > CALL_TIMEOUT {
                return Err(format!("no answer to {method}"));
            }
            let text = read_text(&mut self.ws)?;
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            self.record_event(&v);
        }
    }

    fn record_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                x["value"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| x["description"].to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let e = describe_exception(&p["exceptionDetails"]);
                self.errors.push(format!("uncaught: {e}"));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                let e = &p["entry"];
                self.errors.push(format!(
                    "log: {} {}",
                    e["text"],
                    e["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid"),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.profile);
    }
}

fn describe_exception(ex: &Value) -> String {
    ex["exception"]["description"]
        .as_str()
        .or(ex["text"].as_str())
        .unwrap_or("exception")
        .to_string()
}

/// Opens a WebSocket to `path` on `addr` (client handshake, no extensions).
fn connect(addr: &str, path: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(CALL_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // Read the answer's head byte by byte (the first frame may follow it).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).map_err(|e| e.to_string())?;
        head.push(byte[0]);
        if head.len() > 16 * 1024 {
            return Err("handshake answer too long".into());
        }
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("WebSocket handshake refused: {head}"));
    }
    Ok(s)
}

/// Sends one masked text frame.
fn send_text(s: &mut TcpStream, text: &str) -> Result<(), String> {
    let payload = text.as_bytes();
    let mut frame = vec![0x81u8];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).map_err(|e| e.to_string())
}

/// Reads one whole text message (joining continuation frames; answering pings).
fn read_text(s: &mut TcpStream) -> Result<String, String> {
    let mut message = Vec::new();
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h)
            .map_err(|e| format!("reading a frame: {e}"))?;
        let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from_be_bytes(b);
        }
        if len > 256 * 1024 * 1024 {
            return Err(format!("frame of {len} bytes"));
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).map_err(|e| e.to_string())?;
        match opcode {
            0x0..=0x2 => {
                message.extend_from_slice(&payload);
                if fin {
                    return String::from_utf8(message).map_err(|e| e.to_string());
                }
            }
            0x8 => return Err("the browser closed the connection".into()),
            0x9 => {
                // Pong with the same payload (masked, as a client must).
                let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                frame.extend_from_slice(&payload);
                s.write_all(&frame).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
}

/// Decodes standard base64 (with padding).
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c}")),
        }
        .into())
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= if *c == b'=' { 0 } else { value(*c)? } << (18 - 6 * i);
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad.min(2)]);
    }
    Ok(out)
}
