//! The documentation site: golden pages and navigation, links and anchors, determinism, and a real browser.
//!
//! The browser test drives Debian's headless `chromium` through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4), serving the built site from
//! a small HTTP server on 127.0.0.1. It fails with a clear message when chromium is missing (`.ci/run` installs it).

use crate::common::{assert_golden, files, fixture, project_dir, run};
use serde_json::{json, Value};
use skillbook::driver;
use skillbook::emit::site::{self, SiteInput};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Compiles a fixture with the library and generates its site pages in memory.
fn generated(name: &str) -> site::Site {
    let dir = fixture(name);
    let config = skillbook::config::resolve(Some(dir.path())).expect("config");
    let compiled =
        driver::compile(config, &indicatif::ProgressBar::hidden()).expect("compile fixture");
    let book = site::load_config(compiled.config.book.as_ref());
    site::generate(
        &SiteInput {
            model: &compiled.model,
            report: &compiled.report,
            book: compiled.config.book.as_ref(),
            bundles: None,
        },
        &book,
    )
}

#[test]
fn navigation_and_pages_match_golden() {
    for name in ["seed", "clean-plugin", "marketplace"] {
        let s = generated(name);
        assert_golden(&format!("site/{name}/SUMMARY.md"), &s.summary);
        assert_golden(&format!("site/{name}/llms.txt"), &site::llms_txt(&s));
        let summary = mdbook_summary::parse_summary(&s.summary)
            .unwrap_or_else(|e| panic!("{name}: SUMMARY does not parse: {e}"));
        assert!(!summary.numbered_chapters.is_empty(), "{name}");
    }
    let s = generated("seed");
    let page = |path: &str| {
        s.pages
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no page {path}"))
    };
    let agent = page("agents/distributed-systems-expert.md");
    assert_golden(
        "site/seed/agents/distributed-systems-expert.md",
        &agent.markdown,
    );
    assert_golden("site/seed/coverage.md", &page("coverage.md").markdown);
    assert_golden(
        "site/seed/patterns/distributed-systems/consensus.md",
        &page("patterns/distributed-systems/consensus.md").markdown,
    );
    // The chapter mdBook renders: cards instead of raw tags, no literal `\n`, highlighted code.
    for text in [&agent.markdown, &agent.chapter] {
        assert!(!text.contains("<example>"), "raw example tag");
        assert!(!text.contains("<commentary>"), "raw commentary tag");
        assert!(!text.contains("\\n"), "literal \\n");
    }
    assert!(agent.chapter.contains("<div class=\"sb-example\">"));
    assert!(agent.chapter.contains("data-lang=\"elixir\""));
    assert!(!agent.chapter.contains("```elixir"));
    assert!(agent.markdown.contains("```elixir"));
}

