//! Serve: the watch loop plus an HTTP server for `<out>/site/` with live reload.
//!
//! - HTTP with `tiny_http` on a few threads, bound to 127.0.0.1 unless told otherwise, with a listen backlog of
//!   [`BACKLOG`] connections (the standard library's 128 overflowed under a burst of connections: the kernel fell
//!   back to SYN cookies and reset some of them). Only GET and HEAD. A request
//!   path is percent-decoded and split into segments; `..`, `.`, backslashes and NUL are refused (403), and a path
//!   whose target, once symlinks are resolved, lies outside the served folder is refused too.
//! - The served folder is `<out>/site/` once it exists, else `<out>/` itself; a folder without `index.html` is
//!   shown as a plain listing. Responses are never cached by the browser.
//! - Every HTML response gets a small script ([`LIVE_SCRIPT`]) that opens a websocket to [`LIVE_PATH`]
//!   (`tungstenite` over the upgraded `tiny_http` connection). After each rebuild the server sends
//!   `{"type":"reload"}` (the page reloads) or `{"type":"errors","text":...}` (the page shows the errors over itself
//!   and keeps the last good content). The watch loop hands the outcome over only once the new output is
//!   completely in place, so a reload never meets a half-written site. A page opened while the build is broken
//!   gets the errors as soon as it connects.

use crate::driver::Options;
use crate::watch::{self, Outcome};
use crate::Exit;
use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, StatusCode};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// The websocket the injected script connects to.
pub const LIVE_PATH: &str = "/__skillbook/live";

/// The script added to every served HTML page: connects to [`LIVE_PATH`], reloads on `reload`, shows an overlay
/// on `errors`, and reconnects (reloading the page) when the server comes back.
pub const LIVE_SCRIPT: &str = r#"<script data-skillbook-live>
(function () {
  var overlay = null, wasOpen = false;
  function hide() { if (overlay) { overlay.remove(); overlay = null; } }
  function show(text) {
    hide();
    overlay = document.createElement('div');
    overlay.id = 'skillbook-errors';
    overlay.setAttribute('role', 'alert');
    overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;overflow:auto;padding:2em;' +
      'background:rgba(24,24,27,.94);color:#f4f4f5;font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace';
    var head = document.createElement('div');
    head.style.cssText = 'font-weight:bold;color:#fca5a5;margin-bottom:1em';
    head.textContent = 'skillbook: the build failed. You are looking at the last good build; ' +
      'fix the errors below and the page reloads.';
    var pre = document.createElement('pre');
    pre.style.cssText = 'white-space:pre-wrap;margin:0 0 1em 0;color:inherit;background:none;border:0;padding:0';
    pre.textContent = text;
    var button = document.createElement('button');
    button.textContent = 'Dismiss';
    button.onclick = hide;
    overlay.append(head, pre, button);
    document.body.appendChild(overlay);
  }
  function here() {
    var p = decodeURIComponent(location.pathname).replace(/^\/+/, '');
    return (p === '' || p.slice(-1) === '/') ? p + 'index.html' : p;
  }
  function connect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/__skillbook/live');
    ws.onopen = function () { if (wasOpen) { location.reload(); } wasOpen = true; };
    ws.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      if (m.type === 'reload' && (!m.pages || m.pages.indexOf(here()) >= 0)) { location.reload(); }
      else if (m.type === 'errors') { show(m.text); }
    };
    ws.onclose = function () { setTimeout(connect, 1000); };
  }
  connect();
})();
</script>
"#;

/// Options of `skillbook serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Open the site in the default browser after the first build.
    pub open: bool,
}

/// The live-reload clients and the current build errors.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<HubInner>,
}

#[derive(Default)]
struct HubInner {
    clients: Vec<mpsc::Sender<String>>,
    errors: Option<String>,
}

/// `{"type":"reload"}`: every page reloads.
pub fn reload_message() -> String {
    serde_json::json!({ "type": "reload" }).to_string()
}

/// `{"type":"reload","pages":[...],"complete":...}`: the pages (HTML files, by path in the site) whose files the
/// rebuild changed reload; `complete` is false when the rest of the output follows in a second message (the site's
/// pages are written first, then the bundles, `print.html`, the search index and `llms-full.txt`).
pub fn pages_message(pages: &[&str], complete: bool) -> String {
    serde_json::json!({ "type": "reload", "pages": pages, "complete": complete }).to_string()
}

