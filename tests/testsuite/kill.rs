//! Kills at any moment: `build` and `watch` are SIGKILLed at many points of writing a large output, and each time
//! the output directory must be the previous build or the new one, whole (every file, byte for byte), and the next
//! build must succeed. Under `watch` a rebuild commits twice (the site's pages first, then the rest), so the first
//! commit is a third whole state: the new pages with every other file of the previous build. No assertion is about time: the delays only spread the kill points over the write.

use crate::common::{copy_dir, tests_dir};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// Command files added to the fixture, each one output file of the compiled plugin: enough that writing the output
/// takes a while even on a fast disk.
const COMMANDS: usize = 400;

/// An output directory's files and their bytes.
type Snapshot = BTreeMap<String, Vec<u8>>;

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, out: &mut Snapshot) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(bytes) = fs::read(&p) {
                let rel = p.strip_prefix(base).expect("prefix");
                out.insert(rel.to_string_lossy().replace('\\', "/"), bytes);
            }
        }
    }
    let mut out = Snapshot::new();
    walk(dir, dir, &mut out);
    out
}

/// The clean-plugin fixture with many commands, in one of two versions (`a` or `b`) that differ in a pattern (so in
/// the compiled agent, its bundles, the skill's reference and the site) and in every other command.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("plugin");
        copy_dir(&tests_dir().join("fixtures/clean-plugin"), &root);
        let out = tmp.path().join("out");
        // One bundle budget: the test is about the write, not the packing.
        fs::write(
            root.join("book.toml"),
            "[preprocessor.skillbook]\ncontent = \".\"\nbudgets = [1000]\n",
        )
        .expect("write book.toml");
        let t = Tree {
            _tmp: tmp,
            root,
            out,
        };
        t.set_version('a');
        t
    }

    /// Sets every other command and the pattern to version `v`.
    fn set_version(&self, v: char) {
        let dir = self.root.join("commands/many");
        fs::create_dir_all(&dir).expect("mkdir");
        for i in 0..COMMANDS {
            let which = if i % 2 == 0 { v } else { 'a' };
            let text = format!(
                "---\ndescription: Command {i}, version {which}.\n---\n\nRun step {i} ({which}).\n"
            );
            write_if_changed(&dir.join(format!("c{i:04}.md")), &text);
        }
        self.set_pattern(v);
    }

    /// Sets the pattern alone to version `v`: one save, as an editor makes it (a new file renamed over the old).
    fn set_pattern(&self, v: char) {
        let pattern = self
            .root
            .join("skills/code-review/patterns/genserver-state.md");
        let text = fs::read_to_string(&pattern).expect("read pattern");
        let text = text
            .replace("\nVersion a.\n", "\n")
            .replace("\nVersion b.\n", "\n");
        let tmp = pattern.with_extension("md.new");
        fs::write(&tmp, format!("{}\nVersion {v}.\n", text.trim_end())).expect("write pattern");
        fs::rename(&tmp, &pattern).expect("rename pattern");
    }

    fn build(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_skillbook"))
            .args(["build", "-q", "."])
            .arg("--out")
            .arg(&self.out)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start skillbook")
    }

    /// A build run to the end: it must succeed.
    fn build_whole(&self) -> Snapshot {
        let out = self.build().wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "build failed:\n{stderr}");
        snapshot(&self.out)
    }

    /// Entries next to the output directory other than it: the temporary and old directories of a write.
    fn siblings(&self) -> Vec<String> {
        let name = self
            .out
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut v: Vec<String> = fs::read_dir(self.out.parent().expect("parent"))
            .expect("list parent")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "plugin" && *n != name)
            .collect();
        v.sort();
        v
    }
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).expect("write");
    }
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a write has begun (a new sibling of the output directory appeared); then waits `delay` more and
/// kills the child. Returns whether the kill came before the child finished on its own.
fn kill_during_write(tree: &Tree, child: &mut Child, delay: Duration, before: &[String]) -> bool {
    let start = Instant::now();
    loop {
        if tree.siblings().iter().any(|s| !before.contains(s)) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("skillbook exited ({status}) before it began to write");
        }
        assert!(start.elapsed() < PATIENCE, "the write never began");
        std::thread::yield_now();
    }
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    // SIGKILL: nothing of skillbook's runs after it.
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// The output is one of the two whole builds.
fn assert_whole(out: &Path, before: &Snapshot, after: &Snapshot, when: &str) -> &'static str {
    let now = snapshot(out);
    if &now == before {
        "previous"
    } else if &now == after {
        "new"
    } else {
        let diff: Vec<&String> = now
            .keys()
            .chain(before.keys())
            .chain(after.keys())
            .filter(|k| now.get(*k) != before.get(*k) && now.get(*k) != after.get(*k))
            .take(10)
            .collect();
        panic!(
            "{when}: the output is neither the previous build nor the new one ({} files; differing: {diff:?})",
            now.len()
        )
    }
}

