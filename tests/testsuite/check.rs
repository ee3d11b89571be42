//! `skillbook check` on the good fixtures: exact human and JSON reports.

use crate::common::{assert_golden, fixture, run};

const GOOD: &[&str] = &["clean-plugin", "seed", "plugin-repo", "marketplace"];

#[test]
fn human_reports_match_golden() {
    for name in GOOD {
        let dir = fixture(name);
        let r = run(dir.path(), &["check", "."]);
        assert_eq!(r.code, 0, "{name}: {}", r.stdout);
        assert_golden(&format!("check/{name}.txt"), &r.transcript());
    }
}

#[test]
fn json_reports_match_golden() {
    for name in GOOD {
        let dir = fixture(name);
        let r = run(dir.path(), &["check", ".", "--format", "json"]);
        assert_eq!(r.code, 0, "{name}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
        assert_eq!(v["schema_version"], 1);
        assert_golden(&format!("check/{name}.json"), &r.stdout);
    }
}

#[test]
fn marketplace_names_are_namespaced_and_may_repeat_across_plugins() {
    let dir = fixture("marketplace");
    let r = run(dir.path(), &["check", ".", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let agents: Vec<&str> = v["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, vec!["alpha:helper", "beta:helper"]);
    assert_eq!(v["coverage"][1]["skills"][0], "alpha:shared");
}

#[test]
fn root_path_prefixes_diagnostics() {
    let dir = fixture("seed");
    let r = run(
        dir.path().parent().unwrap(),
        &["check", dir.path().file_name().unwrap().to_str().unwrap()],
    );
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "{}/agents/distributed-systems-expert.md:3:159: warning[yaml-fallback]",
            dir.path().file_name().unwrap().to_str().unwrap()
        )),
        "{first}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no content root"), "{}", r.stderr);
    let r = run(dir.path(), &["check", "does-not-exist"]);
    assert_eq!(r.code, 2);
    let r = run(dir.path(), &["check", "--format", "yaml", "."]);
    assert_eq!(r.code, 2);
}

#[test]
fn broken_pipe_is_success() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = fixture("seed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skillbook"))
        .args(["check", ".", "--format", "json"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}