/// `{"type":"errors","text":...}`.
pub fn errors_message(text: &str) -> String {
    serde_json::json!({ "type": "errors", "text": text }).to_string()
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every page about a rebuild: reload when the output changed (or errors were showing), or the errors.
    pub fn publish(&self, outcome: &Outcome) {
        let mut inner = self.lock();
        let msg = match outcome {
            Outcome::Built(b) => {
                let had_errors = inner.errors.take().is_some();
                if had_errors {
                    reload_message()
                } else if !b.changed {
                    return;
                } else {
                    let pages: Vec<&str> = b
                        .stats
                        .written
                        .iter()
                        .filter_map(|p| p.strip_prefix("site/"))
                        .filter(|p| p.ends_with(".html"))
                        .collect();
                    pages_message(&pages, !b.partial)
                }
            }
            Outcome::Failed(f) => {
                inner.errors = Some(f.text.clone());
                errors_message(&f.text)
            }
            Outcome::Unchanged(_) => return,
        };
        inner.clients.retain(|c| c.send(msg.clone()).is_ok());
    }

    /// A new page: it gets the current errors at once, if there are any.
    fn subscribe(&self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        let mut inner = self.lock();
        if let Some(e) = &inner.errors {
            let _ = tx.send(errors_message(e));
        }
        inner.clients.push(tx);
        rx
    }

    /// How many pages are connected.
    pub fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Disconnects every page.
    fn close(&self) {
        self.lock().clients.clear();
    }
}

/// The HTTP server: its address, its hub, and its worker threads.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

const WORKERS: usize = 4;

/// Connections the kernel may queue before the server accepts them. A page load opens a few; a burst of hundreds
/// (a reload of many tabs, a link checker) overflowed the standard library's 128, and the kernel then answered some
/// with a reset. The kernel caps it at `net.core.somaxconn`.
pub const BACKLOG: i32 = 1024;

/// Binds a TCP listener on `addr` with a backlog of [`BACKLOG`], as `TcpListener::bind` does otherwise
/// (`SO_REUSEADDR` on Unix, so a restarted server can take its port back at once).
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

impl Server {
    /// Binds `bind:port` and serves `out` (its `site/` folder once there is one).
    pub fn start(bind: IpAddr, port: u16, out: &Path) -> io::Result<Server> {
        let listener = listen(SocketAddr::new(bind, port))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("not an IP address"))?;
        let http = Arc::new(http);
        let hub = Arc::new(Hub::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let (http, hub, stop, out) =
                (http.clone(), hub.clone(), stop.clone(), out.to_path_buf());
            let t = std::thread::Builder::new()
                .name(format!("skillbook-http-{i}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        match http.recv() {
                            Ok(req) => handle(req, &out, &hub),
                            Err(_) => break,
                        }
                    }
                })?;
            workers.push(t);
        }
        Ok(Server {
            http,
            addr,
            hub,
            stop,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The URL of the site, with `localhost` written as 127.0.0.1.
    pub fn url(&self) -> String {
        match self.addr.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}/", self.addr.port()),
            IpAddr::V4(ip) if ip.is_unspecified() => {
                format!("http://127.0.0.1:{}/", self.addr.port())
            }
            IpAddr::V4(ip) => format!("http://{ip}:{}/", self.addr.port()),
        }
    }

    /// Stops the workers and disconnects the pages.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        for _ in 0..self.workers.len() {
            self.http.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.hub.close();
    }
}

/// `skillbook serve`: serves `<out>/site/` with live reload and rebuilds on every change until Ctrl-C.
pub fn run(opts: &Options, out: &Path, serve: &ServeOptions) -> Exit {
    // Find the content before announcing a URL: a missing root is reported without ever listening.
    if let Err(e) = crate::config::resolve_for(opts.root.as_deref(), opts.command) {
        eprintln!("skillbook: error: {e}");
        return Exit::Failure;
    }
    let server = match Server::start(serve.bind, serve.port, out) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "skillbook: error: cannot listen on {}: {e}",
                SocketAddr::new(serve.bind, serve.port)
            );
            return Exit::Failure;
        }
    };
    let url = server.url();
    eprintln!("serving {url} (live reload)");
    if !serve.bind.is_loopback() {
        eprintln!(
            "skillbook: warning: listening on {}: other machines can read the site",
            serve.bind
        );
    }
    let hub = server.hub().clone();
    let open = serve.open;
    let exit = watch::run(opts, out, &mut |outcome| hub.publish(outcome), &mut || {
        if open {
            open_browser(&url);
        }
    });
    server.stop();
    exit
}

