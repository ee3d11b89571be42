//! Save-to-reload latency of `skillbook serve`: starts it on a content root, connects to its live-reload websocket
//! like a browser page does, then saves one file again and again (a temporary file renamed over it, as editors do)
//! and times each save until the `{"type":"reload"}` message arrives, or, with `--page`, until the page served at
//! that path (over HTTP, polled every millisecond or so) shows the edit. Prints every sample, the median, and the
//! server's own line about the last rebuild.
//!
//! ```text
//! cargo run --release --example watch_latency -- BIN ROOT FILE [--page PATH] [--runs 10] [--out DIR] [--timeout-secs 1800]
//! ```
//!
//! BIN is the skillbook binary, ROOT the content root (or a folder with book.toml), FILE the file to edit,
//! relative to ROOT; PATH is the page to poll, relative to the site (`patterns/raft.html`). Each save appends a line
//! `Edited by the benchmark, save N.` to the file. The file is put back as it was at the end. Benchmark only:
//! `bench/watch.sh` runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    bin: PathBuf,
    root: PathBuf,
    file: PathBuf,
    runs: usize,
    out: PathBuf,
    timeout: Duration,
    page: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut pos = Vec::new();
    let mut runs = 10;
    let mut out = None;
    let mut page = None;
    let mut timeout = Duration::from_secs(1800);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).ok_or("--runs N")?,
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out DIR")?)),
            "--page" => page = Some(it.next().ok_or("--page PATH")?),
            "--timeout-secs" => {
                timeout = Duration::from_secs(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--timeout-secs N")?,
                )
            }
            _ => pos.push(a),
        }
    }
    let [bin, root, file] = <[String; 3]>::try_from(pos)
        .map_err(|_| "usage: watch_latency BIN ROOT FILE [--runs N] [--out DIR]".to_string())?;
    let root = PathBuf::from(root);
    Ok(Args {
        bin: PathBuf::from(bin),
        out: out.unwrap_or_else(|| root.join("build")),
        root,
        file: PathBuf::from(file),
        runs,
        timeout,
        page,
    })
}

/// Waits until a stderr line contains `needle`; returns it.
fn wait_line(
    lines: &Arc<Mutex<Vec<String>>>,
    from: usize,
    needle: &str,
    timeout: Duration,
) -> Result<(usize, String), String> {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let l = lines.lock().unwrap();
            if let Some((i, line)) = l
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, x)| x.contains(needle))
            {
                return Ok((i, line.clone()));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no line with {needle:?} within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The body of `GET /target`, if the server answered 200.
fn get(port: &str, target: &str) -> Option<String> {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    write!(
        s,
        "GET /{target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.split_once("\r\n\r\n").map(|x| x.1.to_string())
}

fn save(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn run(a: &Args) -> Result<(), String> {
    let path = a.root.join(&a.file);
    let original =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut child = Command::new(&a.bin)
        .arg("serve")
        .arg(&a.root)
        .args(["--port", "0", "--quiet", "--out"])
        .arg(&a.out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", a.bin.display()))?;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let pipe = child.stderr.take().ok_or("no stderr")?;
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let result = (|| {
        let (_, serving) = wait_line(&lines, 0, "serving http://", Duration::from_secs(30))?;
        let port = serving
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .ok_or("no port")?
            .to_string();
        let t = Instant::now();
        let (mut seen, built) = wait_line(&lines, 0, "built ", a.timeout)?;
        println!("first build ({:.1} s): {built}", t.elapsed().as_secs_f64());
        let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/__skillbook/live"))
            .map_err(|e| format!("websocket: {e}"))?;
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(a.timeout))
                .map_err(|e| e.to_string())?;
        }
        let mut samples = Vec::new();
        // The last save puts the file back (there is nothing to put back without edits).
        let saves = if a.runs == 0 { 0 } else { a.runs + 1 };
        for i in 0..saves {
            let text = if i == a.runs {
                original.clone()
            } else {
                format!("{original}\nEdited by the benchmark, save {i}.\n")
            };
            std::thread::sleep(Duration::from_millis(300));
            let marker = format!("Edited by the benchmark, save {i}.");
            let t = Instant::now();
            save(&path, &text).map_err(|e| e.to_string())?;
            match &a.page {
                // Poll the page until it shows the edit (the last save, which removes it, until it does not).
                Some(page) => loop {
                    let body = get(&port, page).unwrap_or_default();
                    if body.contains(&marker) == (i < a.runs) && !body.is_empty() {
                        break;
                    }
                    if t.elapsed() > a.timeout {
                        return Err(format!(
                            "{page} did not show the edit within {:?}",
                            a.timeout
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                },
                None => loop {
                    match ws.read().map_err(|e| format!("websocket: {e}"))? {
                        tungstenite::Message::Text(m) if m.contains("\"reload\"") => break,
                        tungstenite::Message::Text(m) => {
                            return Err(format!("the build failed: {m}"))
                        }
                        _ => continue,
                    }
                },
            }
            let dt = t.elapsed();
            // The whole build (after the reload, the files that hold every page and the bundles) is done.
            let (next, line) = wait_line(&lines, seen + 1, "rebuilt in", a.timeout)?;
            seen = next;
            if i < a.runs {
                println!(
                    "save {i}: {:.0} ms to reload   [{line}]",
                    dt.as_secs_f64() * 1000.0
                );
                samples.push(dt);
            }
        }
        samples.sort();
        if let (Some(min), Some(max)) = (samples.first(), samples.last()) {
            let n = samples.len();
            let median = if n % 2 == 1 {
                samples[n / 2]
            } else {
                (samples[n / 2 - 1] + samples[n / 2]) / 2
            };
            println!(
                "save to reload over {} saves: median {:.0} ms, min {:.0} ms, max {:.0} ms",
                samples.len(),
                median.as_secs_f64() * 1000.0,
                min.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0
            );
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(&original) {
        let _ = std::fs::write(&path, &original);
    }
    result
}

fn main() -> ExitCode {
    match args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watch_latency: {e}");
            ExitCode::FAILURE
        }
    }
}
