//! `skillbook watch` and `skillbook serve`, run as child processes on a temporary copy of a fixture: edits are seen
//! in the bundles, the compiled plugin and the site; a broken file leaves the last good output and is reported (on
//! stderr, and to the browser over the live-reload websocket); fixing it recovers. Every wait is bounded by a
//! deadline; nothing asserts how long anything took.

use crate::common::{self, files};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails (a debug build renders the site in about a second).
const PATIENCE: Duration = Duration::from_secs(90);

/// A running `skillbook` child: its stderr collected in the background, killed when dropped.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skillbook"))
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start skillbook");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr has `n` lines containing `needle`; returns the last of them.
    fn wait_for_line(&mut self, needle: &str, n: usize) -> String {
        let mut found = None;
        let mut exited = None;
        wait(&format!("{n} stderr line(s) with {needle:?}"), || {
            let err = self.stderr();
            assert!(!err.contains("panicked"), "skillbook panicked:\n{err}");
            let lines: Vec<&str> = err.lines().filter(|l| l.contains(needle)).collect();
            if lines.len() >= n {
                found = Some(lines[n - 1].to_string());
                return true;
            }
            match exited {
                // Exited: give the reader a moment to collect the last lines, then fail.
                Some(t) if Instant::now() > t + Duration::from_secs(2) => {
                    panic!("skillbook exited before printing {needle:?}:\n{err}")
                }
                Some(_) => {}
                None => {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        exited = Some(Instant::now());
                    }
                }
            }
            false
        });
        found.unwrap_or_default()
    }
}