/// The output is one of the two whole builds, or, under `watch`, the first part of the rebuild: the new build's site
/// pages with every other file the previous build's (`Engine::defer`: the reload does not wait for the bundles,
/// report.json, `print.html`, the search index and `llms-full.txt`).
fn assert_whole_or_pages_first(
    out: &Path,
    before: &Snapshot,
    after: &Snapshot,
    when: &str,
) -> &'static str {
    let now = snapshot(out);
    if &now == before {
        return "previous";
    }
    if &now == after {
        return "new";
    }
    let page = |k: &str| {
        k.strip_prefix("site/")
            .is_some_and(|p| !skillbook::emit::site::holds_every_page(p))
    };
    let diff: Vec<&String> = now
        .keys()
        .chain(before.keys())
        .chain(after.keys())
        .filter(|k| {
            let (n, b) = (now.get(*k), before.get(*k));
            if page(k) {
                n != b && n != after.get(*k)
            } else {
                n != b
            }
        })
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "{when}: the output is neither the previous build, nor the new one, nor the new one's pages with the rest \
         of the previous ({} files; differing: {diff:?})",
        now.len()
    );
    "pages first"
}

/// The delays after the write began: from at once to past its end, growing.
fn delays(write: Duration, n: u32) -> Vec<Duration> {
    (0..n)
        .map(|i| write.mul_f64(1.2 * f64::from(i * i) / f64::from((n - 1) * (n - 1))))
        .collect()
}

/// How long a whole build's write takes, from the first sibling to the exit.
fn measure_write(tree: &Tree) -> Duration {
    let mut child = tree.build();
    let start = Instant::now();
    let mut began = None;
    let before = tree.siblings();
    loop {
        if began.is_none() && tree.siblings() != before {
            began = Some(Instant::now());
        }
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "build failed");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "build did not finish");
        std::thread::yield_now();
    }
    began
        .map(|b| b.elapsed())
        .unwrap_or(Duration::from_millis(50))
}

#[test]
fn build_killed_at_any_point_of_the_write_leaves_a_whole_output() {
    let tree = Tree::new();
    let a = tree.build_whole();
    assert!(a.len() > COMMANDS, "only {} output files", a.len());
    tree.set_version('b');
    let b = tree.build_whole();
    assert_ne!(a, b);
    let write = measure_write(&tree);
    let mut seen = BTreeMap::new();
    let (mut current, mut current_snap) = ('b', b.clone());
    for (i, delay) in delays(write, 8).into_iter().enumerate() {
        let (next, next_snap) = if current == 'a' { ('b', &b) } else { ('a', &a) };
        tree.set_version(next);
        let before = tree.siblings();
        let mut child = tree.build();
        kill_during_write(&tree, &mut child, delay, &before);
        let state = assert_whole(
            &tree.out,
            &current_snap,
            next_snap,
            &format!("kill {i} ({delay:?} into the write)"),
        );
        *seen.entry(state).or_insert(0) += 1;
        // The next build succeeds and writes the new version whole, whatever the kill left.
        let again = tree.build_whole();
        assert_eq!(
            &again, next_snap,
            "the build after kill {i} wrote something else"
        );
        current = next;
        current_snap = again;
    }
    // What the kills left next to the output is cleaned up by the builds after them.
    assert_eq!(
        tree.siblings(),
        Vec::<String>::new(),
        "left next to the output"
    );
    eprintln!("build kills: {seen:?} (write ~{write:?})");
}

#[cfg(unix)]
fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).map(|m| m.ino()).unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn watch_killed_during_a_rebuild_leaves_a_whole_output() {
    let tree = Tree::new();
    let a = tree.build_whole();
    tree.set_pattern('b');
    let b = tree.build_whole();
    assert_ne!(a, b);
    let write = measure_write(&tree);
    let mut seen = BTreeMap::new();
    let (mut current, mut current_snap) = ('b', b.clone());
    for (i, delay) in delays(write, 4).into_iter().enumerate() {
        let first = inode(&tree.out);
        let mut child = Command::new(env!("CARGO_BIN_EXE_skillbook"))
            .args(["watch", "-q", "."])
            .arg("--out")
            .arg(&tree.out)
            .current_dir(&tree.root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start skillbook watch");
        // Its first build swaps in a new directory with the current version; wait until that is done.
        wait("watch's first build", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("watch exited: {status}");
            }
            inode(&tree.out) != first && tree.siblings().is_empty()
        });
        assert_eq!(snapshot(&tree.out), current_snap, "watch's first build");
        let (next, next_snap) = if current == 'a' { ('b', &b) } else { ('a', &a) };
        let before = tree.siblings();
        tree.set_pattern(next);
        kill_during_write(&tree, &mut child, delay, &before);
        let state = assert_whole_or_pages_first(
            &tree.out,
            &current_snap,
            next_snap,
            &format!("watch kill {i} ({delay:?} into the rebuild's write)"),
        );
        *seen.entry(state).or_insert(0) += 1;
        let again = tree.build_whole();
        assert_eq!(
            &again, next_snap,
            "the build after watch kill {i} wrote something else"
        );
        current = next;
        current_snap = again;
    }
    assert_eq!(
        tree.siblings(),
        Vec::<String>::new(),
        "left next to the output"
    );
    eprintln!("watch kills: {seen:?} (write ~{write:?})");
}
