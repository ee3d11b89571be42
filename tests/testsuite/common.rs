//! The test harness: fixtures copied to temp dirs, the binary run in them, golden files compared.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of a fixture in a temporary directory, deleted on drop.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    /// A fixture already copied to `path` inside `tmp`.
    pub fn new(tmp: tempfile::TempDir, path: PathBuf) -> Self {
        Fixture { _tmp: tmp, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Copies `tests/fixtures/<name>` to `<tmp>/<last part of name>` (so a plugin named after its folder keeps its
/// name) and returns it.
pub fn fixture(name: &str) -> Fixture {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join(name.rsplit('/').next().expect("name"));
    copy_dir(&tests_dir().join("fixtures").join(name), &path);
    Fixture { _tmp: tmp, path }
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    let mut entries: Vec<_> = fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let dest = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code and stdout, as the golden files record them.
    pub fn transcript(&self) -> String {
        format!("exit: {}\n{}", self.code, self.stdout)
    }
}

/// Runs `skillbook ARGS` in `dir`, without colour.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_skillbook"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run skillbook");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "skillbook panicked:\n{stderr}"
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

fn overwrite() -> bool {
    std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite")
}

/// Compares `actual` with `tests/expected/<rel>`; with `SNAPSHOTS=overwrite`, writes it instead.
pub fn assert_golden(rel: &str, actual: &str) {
    let path = tests_dir().join("expected").join(rel);
    if overwrite() {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with SNAPSHOTS=overwrite to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output.\n--- expected\n{expected}\n--- actual\n{actual}\n(run with SNAPSHOTS=overwrite to accept)",
            path.display()
        );
    }
}

/// Every file under `dir`, relative and `/`-separated, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("prefix");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Compares a whole output directory with `tests/expected/<rel>/`, file by file, both ways.
pub fn assert_tree_golden(rel: &str, actual: &Path) {
    let expected = tests_dir().join("expected").join(rel);
    if overwrite() {
        let _ = fs::remove_dir_all(&expected);
        copy_dir(actual, &expected);
        return;
    }
    assert_eq!(
        files(&expected),
        files(actual),
        "file lists differ for {rel}"
    );
    for f in files(actual) {
        let a = fs::read(actual.join(&f)).expect("read actual");
        let e = fs::read(expected.join(&f)).expect("read expected");
        // Text compared as text (a readable difference), other files (a plugin's images) byte for byte.
        match (String::from_utf8(e), String::from_utf8(a)) {
            (Ok(e), Ok(a)) => assert_eq!(
                e, a,
                "{rel}/{f} differs (run with SNAPSHOTS=overwrite to accept)"
            ),
            (e, a) => assert!(
                e.map_or_else(|e| e.into_bytes(), String::into_bytes)
                    == a.map_or_else(|a| a.into_bytes(), String::into_bytes),
                "{rel}/{f} differs (run with SNAPSHOTS=overwrite to accept)"
            ),
        }
    }
}