impl Running {
    /// Sends SIGINT (Ctrl-C) and waits for a clean exit with status 0.
    fn interrupt_and_wait(&mut self) {
        // SAFETY: sending a signal to our own child process, whose pid we hold.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill failed");
        let mut status = None;
        wait("skillbook to stop after Ctrl-C", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        assert_eq!(status.code(), Some(0), "{status}:\n{}", self.stderr());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Saves as editors that write a temporary file and rename it over the old one do.
fn atomic_save(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The site's HTML files that contain `needle`.
fn site_pages_with(out: &Path, needle: &str) -> Vec<String> {
    files(&out.join("site"))
        .into_iter()
        .filter(|f| f.ends_with(".html") && read(&out.join("site").join(f)).contains(needle))
        .collect()
}

/// Everything under `out`, as (path, bytes).
fn snapshot(out: &Path) -> Vec<(String, Vec<u8>)> {
    files(out)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(out.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

const PATTERN: &str = "skills/code-review/patterns/testing.md";

fn testing_pattern(marker: &str) -> String {
    let original = read(
        &common::tests_dir()
            .join("fixtures/clean-plugin")
            .join(PATTERN),
    );
    format!("{original}\n{marker}\n")
}

/// The numbers in `rebuilt in 80 ms after ...: read 1 file, parsed 1, ...`.
fn counts(line: &str, what: &str) -> usize {
    let after = line
        .split(what)
        .nth(1)
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"));
    after
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count after {what:?} in {line:?}"))
}

#[test]
fn watch_rebuilds_edits_keeps_the_last_good_output_and_recovers() {
    let fx = common::fixture("clean-plugin");
    let dir = fx.path();
    // Run inside the plugin with the output inside it too, as `cd plugin && skillbook watch .` does: the output's
    // own changes must not trigger rebuilds.
    let mut w = Running::start(dir, &["watch", ".", "--out", "build"]);
    let out = dir.join("build");
    w.wait_for_line("built ", 1);
    let agent = out.join("plugin/agents/reviewer.md");
    let bundle = out.join("bundles/reviewer/16000.md");
    let reference = out.join("plugin/skills/code-review/references/testing.md");
    assert!(read(&agent).contains("Testing processes"), "{}", w.stderr());
    let has_site = out.join("site").is_dir();

    // Editor noise first: swap files, vim's 4913 probe, a backup. None of it is content.
    let patterns = dir.join("skills/code-review/patterns");
    fs::write(patterns.join(".testing.md.swp"), "swap").unwrap();
    fs::write(patterns.join("4913"), "").unwrap();
    fs::remove_file(patterns.join("4913")).unwrap();
    fs::write(patterns.join("testing.md~"), "backup").unwrap();

    // Edit a pattern with an atomic save.
    atomic_save(&dir.join(PATTERN), &testing_pattern("Marker-one-Q7"));
    let line = w.wait_for_line("rebuilt in", 1);
    for f in [&agent, &bundle, &reference] {
        wait(&format!("{} to change", f.display()), || {
            read(f).contains("Marker-one-Q7")
        });
    }
    if has_site {
        assert!(
            !site_pages_with(&out, "Marker-one-Q7").is_empty(),
            "no site page shows the edit"
        );
    }
    // Only the edited file was read and parsed; the one agent and its skill were redone.
    assert!(line.contains(PATTERN), "{line}");
    assert_eq!(counts(&line, "read"), 1, "{line}");
    assert_eq!(counts(&line, "parsed"), 1, "{line}");
    assert_eq!(counts(&line, "expanded"), 1, "{line}");
    assert_eq!(counts(&line, "bundled"), 1, "{line}");
    let err = w.stderr();
    assert!(
        !err.contains("4913") && !err.contains(".swp") && !err.contains("md~"),
        "{err}"
    );

    // Break the YAML: the frontmatter is never closed. The error is reported; the old output stays.
    let before = snapshot(&out);
    let broken = testing_pattern("Marker-broken").replacen("\n---\n", "\n", 1);
    assert!(!broken[4..].contains("\n---\n"));
    fs::write(dir.join(PATTERN), broken).unwrap();
    w.wait_for_line("build failed", 1);
    let err = w.stderr();
    assert!(err.contains("unterminated-frontmatter"), "{err}");
    assert!(err.contains("testing.md"), "{err}");
    assert!(err.contains("still holds the last good build"), "{err}");
    assert_eq!(
        snapshot(&out),
        before,
        "the failed build changed the output"
    );
    assert!(read(&agent).contains("Marker-one-Q7"));

    // Fix it: the build recovers.
    fs::write(dir.join(PATTERN), testing_pattern("Marker-two-Q7")).unwrap();
    w.wait_for_line("rebuilt in", 2);
    for f in [&agent, &bundle, &reference] {
        wait(&format!("{} to recover", f.display()), || {
            read(f).contains("Marker-two-Q7")
        });
    }

    // Create a file in a new folder, rename a folder, delete a file.
    let extra = dir.join("skills/code-review/patterns/extra.md");
    fs::write(
        &extra,
        "---\ntitle: Extra\ncovers: [ExUnit]\nsummary: More.\n---\n\nExtra-page-Q7\n",
    )
    .unwrap();
    let extra_ref = out.join("plugin/skills/code-review/references/extra.md");
    wait("the new pattern to appear", || extra_ref.is_file());
    let new_cmd_dir = dir.join("commands/more");
    fs::create_dir_all(&new_cmd_dir).unwrap();
    fs::write(new_cmd_dir.join("deep.md"), "Deep-command-Q7\n").unwrap();
    wait("the new command to appear", || {
        read(&out.join("plugin/commands/more/deep.md")).contains("Deep-command-Q7")
    });
    fs::rename(dir.join("commands/more"), dir.join("commands/renamed")).unwrap();
    wait("the renamed folder to be built", || {
        out.join("plugin/commands/renamed/deep.md").is_file()
            && !out.join("plugin/commands/more").exists()
    });
    fs::remove_file(&extra).unwrap();
    wait("the deleted pattern to go", || !extra_ref.exists());
    assert!(read(&agent).contains("Marker-two-Q7"));

    // Ctrl-C: a clean stop, exit 0, nothing left beside the output.
    w.interrupt_and_wait();
    wait("the last line after Ctrl-C", || {
        w.stderr().contains("stopped watching")
    });
    let err = w.stderr();
    assert!(err.contains("stopped watching"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let leftovers: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("skillbook-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(read(&agent).contains("Marker-two-Q7"));
}

/// Hidden files that are part of the plugin (`.mcp.json`, `.claude-plugin/plugin.json`, `hooks/hooks.json` beside
/// them) rebuild the compiled plugin when saved; a version-control folder is not carried over.
#[test]
fn watch_rebuilds_on_hidden_files_of_the_plugin() {
    let fx = common::fixture("full-plugin");
    let dir = fx.path();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let mut w = Running::start(dir, &["watch", ".", "--out", out.to_str().unwrap()]);
    w.wait_for_line("built ", 1);
    let mcp = out.join("plugin/.mcp.json");
    assert!(read(&mcp).contains("toolkit-server"), "{}", w.stderr());

    // Version control is not part of the plugin.
    fs::create_dir_all(dir.join(".git/refs")).unwrap();
    fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();

    let mut text = read(&dir.join(".mcp.json"));
    text = text.replace("--stdio", "--stdio-Marker-mcp-K2");
    atomic_save(&dir.join(".mcp.json"), &text);
    w.wait_for_line("rebuilt in", 1);
    wait("the compiled .mcp.json to change", || {
        read(&mcp).contains("Marker-mcp-K2")
    });

    let manifest = dir.join(".claude-plugin/plugin.json");
    let text = read(&manifest).replace("\"version\": \"1.2.0\"", "\"version\": \"1.2.1\"");
    assert!(text.contains("1.2.1"));
    atomic_save(&manifest, &text);
    w.wait_for_line("rebuilt in", 2);
    wait("the compiled plugin.json to change", || {
        read(&out.join("plugin/.claude-plugin/plugin.json")).contains("1.2.1")
    });
    // The `.git` folder written before the saves is not part of the compiled plugin (`classify_table` unit-tests
    // that its changes are no changes).
    assert!(!out.join("plugin/.git").exists());
}

/// Reads websocket messages until a text one arrives.
fn next_text(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
) -> String {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return t.to_string(),
            Ok(_) => continue,
            Err(e) => panic!("websocket: {e}"),
        }
    }
}

fn connect(port: u16) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/__skillbook/live"))
        .expect("connect to the live-reload websocket");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    ws
}

/// A raw HTTP GET: (status, body).
fn get(port: u16, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_pushes_reload_only_once_the_files_are_in_place_and_errors_as_an_overlay() {
    let fx = common::fixture("clean-plugin");
    let dir = fx.path();
    let out: PathBuf = dir.parent().unwrap().join("out");
    let out_arg = out.to_string_lossy().into_owned();
    let mut s = Running::start(dir, &["serve", ".", "--port", "0", "--out", &out_arg]);
    let line = s.wait_for_line("serving http://127.0.0.1:", 1);
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    s.wait_for_line("built ", 1);
    let has_site = out.join("site").is_dir();

    let (status, body) = get(port, "/");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("data-skillbook-live"),
        "no live-reload script in {body}"
    );
    for bad in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fout/report.json",
    ] {
        let (status, body) = get(port, bad);
        assert_eq!(status, 403, "{bad}: {body}");
    }

    let agent = out.join("plugin/agents/reviewer.md");
    let bundle = out.join("bundles/reviewer/16000.md");
    let mut ws = connect(port);

    // A save: the first message reloads the pages that show the edit, once they are written; the second comes once
    // every output has it.
    atomic_save(&dir.join(PATTERN), &testing_pattern("Marker-ws-one"));
    let msg = next_text(&mut ws);
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["type"], "reload", "{msg}");
    let listed: Vec<String> = v["pages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if has_site {
        assert_eq!(v["complete"], false, "{msg}");
        let pages = site_pages_with(&out, "Marker-ws-one");
        assert!(!pages.is_empty(), "reload before the site was written");
        for p in &pages {
            assert!(listed.contains(p), "{p} shows the edit but is not in {msg}");
        }
        let (status, body) = get(port, &format!("/{}", pages[0]));
        assert_eq!(status, 200);
        assert!(body.contains("Marker-ws-one") && body.contains("data-skillbook-live"));
        let msg = next_text(&mut ws);
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(
            (&v["type"], &v["complete"]),
            (&"reload".into(), &true.into()),
            "{msg}"
        );
        // print.html holds every page: it is rewritten in the second part.
        assert!(
            v["pages"]
                .as_array()
                .is_some_and(|a| a.contains(&"print.html".into())),
            "{msg}"
        );
    }
    assert!(
        read(&agent).contains("Marker-ws-one"),
        "complete before the plugin was written"
    );
    assert!(
        read(&bundle).contains("Marker-ws-one"),
        "complete before the bundles were written"
    );

    // Broken YAML: the page gets the errors; the last good site is still served.
    let before = snapshot(&out);
    let broken = testing_pattern("Marker-ws-broken").replacen("\n---\n", "\n", 1);
    fs::write(dir.join(PATTERN), broken).unwrap();
    let msg = next_text(&mut ws);
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["type"], "errors", "{msg}");
    let text = v["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("testing.md") && text.contains("unterminated-frontmatter"),
        "{text}"
    );
    assert_eq!(snapshot(&out), before);
    let (status, _) = get(port, "/");
    assert_eq!(status, 200);
    // A page opened now is told at once.
    let mut late = connect(port);
    let msg = next_text(&mut late);
    assert!(msg.contains(r#""type":"errors""#), "{msg}");

    // Fixed: both pages reload (every page: the errors were showing), and the new output is in place (a build after
    // a failure is made whole at once).
    fs::write(dir.join(PATTERN), testing_pattern("Marker-ws-two")).unwrap();
    assert_eq!(next_text(&mut ws), r#"{"type":"reload"}"#);
    assert_eq!(next_text(&mut late), r#"{"type":"reload"}"#);
    assert!(read(&agent).contains("Marker-ws-two"));
    assert!(read(&bundle).contains("Marker-ws-two"));
    assert!(!s.stderr().contains("panicked"));
}

#[test]
fn serve_refuses_a_busy_port_and_watch_a_missing_root() {
    let fx = common::fixture("clean-plugin");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let r = common::run(fx.path(), &["serve", ".", "--port", &port]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot listen"), "{}", r.stderr);
    let r = common::run(fx.path(), &["watch", "no-such-dir"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// A book whose `[output.html] theme` names its own folder, and whose `additional-css` names a file outside the
/// content: saving either renders the site again (both were unwatched before the seventh-session review).
#[test]
fn watch_renders_the_site_again_when_the_book_s_theme_or_additional_css_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let book = tmp.path().join("book");
    common::copy_dir(
        &common::tests_dir().join("fixtures/clean-plugin"),
        &book.join("plugin"),
    );
    fs::write(
        book.join("book.toml"),
        "[book]\ntitle = \"Watched\"\n\n[output.html]\ntheme = \"look\"\nadditional-css = [\"css/extra.css\"]\n\n\
         [preprocessor.skillbook]\ncontent = \"plugin\"\n",
    )
    .unwrap();
    fs::create_dir_all(book.join("look")).unwrap();
    fs::create_dir_all(book.join("css")).unwrap();
    let head = |m: &str| format!("<meta name=\"skillbook-test\" content=\"{m}\">\n");
    fs::write(book.join("look/head.hbs"), head("Look-one-H4")).unwrap();
    fs::write(book.join("css/extra.css"), "/* Extra-one-C5 */\n").unwrap();
    let out = tmp.path().join("out");
    let mut w = Running::start(&book, &["watch", "--out", out.to_str().unwrap()]);
    w.wait_for_line("built ", 1);
    let index = out.join("site/index.html");
    // The stylesheet is written under a name with its content's hash (`css/extra-1a2b3c4d.css`), as mdBook does.
    let css = || {
        let dir = out.join("site/css");
        let names = fs::read_dir(&dir).map(|d| d.flatten().collect::<Vec<_>>());
        let found = names.into_iter().flatten().find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("extra-") && n.ends_with(".css")
        });
        found.map(|e| read(&e.path())).unwrap_or_default()
    };
    assert!(read(&index).contains("Look-one-H4"), "{}", w.stderr());
    assert!(css().contains("Extra-one-C5"), "{}", w.stderr());

    atomic_save(&book.join("look/head.hbs"), &head("Look-two-H4"));
    w.wait_for_line("rebuilt in", 1);
    wait("the theme's head.hbs in the pages", || {
        read(&index).contains("Look-two-H4")
    });

    atomic_save(&book.join("css/extra.css"), "/* Extra-two-C5 */\n");
    w.wait_for_line("rebuilt in", 2);
    wait("the additional stylesheet", || {
        css().contains("Extra-two-C5")
    });
    assert!(read(&index).contains("Look-two-H4"));
}