#[test]
fn site_is_written_with_markdown_and_llms_files() {
    let dir = fixture("seed");
    let out = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &[
            "build",
            ".",
            "-q",
            "--out",
            out.path().join("b").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let site = out.path().join("b/site");
    for f in [
        "index.html",
        "index.md",
        "agents/distributed-systems-expert.html",
        "agents/distributed-systems-expert.md",
        "skills/distributed-systems.html",
        "patterns/distributed-systems/consensus.html",
        "patterns/distributed-systems/consensus.md",
        "coverage.html",
        "coverage.md",
        "llms.txt",
        "llms-full.txt",
        "print.html",
        "404.html",
    ] {
        assert!(site.join(f).is_file(), "missing site/{f}");
    }
    // Every page in the navigation has its markdown next to its HTML, and llms.txt links to each of them.
    let llms = fs::read_to_string(site.join("llms.txt")).unwrap();
    for f in files(&site) {
        if let Some(stem) = f.strip_suffix(".md") {
            assert!(
                site.join(format!("{stem}.html")).is_file(),
                "{f} has no HTML"
            );
            assert!(
                llms.contains(&format!("]({f})")),
                "llms.txt does not link {f}"
            );
        }
    }
    let full = fs::read_to_string(site.join("llms-full.txt")).unwrap();
    assert!(full.contains("# distributed-systems-expert"));
    assert!(full.contains("```elixir"));
    // No Rust sources, templates or the book's own files leak into the site.
    assert!(files(&site)
        .iter()
        .all(|f| !f.ends_with(".rs") && !f.ends_with(".hbs") && !f.starts_with("bundle/")));
    // The bundles page of the shipped agent: every default budget, with its token bar.
    let bundles = fs::read_to_string(site.join("bundles/distributed-systems-expert.html")).unwrap();
    for budget in ["2000 tokens", "4000 tokens", "8000 tokens", "16000 tokens"] {
        assert!(bundles.contains(budget), "no {budget} on the bundles page");
    }
    let broken = check_links(&site);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_bad_book_toml_is_a_clear_error_not_a_panic() {
    let dir = fixture("seed");
    fs::write(
        dir.path().join("book.toml"),
        "[book]\ntitle = \"x\"\nnot-a-key = 1\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
    )
    .unwrap();
    // `check` reads book.toml as `build` does, and refuses it alike.
    for command in [&["build", "-q"][..], &["check"]] {
        let r = run(dir.path(), command);
        assert_eq!(r.code, 2, "{command:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("book.toml:3:1: unknown field `not-a-key`"),
            "{command:?}: {}",
            r.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Links and anchors, checked on the written files.

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ids in an HTML file.
fn ids(html: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r#"\sid="([^"]*)""#).unwrap();
    re.captures_iter(html)
        .map(|c| decode_entities(&c[1]))
        .collect()
}

/// Every internal `href`/`src` of every HTML page, and every relative link of every markdown page, that does not
/// resolve to a file, or names an anchor the target does not have.
fn check_links(site: &Path) -> Vec<String> {
    let attr = regex::Regex::new(r#"\s(?:href|src)="([^"]*)""#).unwrap();
    let md_link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let all = files(site);
    let mut id_cache: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    for f in &all {
        let is_html = f.ends_with(".html");
        let is_md = f.ends_with(".md") || f.ends_with(".txt");
        if !is_html && !is_md {
            continue;
        }
        // mdBook's 404 page links from the site root (`site-url`), wherever it is served from.
        if f == "404.html" {
            continue;
        }
        let text = fs::read_to_string(site.join(f)).unwrap();
        let links: Vec<String> = if is_html {
            attr.captures_iter(&text)
                .map(|c| decode_entities(&c[1]))
                .collect()
        } else {
            let mut in_code = false;
            let mut v = Vec::new();
            for line in text.lines() {
                if line.trim_start().starts_with("```") {
                    in_code = !in_code;
                }
                if !in_code {
                    v.extend(md_link.captures_iter(line).map(|c| c[1].to_string()));
                }
            }
            v
        };
        for link in links {
            if link.is_empty()
                || link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
                || link.starts_with("javascript:")
                || link.starts_with("data:")
            {
                continue;
            }
            let (path, frag) = match link.split_once('#') {
                Some((p, f)) => (p.to_string(), Some(f.to_string())),
                None => (link.clone(), None),
            };
            let path = path.split('?').next().unwrap_or("").to_string();
            let target = if path.is_empty() {
                f.clone()
            } else {
                let base = Path::new(f).parent().unwrap_or(Path::new(""));
                let mut parts: Vec<String> = Vec::new();
                for c in base.join(percent_decode(&path)).components() {
                    match c {
                        std::path::Component::ParentDir if parts.pop().is_none() => {
                            broken.push(format!("{f}: {link} leaves the site"));
                        }
                        std::path::Component::Normal(n) => {
                            parts.push(n.to_string_lossy().into_owned())
                        }
                        _ => {}
                    }
                }
                let mut t = parts.join("/");
                if t.is_empty() || site.join(&t).is_dir() {
                    t = format!(
                        "{}index.html",
                        if t.is_empty() {
                            String::new()
                        } else {
                            format!("{t}/")
                        }
                    );
                }
                t
            };
            if !site.join(&target).is_file() {
                broken.push(format!("{f}: {link} -> {target} does not exist"));
                continue;
            }
            if let Some(frag) = frag.filter(|x| !x.is_empty()) {
                if !target.ends_with(".html") {
                    continue;
                }
                let ids = id_cache.entry(target.clone()).or_insert_with(|| {
                    ids(&fs::read_to_string(site.join(&target)).unwrap_or_default())
                });
                if !ids.contains(&percent_decode(&frag)) {
                    broken.push(format!("{f}: {link} -> no #{frag} in {target}"));
                }
            }
        }
    }
    broken
}

// ---------------------------------------------------------------------------------------------------------------
// A static HTTP server on 127.0.0.1 for the browser.

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve_one(mut stream: TcpStream, root: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or("/"));
    let mut rel = path.trim_start_matches('/').to_string();
    if rel.is_empty() || rel.ends_with('/') {
        rel.push_str("index.html");
    }
    let file = root.join(&rel);
    let (status, body, ctype) = if rel.split('/').any(|c| c == "..") || !file.is_file() {
        (
            "404 Not Found",
            fs::read(root.join("404.html")).unwrap_or_default(),
            "text/html; charset=utf-8",
        )
    } else {
        (
            "200 OK",
            fs::read(&file).unwrap_or_default(),
            content_type(&rel),
        )
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Serves `root` on an ephemeral port of 127.0.0.1 from a background thread; returns the base URL.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || serve_one(stream, &root));
        }
    });
    format!("http://127.0.0.1:{port}/")
}

// ---------------------------------------------------------------------------------------------------------------
// Chromium over the DevTools protocol.

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the site's browser test needs Chromium, which is not installed: run `apt-get install -y chromium` \
         (`.ci/run` installs it), or set CHROMIUM to a Chrome/Chromium binary"
    );
}