/// Opens `url` in the default browser, without waiting for it.
fn open_browser(url: &str) {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Err(e) = cmd.spawn() {
        eprintln!("skillbook: warning: cannot open a browser ({e}); open {url}");
    }
}

/// Why a request path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not valid percent-encoding or UTF-8.
    BadRequest,
    /// It tries to leave the served folder.
    Forbidden,
}

/// The path part of a request target, percent-decoded and split into segments. Refuses `..`, `.`, backslashes,
/// NUL and drive letters anywhere, encoded or not.
pub fn segments(target: &str) -> Result<Vec<String>, Refused> {
    let mut path = target;
    if let Some(rest) = path
        .strip_prefix("http://")
        .or_else(|| path.strip_prefix("https://"))
    {
        path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path).ok_or(Refused::BadRequest)?;
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg == ".." || seg == "." || seg.contains(['\\', '\0', ':']) {
            return Err(Refused::Forbidden);
        }
        out.push(seg.to_string());
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The content type of a file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "xml" => "application/xml; charset=utf-8",
        "md" | "txt" | "toml" | "yaml" | "yml" | "hbs" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Adds [`LIVE_SCRIPT`] before the last `</body>`, or at the end.
pub fn inject(html: &[u8]) -> Vec<u8> {
    let lower = html.to_ascii_lowercase();
    let at = lower
        .windows(7)
        .rposition(|w| w == b"</body>")
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + LIVE_SCRIPT.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(LIVE_SCRIPT.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Skillbook"[..], &b"1"[..]).expect("valid header")
    })
}

type Reply = Response<io::Cursor<Vec<u8>>>;

fn reply(status: u16, ctype: &str, body: Vec<u8>) -> Reply {
    Response::from_data(body)
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", ctype))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn page(status: u16, title: &str, body_html: &str) -> Reply {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body style=\"font-family:system-ui,sans-serif;margin:2em\">\n<h1>{t}</h1>\n{body_html}\n</body></html>\n",
        t = escape_html(title)
    );
    reply(status, "text/html; charset=utf-8", inject(html.as_bytes()))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn handle(req: Request, out: &Path, hub: &Hub) {
    let url = req.url().to_string();
    let path_part = url.split(['?', '#']).next().unwrap_or("").to_string();
    if path_part == LIVE_PATH {
        return upgrade(req, hub);
    }
    let response = match req.method() {
        Method::Get | Method::Head => respond_to(&url, out),
        _ => reply(
            405,
            "text/plain; charset=utf-8",
            b"only GET and HEAD\n".to_vec(),
        )
        .with_header(header("Allow", "GET, HEAD")),
    };
    let _ = req.respond(response);
}

/// The folder being served: `<out>/site/` once it exists, else `<out>/`.
pub fn served_root(out: &Path) -> PathBuf {
    let site = out.join("site");
    if site.is_dir() {
        site
    } else {
        out.to_path_buf()
    }
}

/// The response to a GET of `target` (HEAD gets the same without its body).
pub fn respond_to(target: &str, out: &Path) -> Reply {
    let segs = match segments(target) {
        Ok(s) => s,
        Err(Refused::BadRequest) => {
            return reply(
                400,
                "text/plain; charset=utf-8",
                b"bad request path\n".to_vec(),
            )
        }
        Err(Refused::Forbidden) => {
            return reply(
                403,
                "text/plain; charset=utf-8",
                b"forbidden: the path leaves the site\n".to_vec(),
            )
        }
    };
    let root = served_root(out);
    let Ok(canon_root) = fs::canonicalize(&root) else {
        return page(
            503,
            "No build yet",
            "<p>skillbook has not written a build yet. If the first build failed, its errors are shown here and in the terminal; this page reloads when a build succeeds.</p>",
        );
    };
    let mut path = canon_root.clone();
    for s in &segs {
        path.push(s);
    }
    let resolved = match fs::canonicalize(&path) {
        Ok(p) => p,
        Err(_) => return not_found(&canon_root),
    };
    if !resolved.starts_with(&canon_root) {
        return reply(
            403,
            "text/plain; charset=utf-8",
            b"forbidden: the path leaves the site\n".to_vec(),
        );
    }
    if resolved.is_dir() {
        let path_part = target.split(['?', '#']).next().unwrap_or("/");
        if !path_part.ends_with('/') {
            let location = folder_location(&segs, target);
            return reply(301, "text/plain; charset=utf-8", Vec::new())
                .with_header(header("Location", &location));
        }
        let index = resolved.join("index.html");
        if index.is_file() {
            return file(&index, 200);
        }
        return listing(&resolved, &segs);
    }
    file(&resolved, 200)
}

