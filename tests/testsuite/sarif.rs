//! `check --format sarif`: a SARIF 2.1.0 log that the official schema accepts, with every diagnostic at its place.

use crate::common::{assert_golden, fixture, run, tests_dir};
use std::fs;

fn validator() -> jsonschema::Validator {
    let mut schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(tests_dir().join("schemas/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The published schema's `language` patterns (of `run` and `toolComponent`) have a stray `]` and are not valid ECMA regexes, which the
    // validator refuses when it checks the schema itself. skillbook never writes `language`; the patterns are
    // replaced in memory by the one it means (a two-letter language with an optional region), the file stays as
    // published.
    for def in ["run", "toolComponent"] {
        let language = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        assert_eq!(
            language, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$",
            "{def}"
        );
        *language = serde_json::json!("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
    }
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, log: &serde_json::Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn sarif_output_validates_against_the_schema_and_matches_the_report() {
    let v = validator();
    // The schema is not a rubber stamp: a log without `version` is refused.
    assert!(!v.is_valid(&serde_json::json!({ "runs": [] })));
    for name in [
        "gaps",
        "torture",
        "broken/pattern-yaml-colon",
        "broken/marketplace-shape",
        "clean-plugin",
    ] {
        let dir = fixture(name);
        let r = run(dir.path(), &["check", ".", "--format", "sarif"]);
        let human = run(dir.path(), &["check", "."]);
        assert_eq!(
            r.code, human.code,
            "{name}: same exit code as the human report"
        );
        let log: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_valid(&v, &log, name);
        let json = run(dir.path(), &["check", ".", "--format", "json"]);
        let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let results = log["runs"][0]["results"].as_array().unwrap();
        let diags = report["diagnostics"].as_array().unwrap();
        assert_eq!(results.len(), diags.len(), "{name}");
        for (r, d) in results.iter().zip(diags) {
            assert_eq!(r["ruleId"], d["code"], "{name}");
            assert_eq!(r["level"], d["severity"], "{name}");
            let loc = &r["locations"][0]["physicalLocation"];
            assert_eq!(loc["region"]["startLine"], d["line"], "{name}");
            assert_eq!(loc["region"]["startColumn"], d["column"], "{name}");
            let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
            assert!(
                uri.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
                "{name}: {uri} is not a plain relative URI reference"
            );
            assert!(
                uri.ends_with(&d["path"].as_str().unwrap().replace(' ', "%20")),
                "{name}: {uri}"
            );
            let rule = &log["runs"][0]["tool"]["driver"]["rules"]
                [r["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(rule["id"], r["ruleId"], "{name}");
        }
    }
    let dir = fixture("gaps");
    let r = run(dir.path(), &["check", ".", "--format", "sarif"]);
    assert_golden("sarif/gaps.sarif", &r.stdout);
}