struct Browser {
    child: Child,
    to_browser: fs::File,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Events seen while waiting for replies.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// A pipe whose two ends are moved above 10, so that `dup2` onto 3 and 4 in the child cannot clobber them.
fn pipe_high() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-element array for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let high = |fd: i32| {
        // SAFETY: duplicating a descriptor we own; the original is closed right after.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(h >= 10, "fcntl");
        unsafe { libc::close(fd) };
        h
    };
    (high(fds[0]), high(fds[1]))
}

impl Browser {
    fn start() -> Browser {
        use std::os::unix::io::FromRawFd;
        use std::os::unix::process::CommandExt;
        let bin = chromium();
        let profile = tempfile::tempdir().unwrap();
        let (child_in, parent_out) = pipe_high(); // browser reads fd 3
        let (parent_in, child_out) = pipe_high(); // browser writes fd 4
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // SAFETY: the child has its copies; these are ours alone from here on.
        unsafe {
            libc::close(child_in);
            libc::close(child_out);
        }
        let to_browser = unsafe { fs::File::from_raw_fd(parent_out) };
        let from = unsafe { fs::File::from_raw_fd(parent_in) };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
            _profile: profile,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.page(domain, json!({}));
        }
        b
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Waits for an event of `method` (or the deadline); keeps the others.
    fn wait_event(&mut self, method: &str, timeout: Duration) -> bool {
        if self.events.iter().any(|e| e["method"] == method) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        while let Ok(v) = self
            .from_browser
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let hit = v["method"] == method;
            self.events.push(v);
            if hit {
                return true;
            }
        }
        false
    }

    /// Loads `url` and returns the console errors, uncaught exceptions and failed loads it caused.
    fn visit(&mut self, url: &str) -> Vec<String> {
        self.events.clear();
        self.page("Page.navigate", json!({"url": url}));
        assert!(
            self.wait_event("Page.loadEventFired", Duration::from_secs(20)),
            "{url} did not finish loading"
        );
        // Let deferred scripts (sidebar, search, highlighting) run.
        self.eval("new Promise(r => setTimeout(r, 150))");
        self.drain();
        let mut errors = Vec::new();
        for e in &self.events {
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => errors.push(format!(
                    "exception: {}",
                    e["params"]["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(e["params"]["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                )),
                Some("Runtime.consoleAPICalled")
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    errors.push(format!("console.error: {}", e["params"]["args"]))
                }
                Some("Log.entryAdded") if e["params"]["entry"]["level"] == "error" => {
                    errors.push(format!(
                        "{} ({})",
                        e["params"]["entry"]["text"].as_str().unwrap_or("?"),
                        e["params"]["entry"]["url"].as_str().unwrap_or("")
                    ))
                }
                _ => {}
            }
        }
        errors
    }

    fn drain(&mut self) {
        while let Ok(v) = self.from_browser.try_recv() {
            self.events.push(v);
        }
    }

    /// Evaluates an expression in the page (awaiting promises) and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("evaluating {expr}: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy or `timeout` passes.
    fn wait_for(&mut self, expr: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expr);
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `index.html?search=QUERY` under `base` (asserting it loads cleanly) and waits for the results: their
    /// number (0 when none came within 10 s).
    fn search(&mut self, base: &str, query: &str) -> u64 {
        let errors = self.visit(&format!("{base}index.html?search={query}"));
        assert!(errors.is_empty(), "?search={query}: {errors:?}");
        self.wait_for(
            "document.querySelectorAll('#mdbook-searchresults li').length",
            Duration::from_secs(10),
        )
        .as_u64()
        .unwrap_or(0)
    }

    /// A PNG of the viewport, after scrolling to `y` (pixels).
    fn screenshot(&mut self, y: u32) -> Vec<u8> {
        self.eval(&format!(
            "window.scrollTo(0, {y}); new Promise(r => setTimeout(r, 200))"
        ));
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        decode_base64(r["data"].as_str().unwrap_or(""))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Builds the site of the project's own content (`content/`, configured by the root book.toml) into a temp dir.
fn build_default_site() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let r = run(
        &project_dir(),
        &[
            "build",
            "-q",
            "--out",
            out.path().join("build").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let site = out.path().join("build/site");
    (out, site)
}

#[test]
fn browser_loads_every_page_highlights_elixir_and_searches() {
    let (_out, site) = build_default_site();
    let broken = check_links(&site);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));

    let base = serve(site.clone());
    let mut b = Browser::start();
    let pages: Vec<String> = files(&site)
        .into_iter()
        // toc.html is not a page: mdBook's sidebar for readers without JavaScript, shown in an iframe.
        .filter(|f| f.ends_with(".html") && f != "toc.html")
        .collect();
    assert!(pages.len() > 10, "{pages:?}");
    let mut failures = Vec::new();
    for p in &pages {
        let errors = b.visit(&format!("{base}{p}"));
        if !errors.is_empty() {
            failures.push(format!("{p}:\n  {}", errors.join("\n  ")));
        }
        let title = b.eval("document.title");
        if title.as_str().unwrap_or("").is_empty() {
            failures.push(format!("{p}: no title"));
        }
    }
    assert!(
        failures.is_empty(),
        "pages with console errors:\n{}",
        failures.join("\n")
    );

    // The seed agent's Elixir example is highlighted on the server, and highlight.js left it alone.
    let errors = b.visit(&format!("{base}agents/distributed-systems-expert.html"));
    assert!(errors.is_empty(), "{errors:?}");
    let seen = b.eval(
        r#"(() => {
            const blocks = [...document.querySelectorAll('pre[data-lang="elixir"] > code')];
            const ex = blocks.find(c => c.textContent.includes('Potential issue: Full-mesh Distributed Erlang'));
            if (!ex) return {found: false, blocks: blocks.length};
            return {
                found: true,
                blocks: blocks.length,
                spans: ex.querySelectorAll('span[class*="sy-"]').length,
                comments: ex.querySelectorAll('span.sy-comment').length,
                hljs: ex.querySelectorAll('[class*="hljs-"]').length,
                color: getComputedStyle(ex.querySelector('span.sy-comment')).color,
                plain: getComputedStyle(ex).color,
            };
        })()"#,
    );
    assert_eq!(seen["found"], json!(true), "{seen}");
    assert!(seen["spans"].as_u64().unwrap_or(0) >= 3, "{seen}");
    assert!(seen["comments"].as_u64().unwrap_or(0) >= 1, "{seen}");
    assert_eq!(
        seen["hljs"],
        json!(0),
        "highlight.js re-highlighted: {seen}"
    );
    assert_ne!(
        seen["color"], seen["plain"],
        "token colours are not applied: {seen}"
    );
    // Every Elixir block on the pattern pages too.
    b.visit(&format!("{base}patterns/distributed-systems/raft.html"));
    let raft = b.eval(
        r#"[...document.querySelectorAll('pre[data-lang="elixir"] > code')].map(c => c.querySelectorAll('span.sy-keyword').length)"#,
    );
    let counts = raft.as_array().cloned().unwrap_or_default();
    assert!(!counts.is_empty(), "no elixir block on the Raft page");
    assert!(counts.iter().all(|c| c.as_u64().unwrap_or(0) > 0), "{raft}");

    // mdBook's search finds Raft.
    assert!(b.search(&base, "Raft") > 0, "search found nothing");
    let links = b.eval(
        "[...document.querySelectorAll('#mdbook-searchresults li a')].map(a => a.getAttribute('href'))",
    );
    assert!(
        links.as_array().is_some_and(|l| l
            .iter()
            .any(|h| h.as_str().unwrap_or("").contains("raft.html"))),
        "no result on the Raft page: {links}"
    );
    // The index is in fragments: the query loaded the settings, meta.js, the term fragment its word falls in and
    // document fragments, not the whole index.
    let loaded = b.eval(
        "performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/search/')).map(n => n.split('/search/')[1])",
    );
    let loaded: Vec<String> = loaded
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let terms = loaded.iter().filter(|n| n.starts_with("t/")).count();
    let all_terms = files(&site)
        .iter()
        .filter(|f| f.starts_with("search/t/"))
        .count();
    assert!(loaded.contains(&"meta.js".to_string()), "{loaded:?}");
    assert_eq!(terms, 1, "one term fragment per query word: {loaded:?}");
    assert!(all_terms > 4, "the index has {all_terms} term fragments");
    // A result names the page and the heading, and its link opens that place with the words marked.
    let first = b.eval(
        "(() => { const a = [...document.querySelectorAll('#mdbook-searchresults li a')].find(a => a.getAttribute('href').includes('raft.html')); return {text: a.textContent, href: a.href}; })()",
    );
    let text = first["text"].as_str().unwrap_or("").to_string();
    assert!(text.contains("Raft"), "{first}");
    let href = first["href"].as_str().unwrap_or("").to_string();
    let errors = b.visit(&href);
    assert!(errors.is_empty(), "{href}: {errors:?}");
    let at = b.eval("location.pathname");
    assert!(at.as_str().unwrap_or("").ends_with("raft.html"), "{at}");
    if let Some((_, anchor)) = href.split_once('#') {
        let found = b.eval(&format!("!!document.getElementById({})", json!(anchor)));
        assert_eq!(found, json!(true), "no element #{anchor} on {href}");
    }
    let marks = b.wait_for(
        "document.querySelectorAll('main mark').length",
        Duration::from_secs(5),
    );
    assert!(
        marks.as_u64().unwrap_or(0) > 0,
        "the search words are not marked on {href}"
    );

    // `s` opens the search bar; a word's beginning finds it (expand), and a heading shows after the page title.
    b.visit(&format!("{base}index.html"));
    b.eval("document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 's', bubbles: true}))");
    let open = b.wait_for(
        "!document.getElementById('mdbook-search-wrapper').classList.contains('hidden')",
        Duration::from_secs(5),
    );
    assert_eq!(open, json!(true), "`s` did not open the search bar");
    b.eval("(() => { const s = document.getElementById('mdbook-searchbar'); s.value = 'quor'; s.dispatchEvent(new KeyboardEvent('keyup', {key: 'r'})); })()");
    let hits = b.wait_for(
        "[...document.querySelectorAll('#mdbook-searchresults li a')].map(a => a.textContent).join('\\n')",
        Duration::from_secs(10),
    );
    let hits = hits.as_str().unwrap_or("").to_string();
    assert!(hits.contains("Quorum"), "{hits}");
    assert!(hits.contains(" » "), "no result names a heading: {hits}");

    // A word's beginning that a term fragment other than the first begins with: that fragment, those after it that begin
    // with it too, and the one before it (where the word's beginning itself falls) load, and words are found.
    let (_, meta) = site::search::read_fragment(&fs::read(site.join("search/meta.js")).unwrap())
        .expect("meta.js is a fragment script");
    let firsts: Vec<String> = meta["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap().to_string())
        .collect();
    let letter = ('a'..='z')
        .find(|c| firsts.iter().skip(1).any(|f| f.starts_with(*c)))
        .expect("a term fragment after the first begins with a letter");
    assert!(
        b.search(&base, &letter.to_string()) > 0,
        "`{letter}` found nothing"
    );
    let loaded = b.eval(
        "performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/search/t/')).length",
    );
    // The fragment the letter falls in (the last whose first word is not after it) and those after it that begin
    // with it.
    let word = letter.to_string();
    let at = firsts.iter().rposition(|f| f.as_str() <= word.as_str());
    let after = firsts[at.map_or(0, |a| a + 1)..]
        .iter()
        .take_while(|f| f.starts_with(letter))
        .count();
    let expected = (at.is_some() as usize + after) as u64;
    assert!(after >= 1, "{firsts:?}");
    assert_eq!(
        loaded.as_u64(),
        Some(expected),
        "`{letter}`: term fragments loaded, of {firsts:?}"
    );
}