/// Where a request for a folder without its trailing `/` is sent: the same folder on this server, built from the
/// decoded segments (never from the target as written, whose `//host/x` or `http://host/x` would send the browser
/// to another host), with the query kept, its bytes that a header cannot hold percent-encoded.
fn folder_location(segs: &[String], target: &str) -> String {
    let mut location = String::from("/");
    for s in segs {
        location.push_str(&percent_encode(s));
        location.push('/');
    }
    let query = target
        .find('?')
        .map(|i| &target[i..])
        .unwrap_or("")
        .split('#')
        .next()
        .unwrap_or("");
    // A header holds printable ASCII only: a query's other bytes (a space, a character of several bytes, a control
    // character) are percent-encoded, as a browser encodes them, so the query survives the redirect.
    for b in query.bytes() {
        if b.is_ascii_graphic() {
            location.push(b as char);
        } else {
            location.push_str(&format!("%{b:02X}"));
        }
    }
    location
}

fn file(path: &Path, status: u16) -> Reply {
    let mut bytes = Vec::new();
    match fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)) {
        Ok(_) => {}
        Err(e) => {
            return reply(
                500,
                "text/plain; charset=utf-8",
                format!("cannot read the file: {e}\n").into_bytes(),
            )
        }
    }
    let ctype = content_type(path);
    if ctype.starts_with("text/html") {
        bytes = inject(&bytes);
    }
    reply(status, ctype, bytes)
}

fn not_found(root: &Path) -> Reply {
    let custom = root.join("404.html");
    if custom.is_file() {
        return file(&custom, 404);
    }
    page(
        404,
        "Not found",
        "<p>There is no such page in this build. <a href=\"/\">Back to the start</a>.</p>",
    )
}

/// A plain listing of a folder without `index.html` (hidden files left out).
fn listing(dir: &Path, segs: &[String]) -> Reply {
    let mut entries: Vec<(String, bool)> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.path().is_dir();
                    (name, is_dir)
                })
                .filter(|(n, _)| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    entries.sort_by(|a, b| (!a.1, &a.0).cmp(&(!b.1, &b.0)));
    let title = format!(
        "/{}",
        segs.iter().map(|s| format!("{s}/")).collect::<String>()
    );
    let mut body = String::new();
    if !segs.is_empty() {
        body.push_str("<p><a href=\"../\">../</a></p>\n");
    }
    if segs.is_empty() && !dir.ends_with("site") {
        body.push_str("<p>There is no site in this build yet; these are the files it has.</p>\n");
    }
    body.push_str("<ul>\n");
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        body.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            percent_encode(&name),
            escape_html(&name)
        ));
    }
    body.push_str("</ul>");
    page(200, &format!("Index of {title}"), &body)
}

/// How often a live-reload socket is pinged when there is nothing to say. The server only learns that a page went
/// away when a write to it fails (the second after the page closed), so this bounds how long a closed page keeps its
/// thread and socket.
const LIVE_PING: Duration = Duration::from_secs(1);

