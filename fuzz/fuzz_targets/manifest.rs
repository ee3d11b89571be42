//! Plugin and marketplace manifests: the input is `.claude-plugin/plugin.json` of a small plugin (first byte even)
//! or `.claude-plugin/marketplace.json` of a small marketplace (odd); the tree is loaded from a RAM disk and run
//! through the pipeline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillbook_fuzz::{materialize, pipeline, scratch, Tree};

const AGENT: &str = "---\nname: a\ndescription: An agent. Use it when fuzzing.\nskills: [s]\n---\n\n## Your Expertise\n\n- **Things**: Raft, Paxos\n";
const SKILL_MD: &str = "---\nname: s\ndescription: A skill. Use it when fuzzing.\n---\n\n# S\n";
const PATTERN: &str =
    "---\ntitle: Raft\ncovers: [Raft, Paxos]\npriority: 60\nsummary: Consensus.\n---\n\nText.\n";

fn plugin(tree: &mut Tree, base: &str) {
    tree.insert(format!("{base}agents/a.md"), AGENT.into());
    tree.insert(
        format!("{base}extra/b.md"),
        AGENT.replace("name: a", "name: b").into(),
    );
    tree.insert(format!("{base}skills/s/SKILL.md"), SKILL_MD.into());
    tree.insert(format!("{base}skills/s/patterns/raft.md"), PATTERN.into());
    tree.insert(
        format!("{base}more/t/SKILL.md"),
        SKILL_MD.replace("name: s", "name: t").into(),
    );
    tree.insert(format!("{base}commands/go.md"), "Run it.\n".into());
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let mut tree = Tree::new();
    if selector % 2 == 0 {
        plugin(&mut tree, "");
        tree.insert(".claude-plugin/plugin.json".into(), json.to_vec());
    } else {
        plugin(&mut tree, "plugins/one/");
        plugin(&mut tree, "plugins/two/");
        tree.insert(
            "plugins/two/.claude-plugin/plugin.json".into(),
            br#"{"name": "two", "agents": "./extra/b.md"}"#.to_vec(),
        );
        tree.insert(".claude-plugin/marketplace.json".into(), json.to_vec());
    }
    let root = scratch("manifest").join("plugin");
    materialize(&tree, &root);
    pipeline(&root);
});