/// Screenshots for people: `SCREENSHOTS=/tmp/shots cargo test --test testsuite site::screenshots -- --ignored`
/// writes PNGs of the main pages, light and dark, at a few scroll positions.
#[test]
#[ignore]
fn screenshots() {
    let dir = PathBuf::from(
        std::env::var("SCREENSHOTS").unwrap_or_else(|_| "/tmp/skillbook-shots".into()),
    );
    fs::create_dir_all(&dir).unwrap();
    let (_out, site) = build_default_site();
    let base = serve(site.clone());
    let mut b = Browser::start();
    let pages = [
        ("index", "index.html", vec![0]),
        (
            "agent",
            "agents/distributed-systems-expert.html",
            vec![0, 900, 1800, 2700, 3600],
        ),
        ("skill", "skills/distributed-systems.html", vec![0]),
        (
            "category",
            "patterns/distributed-systems/by-category/consensus-algorithms.html",
            vec![0],
        ),
        (
            "raft",
            "patterns/distributed-systems/raft.html",
            vec![0, 2200],
        ),
        ("coverage", "coverage.html", vec![0, 900]),
        ("search", "index.html?search=Raft", vec![0]),
    ];
    for theme in ["light", "navy"] {
        for (name, page, offsets) in &pages {
            b.visit(&format!("{base}index.html"));
            b.eval(&format!("localStorage.setItem('mdbook-theme', '{theme}')"));
            b.visit(&format!("{base}{page}"));
            if page.contains("search=") {
                b.wait_for(
                    "document.querySelectorAll('#mdbook-searchresults li').length",
                    Duration::from_secs(10),
                );
            }
            for y in offsets {
                let png = b.screenshot(*y);
                let path = dir.join(format!("{name}-{theme}-{y}.png"));
                fs::File::create(&path).unwrap().write_all(&png).unwrap();
                println!("{}", path.display());
            }
        }
    }
}