/// Upgrades a request to the live-reload websocket, on its own thread.
fn upgrade(req: Request, hub: &Hub) {
    let key = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Sec-WebSocket-Key"))
        .map(|h| h.value.as_str().to_string());
    let is_ws = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Upgrade") && h.value.as_str().eq_ignore_ascii_case("websocket"));
    let (Some(key), true) = (key, is_ws) else {
        let _ = req.respond(reply(
            400,
            "text/plain; charset=utf-8",
            b"this is the live-reload websocket\n".to_vec(),
        ));
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response =
        Response::empty(StatusCode(101)).with_header(header("Sec-WebSocket-Accept", &accept));
    let rx = hub.subscribe();
    let stream = req.upgrade("websocket", response);
    let _ = std::thread::Builder::new()
        .name("skillbook-live".into())
        .spawn(move || {
            let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
            loop {
                match rx.recv_timeout(LIVE_PING) {
                    Ok(msg) => {
                        if ws.send(Message::text(msg)).is_err() {
                            break;
                        }
                    }
                    // A ping now and then finds pages that went away without closing.
                    Err(RecvTimeoutError::Timeout) => {
                        if ws.send(Message::Ping(tungstenite::Bytes::new())).is_err() {
                            break;
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = ws.close(None);
                        let _ = ws.flush();
                        break;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    #[test]
    fn segments_table() {
        let f = Err(Refused::Forbidden);
        for (target, expect) in [
            ("/", Ok(vec![])),
            ("/agents/a.html", Ok(vec!["agents", "a.html"])),
            ("/a//b/?q=1#x", Ok(vec!["a", "b"])),
            ("/with%20space.html", Ok(vec!["with space.html"])),
            ("http://127.0.0.1:3000/x.html", Ok(vec!["x.html"])),
            ("/../etc/passwd", f.clone()),
            ("/a/../../etc/passwd", f.clone()),
            ("/%2e%2e/%2e%2e/etc/passwd", f.clone()),
            ("/..%2f..%2fetc%2fpasswd", f.clone()),
            ("/a/%2E%2E/b", f.clone()),
            ("/./a", f.clone()),
            ("/..\\..\\windows", f.clone()),
            ("/a%5c..%5cb", f.clone()),
            ("/a%00.html", f.clone()),
            ("/C:/windows", f.clone()),
            ("/%zz", Err(Refused::BadRequest)),
            ("/%ff%fe", Err(Refused::BadRequest)),
        ] {
            let expect: Result<Vec<String>, Refused> =
                expect.map(|v: Vec<&str>| v.into_iter().map(String::from).collect());
            assert_eq!(segments(target), expect, "{target}");
        }
    }

    #[test]
    fn inject_table() {
        for (html, expect) in [
            (
                "<html><body>x</body></html>",
                format!("<html><body>x{LIVE_SCRIPT}</body></html>"),
            ),
            ("<BODY>x</BODY>", format!("<BODY>x{LIVE_SCRIPT}</BODY>")),
            ("no body", format!("no body{LIVE_SCRIPT}")),
            (
                "<body><pre></body></pre></body>",
                format!("<body><pre></body></pre>{LIVE_SCRIPT}</body>"),
            ),
        ] {
            assert_eq!(String::from_utf8(inject(html.as_bytes())).unwrap(), expect);
        }
    }

    #[test]
    fn content_types() {
        for (p, t) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.CSS", "text/css; charset=utf-8"),
            ("searchindex.js", "text/javascript; charset=utf-8"),
            ("a.md", "text/plain; charset=utf-8"),
            ("llms.txt", "text/plain; charset=utf-8"),
            ("f.woff2", "font/woff2"),
            ("x", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(p)), t, "{p}");
        }
    }

    fn get(addr: SocketAddr, target: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let status = buf[9..12].parse().unwrap();
        let body = buf
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        (status, body)
    }

    #[test]
    fn serves_site_refuses_traversal_and_pushes_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        fs::create_dir_all(out.join("site/agents")).unwrap();
        fs::write(
            out.join("site/index.html"),
            "<html><body>home</body></html>",
        )
        .unwrap();
        fs::write(out.join("site/agents/a.md"), "# A").unwrap();
        fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), out.join("site/link.txt"))
            .unwrap();
        let server = Server::start("127.0.0.1".parse().unwrap(), 0, &out).unwrap();
        let addr = server.addr();
        assert!(addr.ip().is_loopback());

        let (status, body) = get(addr, "/");
        assert_eq!(status, 200);
        assert!(
            body.contains("home") && body.contains("data-skillbook-live"),
            "{body}"
        );
        assert_eq!(get(addr, "/agents/a.md"), (200, "# A".to_string()));
        assert_eq!(get(addr, "/agents").0, 301);
        let (status, body) = get(addr, "/agents/");
        assert_eq!(status, 200);
        assert!(body.contains("a.md"), "{body}");
        assert_eq!(get(addr, "/nope.html").0, 404);
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/agents/..%2f..%2fsecret.txt",
            "/link.txt",
        ] {
            let (status, body) = get(addr, bad);
            assert_eq!(status, 403, "{bad}: {body}");
            assert!(!body.contains("secret\n") && body != "secret", "{bad}");
        }

        let (mut ws, _) = tungstenite::connect(format!("ws://{addr}{LIVE_PATH}")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.hub().clients() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "client never registered"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let failed = Outcome::Failed(watch::Failed {
            diagnostics: Vec::new(),
            message: None,
            text: "agents/a.md:1:1: error[x]: broken\n".into(),
            io: false,
            elapsed: Duration::ZERO,
        });
        server.hub().publish(&failed);
        let msg = ws.read().unwrap();
        let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "errors");
        assert!(v["text"].as_str().unwrap().contains("broken"));
        // A page that connects while the build is broken gets the errors at once.
        let (mut late, _) = tungstenite::connect(format!("ws://{addr}{LIVE_PATH}")).unwrap();
        let msg = late.read().unwrap();
        assert!(msg.to_text().unwrap().contains("\"errors\""));
        server.hub().publish(&Outcome::Unchanged(Duration::ZERO));
        let built = Outcome::Built(Box::new(watch::Built {
            files: 1,
            ..Default::default()
        }));
        // Unchanged output, but errors were showing: reload to clear them.
        server.hub().publish(&built);
        assert_eq!(ws.read().unwrap().to_text().unwrap(), reload_message());
        assert_eq!(late.read().unwrap().to_text().unwrap(), reload_message());
        // A rebuild in two parts: the pages whose HTML was written, then the rest.
        let mut stats = watch::Stats {
            written: vec![
                "bundles/a/2000.md".into(),
                "site/agents/a.html".into(),
                "site/agents/a.md".into(),
                "site/index.html".into(),
            ],
            ..Default::default()
        };
        let first = Outcome::Built(Box::new(watch::Built {
            changed: true,
            partial: true,
            stats: stats.clone(),
            ..Default::default()
        }));
        server.hub().publish(&first);
        let v: serde_json::Value =
            serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "reload", "pages": ["agents/a.html", "index.html"], "complete": false})
        );
        stats.written = vec!["site/print.html".into()];
        let rest = Outcome::Built(Box::new(watch::Built {
            changed: true,
            stats,
            ..Default::default()
        }));
        server.hub().publish(&rest);
        assert_eq!(
            ws.read().unwrap().to_text().unwrap(),
            pages_message(&["print.html"], true)
        );
        server.stop();
    }

    #[test]
    fn without_a_site_the_output_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        fs::create_dir_all(out.join("plugin")).unwrap();
        fs::write(out.join("report.json"), "{}").unwrap();
        fs::write(out.join(".skillbook-output"), "").unwrap();
        let r = respond_to("/", &out);
        assert_eq!(r.status_code(), StatusCode(200));
        let mut body = String::new();
        r.into_reader().read_to_string(&mut body).unwrap();
        assert!(
            body.contains("plugin/") && body.contains("report.json"),
            "{body}"
        );
        assert!(!body.contains(".skillbook-output"));
        let missing = dir.path().join("none");
        assert_eq!(respond_to("/", &missing).status_code(), StatusCode(503));
    }

    #[test]
    fn a_folder_redirects_to_this_server_only() {
        // `//agents` and `http://elsewhere//agents` name the folder `agents/`; the redirect to its `/` must not name
        // another host (a browser reads `//agents/` as the host `agents`).
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        fs::create_dir_all(out.join("site/agents")).unwrap();
        fs::create_dir_all(out.join("site/dé jà")).unwrap();
        fs::write(out.join("site/index.html"), "<p>start</p>").unwrap();
        for (target, location) in [
            ("/agents", "/agents/"),
            ("//agents", "/agents/"),
            ("///agents?x=1", "/agents/?x=1"),
            ("http://elsewhere.example//agents", "/agents/"),
            ("https://elsewhere.example/agents?q=1#top", "/agents/?q=1"),
            ("/agents?q=a b", "/agents/?q=a%20b"),
            ("/agents?q=déjà\r\n", "/agents/?q=d%C3%A9j%C3%A0%0D%0A"),
            ("/d%C3%A9%20j%C3%A0", "/d%C3%A9%20j%C3%A0/"),
        ] {
            let r = respond_to(target, &out);
            assert_eq!(r.status_code(), StatusCode(301), "{target}");
            let got: Vec<String> = r
                .headers()
                .iter()
                .filter(|h| h.field.equiv("Location"))
                .map(|h| h.value.as_str().to_string())
                .collect();
            assert_eq!(got, vec![location.to_string()], "{target}");
        }
    }
}
