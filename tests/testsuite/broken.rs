//! Every broken input: no panic, exit 1 or 2, located diagnostics, and the exact report recorded as golden.
//!
//! Each folder under `tests/fixtures/broken/` is one plugin with one thing wrong; its expected report is
//! `tests/expected/broken/<name>.txt`.

use crate::common::{assert_golden, fixture, run, tests_dir};
use std::fs;

#[test]
fn broken_fixtures_report_exact_diagnostics() {
    let mut names: Vec<String> = fs::read_dir(tests_dir().join("fixtures/broken"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(
        names.len() >= 15,
        "expected at least 15 broken fixtures, found {}",
        names.len()
    );
    let located =
        regex::Regex::new(r"(?m)^[^\s:][^:]*:\d+:\d+: (error|warning)\[[a-z0-9-]+\]: ").unwrap();
    for name in &names {
        let dir = fixture(&format!("broken/{name}"));
        let r = run(dir.path(), &["check", "."]);
        assert!(
            r.code == 1 || r.code == 2,
            "{name}: exit {}\n{}",
            r.code,
            r.stdout
        );
        assert!(
            located.is_match(&r.stdout),
            "{name}: no located diagnostic:\n{}",
            r.stdout
        );
        assert_golden(&format!("broken/{name}.txt"), &r.transcript());
        // The JSON report says the same.
        let j = run(dir.path(), &["check", ".", "--format", "json"]);
        assert_eq!(j.code, r.code, "{name}");
        let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
        assert!(v["summary"]["errors"].as_u64().unwrap() >= 1, "{name}");
    }
}

/// Plugins Claude Code loads, with warnings at most (`tests/fixtures/accepted/`, see `claude.rs`): exit 0, every
/// diagnostic a located warning, the exact report recorded as golden in `tests/expected/accepted/<name>.txt`.
#[test]
fn accepted_fixtures_report_exact_warnings() {
    let mut names: Vec<String> = fs::read_dir(tests_dir().join("fixtures/accepted"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let located = regex::Regex::new(r"^[^\s:][^:]*:\d+:\d+: warning\[[a-z0-9-]+\]: ").unwrap();
    for name in &names {
        let dir = fixture(&format!("accepted/{name}"));
        let r = run(dir.path(), &["check", "."]);
        assert_eq!(r.code, 0, "{name}:\n{}", r.stdout);
        for line in r.stdout.lines().filter(|l| l.contains("]: ")) {
            assert!(located.is_match(line), "{name}: {line}");
        }
        assert_golden(&format!("accepted/{name}.txt"), &r.transcript());
    }
}

/// A folder outside any fixture, holding `secret.md`: an agent whose name must never show.
#[cfg(unix)]
fn outside_with_a_secret() -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join("secret.md"),
        "---\nname: secret\ndescription: x\n---\n",
    )
    .unwrap();
    outside
}

#[cfg(unix)]
#[test]
fn symlink_leaving_the_root_is_refused() {
    let outside = outside_with_a_secret();
    let dir = fixture("clean-plugin");
    std::os::unix::fs::symlink(
        outside.path().join("secret.md"),
        dir.path().join("agents/secret.md"),
    )
    .unwrap();
    let r = run(dir.path(), &["check", "."]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let first = r.stdout.lines().next().unwrap();
    assert!(first.starts_with("agents/secret.md:1:1: error[symlink-escape]: this symlink leads outside the content root"), "{first}");
    assert!(!r.stdout.contains("secret`"), "{}", r.stdout);
}

/// The loader lists a folder without resolving each file's path again: what is not a symlink in a folder inside the
/// root is inside it. A folder that is itself a link leading out is no such folder: each of its files is refused.
#[cfg(unix)]
#[test]
fn a_linked_folder_leading_outside_the_root_is_refused_file_by_file() {
    let outside = outside_with_a_secret();
    let dir = fixture("clean-plugin");
    let commands = dir.path().join("commands");
    if commands.exists() {
        fs::remove_dir_all(&commands).unwrap();
    }
    std::os::unix::fs::symlink(outside.path(), &commands).unwrap();
    let r = run(dir.path(), &["check", "."]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("commands/secret.md:1:1: error[symlink-escape]: this path leads outside the content root")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("secret`"), "{}", r.stdout);
}