#[test]
fn percent_decode_table() {
    assert_eq!(percent_decode("a%20b"), "a b");
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%zz"), "%zz");
}

/// Names and text that are markdown, HTML or path syntax, odd code fences, links to nothing, and errors in the
/// content: the site is still built (through the library, which builds it whatever the check found), nothing is
/// injected, and every link it writes resolves.
#[test]
fn hostile_content_is_escaped_and_links_still_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write(
        "agents/weird.md",
        r##"---
name: "we[ird] <script>alert(1)</script> `x`"
description: 'Use it.\n<example>\nContext: a <b>bold</b> | pipe\nuser: "hi `code` [link](x.md)"\nassistant: "ok"\n</example>\nExamples:'
model: "gpt-<i>"
color: "#ff0000; background:url(x)"
tools: [Read, "Bash(rm -rf /)"]
skills: [s1, missing-skill]
---

# Title {#custom}

## Your Expertise

- **Cat | pipe**: A [b], <c>, `d`, item*star*
- **Cat | pipe**: again

## Responsibilities

1. **Do [x] things**

```unknownlang
<tag> & stuff
```

- list

  ```toml
  a = 1

  b = "</pre>"
  ```

> ```json
> {"a": 1}
> ```

[Content will be expanded in follow-up - this stub enables plugin loading]
"##,
    );
    write(
        "skills/s1/SKILL.md",
        "---\nname: s1\ndescription: d\n---\nSee [p](patterns/p.md) and [q](patterns/q.md#frag).\n\n[Content will be expanded with full details - this stub enables plugin loading]\n",
    );
    write(
        "skills/s1/patterns/p.md",
        "---\ntitle: \"# Hash [title] <b>\"\ncovers: [\"A [b]\", \"<c>\", \"nothing here\"]\npriority: 3\n---\n# Hash [title] <b>\n\nLink to [other](./q.md) and [ext](https://x.org).\n\n```elixir\ndefmodule A do end\n```\n",
    );
    write(
        "skills/s1/patterns/q.md",
        "---\ntitle: Q\ncovers: ['`d`']\n---\nbody: AT&T’s “new” plan\n",
    );
    // A file named with carriage returns and no `name`: its title is the file's stem (the `site` fuzzer's second
    // finding: the line breaks in the title broke the generated SUMMARY.md, and the site was not built).
    write(
        "agents/car\r\r\rriage.md",
        "---\ndescription: Use it.\n---\n# T\n",
    );
    fs::create_dir_all(root.join("skills/empty")).unwrap();
    let config = skillbook::config::resolve(Some(root)).expect("config");
    let compiled = driver::compile(config, &indicatif::ProgressBar::hidden()).expect("compile");
    assert!(compiled.report.summary.errors > 0, "the fixture has errors");
    let mut tree = skillbook::write::OutputTree::new();
    site::emit(
        &SiteInput {
            model: &compiled.model,
            report: &compiled.report,
            book: None,
            bundles: None,
        },
        "site/",
        &mut tree,
    )
    .expect("site");
    let out = tempfile::tempdir().unwrap();
    for (rel, bytes) in &tree {
        let p = out.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    let site_dir = out.path().join("site");
    let agent = fs::read_to_string(site_dir.join("agents/weird.html")).unwrap();
    assert!(!agent.contains("<script>alert"), "unescaped name");
    let style = regex::Regex::new(r#"style="[^"]*url\("#).unwrap();
    assert!(!style.is_match(&agent), "colour reached a style attribute");
    assert!(agent.contains("sb-swatch-unknown"));
    assert!(agent.contains("data-lang=\"unknownlang\""));
    assert!(agent.contains("sb-plain"));
    assert!(agent.contains("data-lang=\"toml\""));
    assert!(agent.contains("data-lang=\"json\""));
    // An entity next to characters of several bytes (the `site` fuzzer's finding: the search index's text
    // extraction sliced inside the `“`, and the build panicked).
    let q = fs::read_to_string(site_dir.join("patterns/s1/q.html")).unwrap();
    assert!(q.contains("AT&amp;T’s “new” plan"), "{q}");
    assert!(site_dir.join("agents/car-riage.html").is_file());
    let md = fs::read_to_string(site_dir.join("agents/weird.md")).unwrap();
    assert!(!md.contains("<example>") && !md.contains("\\n"), "{md}");
    // The content itself links to `x.md` (no such file) and to `q.md#frag` (no such heading); those stay broken,
    // and nothing else is.
    let broken: Vec<String> = check_links(&site_dir)
        .into_iter()
        .filter(|b| !b.contains("x.html") && !b.contains("x.md") && !b.contains("#frag"))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The `<main>` element of a page (as mdBook's own tests compare pages: the frame around it is the theme's).
fn main_of(html: &str) -> &str {
    let start = html.find("<main>").expect("a <main> element");
    let end = html.rfind("</main>").expect("a </main>");
    &html[start..end + "</main>".len()]
}

#[test]
fn shipped_pages_match_golden_main() {
    let (_out, site) = build_default_site();
    let pages = [
        "index.html",
        "agents/distributed-systems-expert.html",
        "skills/distributed-systems.html",
        "patterns/distributed-systems/raft.html",
        "patterns/distributed-systems/by-category/consensus-algorithms.html",
        "coverage.html",
        "404.html",
    ];
    for p in pages {
        let html = fs::read_to_string(site.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_golden(&format!("site/main/{p}"), &format!("{}\n", main_of(&html)));
    }
    // Every page has its content in <main> and names the shared scripts by their stable names.
    for p in files(&site)
        .iter()
        .filter(|f| f.ends_with(".html") && *f != "toc.html")
    {
        let html = fs::read_to_string(site.join(p)).unwrap();
        assert!(html.contains("<main>"), "{p} has no <main>");
    }
}

/// Copies the project's book (book.toml, content/, theme/) into `dir`.
fn copy_project(dir: &Path) {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dest);
            } else {
                fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    let root = project_dir();
    fs::copy(root.join("book.toml"), dir.join("book.toml")).unwrap();
    copy(&root.join("content"), &dir.join("content"));
    copy(&root.join("theme"), &dir.join("theme"));
}

#[test]
fn editing_one_pattern_changes_only_its_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("book");
    fs::create_dir_all(&root).unwrap();
    copy_project(&root);
    let build = |out: &str| {
        let r = run(&root, &["build", "-q", "--out", out]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let site = root.join(out).join("site");
        files(&site)
            .into_iter()
            .map(|f| {
                let bytes = fs::read(site.join(&f)).unwrap();
                (f, bytes)
            })
            .collect::<BTreeMap<String, Vec<u8>>>()
    };
    let before = build("out1");
    let raft = root.join("content/skills/distributed-systems/patterns/raft.md");
    let text = fs::read_to_string(&raft).unwrap();
    fs::write(
        &raft,
        format!(
            "{}\n\nAn added paragraph about zanzibarquux.\n",
            text.trim_end()
        ),
    )
    .unwrap();
    let after = build("out2");
    assert_eq!(
        before
            .keys()
            .filter(|k| !k.starts_with("search/"))
            .collect::<Vec<_>>(),
        after
            .keys()
            .filter(|k| !k.starts_with("search/"))
            .collect::<Vec<_>>(),
        "the set of files changed"
    );
    let changed: Vec<&String> = before
        .keys()
        .filter(|k| !k.starts_with("search/") && before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            // The paragraph lands in raft's last section (Sources), which no default bundle takes, so the bundle
            // pages (tokens as they went in) stay the same.
            "llms-full.txt",
            "patterns/distributed-systems/raft.html",
            "patterns/distributed-systems/raft.md",
            "print.html",
        ],
        "only the edited page, the pages showing its full text and the files holding every page may change"
    );
    // The new word is in the index, in one term fragment.
    let holding: Vec<&String> = after
        .iter()
        .filter(|(k, v)| {
            k.starts_with("search/t/") && String::from_utf8_lossy(v).contains("\"zanzibarquux\":[")
        })
        .map(|(k, _)| k)
        .collect();
    assert_eq!(holding.len(), 1, "{holding:?}");
}

/// The site reads its `[book]` and `[output.html]` tables from the book.toml text that loading read: only loading
/// reads files, so a book.toml changed or gone after loading does not change the build that loaded it.
#[test]
fn the_site_is_configured_from_the_book_toml_loading_read() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_project(root);
    let config = skillbook::config::resolve(Some(root)).expect("config");
    fs::remove_file(root.join("book.toml")).unwrap();
    let compiled = driver::compile(config, &indicatif::ProgressBar::hidden()).expect("compile");
    let mut tree = skillbook::write::OutputTree::new();
    site::emit(
        &SiteInput {
            model: &compiled.model,
            report: &compiled.report,
            book: compiled.config.book.as_ref(),
            bundles: None,
        },
        "site/",
        &mut tree,
    )
    .expect("site");
    let index = String::from_utf8(tree.get("site/index.html").expect("index").to_vec()).unwrap();
    assert!(
        index.contains("<title>Overview - distributed-systems: a Claude Code plugin for BEAM"),
        "the title comes from the book.toml loading read: {}",
        &index[..index.len().min(600)]
    );
}
