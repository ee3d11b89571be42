//! `serve` under load, on loopback, bounded in count and time: hundreds of concurrent and slow connections, idle
//! connections, and live-reload websockets while files change. Every request is answered in full, every page hears
//! about the rebuild, memory stays bounded, and once the clients are gone the server's threads and sockets go back
//! to what they were (counted in /proc). Nothing asserts how long anything took.

#![cfg(target_os = "linux")]

use crate::common;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Clients of each kind.
const FAST: usize = 200;
const REQUESTS_PER_FAST: usize = 3;
const SLOW: usize = 100;
const IDLE: usize = 50;
const SOCKETS: usize = 50;
const EDITS: usize = 3;

/// The peak resident memory serve may reach, whatever the load (a debug build serving the small fixture uses
/// a few tens of MB).
const MAX_RSS_KB: u64 = 512 * 1024;

struct Serve {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn wait_for(&self, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let err = self.stderr.lock().unwrap().clone();
            assert!(!err.contains("panicked"), "serve panicked:\n{err}");
            if let Some(l) = err.lines().filter(|l| l.contains(needle)).nth(n - 1) {
                return l.to_string();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no {needle:?} from serve:\n{err}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn proc(&self, what: &str) -> String {
        fs::read_to_string(format!("/proc/{}/{what}", self.child.id())).unwrap_or_default()
    }

    fn fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn threads(&self) -> usize {
        fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn status_kb(&self, field: &str) -> u64 {
        self.proc("status")
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// One HTTP/1.1 request on `s`, the response read in full: (status, body), checking Content-Length.
fn request(s: &mut TcpStream, target: &str, close: bool, slow: bool) -> (u16, Vec<u8>) {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {}\r\n\r\n",
        if close { "close" } else { "keep-alive" }
    );
    if slow {
        for chunk in req.as_bytes().chunks(4) {
            s.write_all(chunk).expect("write");
            thread::sleep(Duration::from_millis(10));
        }
    } else {
        s.write_all(req.as_bytes()).expect("write");
    }
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read response head");
        assert!(n > 0, "connection closed before the response to {target}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("read body");
    (status, body)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

fn edit(root: &Path, n: usize) {
    let p = root.join("skills/code-review/patterns/testing.md");
    let text = fs::read_to_string(&p).unwrap();
    let tmp = p.with_extension("md.new");
    fs::write(&tmp, format!("{}\n\nEdit {n}.\n", text.trim_end())).unwrap();
    fs::rename(&tmp, &p).unwrap();
}

#[test]
fn serve_answers_every_request_under_load_and_leaks_nothing() {
    let fx = common::fixture("clean-plugin");
    let root = fx.path().to_path_buf();
    let out = root.parent().unwrap().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skillbook"))
        .args(["serve", ".", "--port", "0", "--out"])
        .arg(&out)
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skillbook serve");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let serve = Serve { child, stderr };
    let line = serve.wait_for("serving http://127.0.0.1:", 1);
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    serve.wait_for("built ", 1);
    // A first round of requests and one websocket, so that every lazily made thread and buffer exists.
    for _ in 0..3 {
        assert_eq!(request(&mut connect(port), "/", true, false).0, 200);
    }
    drop(tungstenite::connect(format!("ws://127.0.0.1:{port}/__skillbook/live")).unwrap());
    thread::sleep(Duration::from_millis(500));
    let base_fds = serve.fds();
    let base_threads = serve.threads();
    let pages: Vec<String> = common::files(&out.join("site"))
        .into_iter()
        .filter(|f| f.ends_with(".html"))
        .take(8)
        .map(|f| format!("/{f}"))
        .collect();
    assert!(!pages.is_empty());

    // Live-reload sockets, all connected (and so subscribed) before anything changes.
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/__skillbook/live"))
            .expect("websocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
        }
        sockets.push(ws);
    }
    // Idle connections: opened, never used, closed at the end.
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(port)).collect();

    let answered = Arc::new(Mutex::new(0usize));
    let start = Arc::new(Barrier::new(FAST + SLOW + 1));
    let mut clients = Vec::new();
    for i in 0..FAST + SLOW {
        let (pages, answered, start) = (pages.clone(), answered.clone(), start.clone());
        let slow = i >= FAST;
        clients.push(thread::spawn(move || {
            start.wait();
            let mut s = connect(port);
            let n = if slow { 1 } else { REQUESTS_PER_FAST };
            for k in 0..n {
                let last = k + 1 == n;
                let target = match (i + k) % 4 {
                    0 => "/nothing-here.html".to_string(),
                    _ => pages[(i + k) % pages.len()].clone(),
                };
                let (status, body) = request(&mut s, &target, last, slow);
                let want = if target.starts_with("/nothing") {
                    404
                } else {
                    200
                };
                assert_eq!(status, want, "{target}");
                if want == 200 {
                    assert!(
                        String::from_utf8_lossy(&body).contains("data-skillbook-live"),
                        "{target} without the live-reload script"
                    );
                }
                *answered.lock().unwrap() += 1;
            }
        }));
    }
    start.wait();
    // Files change while the clients run: every edit is a rebuild and a reload for every socket.
    for n in 0..EDITS {
        edit(&root, n);
        serve.wait_for("rebuilt ", n + 1);
    }
    for c in clients {
        c.join().expect("a client failed");
    }
    assert_eq!(
        *answered.lock().unwrap(),
        FAST * REQUESTS_PER_FAST + SLOW,
        "requests answered"
    );
    // Every socket heard at least one reload.
    for (i, ws) in sockets.iter_mut().enumerate() {
        loop {
            match ws.read().unwrap_or_else(|e| panic!("socket {i}: {e}")) {
                tungstenite::Message::Text(t) if t.contains("reload") => break,
                _ => continue,
            }
        }
    }
    let peak_threads = serve.threads();
    let rss_peak = serve.status_kb("VmHWM:");
    assert!(
        rss_peak < MAX_RSS_KB,
        "serve's resident memory peaked at {rss_peak} kB"
    );
    // The served pages are still whole after the rebuilds.
    let (status, body) = request(&mut connect(port), "/", true, false);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("data-skillbook-live"));

    // The clients go: the server's threads and sockets return to what they were.
    for mut ws in sockets {
        let _ = ws.close(None);
        let _ = ws.flush();
    }
    drop(idle);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (fds, threads) = (serve.fds(), serve.threads());
        if fds <= base_fds && threads <= base_threads {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the clients went, serve still has {fds} fds (was {base_fds}) and {threads} threads (was \
             {base_threads}, {peak_threads} at the peak)"
        );
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "serve under load: {} requests, {SOCKETS} sockets, {EDITS} rebuilds; threads {base_threads} -> \
         {peak_threads} -> {}; fds {base_fds} -> {}; peak RSS {rss_peak} kB",
        FAST * REQUESTS_PER_FAST + SLOW,
        serve.threads(),
        serve.fds()
    );
}
