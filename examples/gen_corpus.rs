//! Synthetic corpus generator: writes a large Claude Code plugin for benchmarking `skillbook`.
//!
//! ```text
//! cargo run --release --example gen_corpus -- OUT_DIR [--agents 1000] [--skills 100] [--patterns 5000] [--plugins N] [--seed N] [--force]
//! ```
//!
//! With `--plugins N` (N at least 1) the corpus is a marketplace instead of one plugin, shaped like the public ones:
//! `.claude-plugin/marketplace.json` lists `plugins/plugin-NN/`, each with its `.claude-plugin/plugin.json`,
//! `agents/` and `skills/`. Skill `s` belongs to plugin `s % N`, and an agent to the plugin of its first skill; an
//! agent's other skills are drawn from its own plugin. Without `--plugins` the corpus is the same as before it existed.
//!
//! Layout written under OUT_DIR:
//!
//! - `agents/agent-NNNN.md`: frontmatter (name, description with an `<example>` block, model, color,
//!   `skills: [...]`), `## Your Expertise` bullets, `## Responsibilities`, prose, an elixir block and the stub line.
//! - `skills/skill-NNN/SKILL.md`: frontmatter (name, description) and the skill stub line.
//! - `skills/skill-NNN/patterns/pattern-NNNN.md`: frontmatter (title, covers, priority, summary) and a
//!   300-600 word markdown body with headings, lists, a code block and links to sibling patterns.
//!
//! The corpus checks clean: every expertise item of an agent is covered by a pattern of one of its skills, and
//! every `covers:` entry is an expertise item of some agent using that skill. Agent descriptions come in three
//! forms: a plain scalar with `\n` escapes and `Context: ...` lines (not valid YAML, so skillbook's lenient
//! fallback reads it and warns `yaml-fallback`), a double-quoted scalar, and a `|` block scalar.
//!
//! Output is deterministic: the same arguments give byte-identical files (a splitmix64 PRNG, no hashing order,
//! no clock). Std only, but for skillbook's fixed-seed `HashSet` (membership tests).

use skillbook::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// ---------------------------------------------------------------------------------------------------------------
// PRNG

/// splitmix64: tiny, fast, good enough for synthetic text, and stable across platforms.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_C0DE_1234_5678)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// An index drawn with the given weights.
    fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary

const TOPICS: &[&str] = &[
    "Consensus Algorithms",
    "Clustering",
    "Supervision Trees",
    "GenServer Design",
    "Ecto Queries",
    "Phoenix LiveView",
    "Telemetry",
    "Release Engineering",
    "Hot Code Upgrades",
    "ETS Caching",
    "Mnesia",
    "Distributed Registries",
    "Message Queues",
    "Backpressure",
    "Rate Limiting",
    "Circuit Breakers",
    "Event Sourcing",
    "CQRS",
    "CRDTs",
    "Property Testing",
    "Load Testing",
    "Observability",
    "Tracing",
    "Memory Profiling",
    "Scheduler Tuning",
    "NIF Safety",
    "Ports and Sockets",
    "TLS Configuration",
    "Authentication",
    "Authorization",
    "Multi-Tenancy",
    "Database Migrations",
    "Connection Pooling",
    "Job Processing",
    "Broadway Pipelines",
    "GenStage Flows",
    "PubSub",
    "Presence Tracking",
    "Websocket Scaling",
    "HTTP Clients",
    "API Design",
    "GraphQL Resolvers",
    "Caching Layers",
    "Search Indexing",
    "File Storage",
    "Stream Processing",
    "Time Series",
    "Feature Flags",
    "Deployment Pipelines",
    "Incident Response",
];

const FACETS: &[&str] = &[
    "",
    "Operations",
    "Failure Modes",
    "Performance",
    "Design",
    "Testing",
    "Tooling",
    "Pitfalls",
    "Internals",
];

const ITEM_ADJ: &[&str] = &[
    "adaptive",
    "bounded",
    "lazy",
    "eager",
    "sharded",
    "partitioned",
    "idempotent",
    "durable",
    "ordered",
    "causal",
    "optimistic",
    "pessimistic",
    "hierarchical",
    "incremental",
    "streaming",
    "batched",
    "lock-free",
    "write-ahead",
    "read-through",
    "multi-region",
    "leaderless",
    "quorum",
    "supervised",
    "linked",
    "monotonic",
    "vectorised",
    "compacted",
    "tiered",
    "speculative",
    "two-phase",
    "back-pressured",
    "rate-limited",
    "hot-standby",
    "cold-start",
    "zero-copy",
    "copy-on-write",
    "append-only",
    "content-addressed",
    "event-sourced",
    "snapshot",
];

const ITEM_NOUN: &[&str] = &[
    "log",
    "queue",
    "cache",
    "registry",
    "supervisor",
    "process",
    "mailbox",
    "table",
    "index",
    "lease",
    "lock",
    "checkpoint",
    "timer",
    "socket",
    "pool",
    "channel",
    "partition",
    "replica",
    "shard",
    "cursor",
    "buffer",
    "stream",
    "pipeline",
    "token",
    "schema",
    "migration",
    "transaction",
    "session",
    "clock",
    "topic",
];

const ITEM_TAIL: &[&str] = &[
    "compaction",
    "replication",
    "recovery",
    "eviction",
    "handoff",
    "rebalancing",
    "fencing",
    "throttling",
    "batching",
    "retries",
    "timeouts",
    "tracing",
    "sampling",
    "validation",
    "serialization",
    "versioning",
    "sharding",
    "failover",
    "warmup",
    "draining",
    "coalescing",
    "deduplication",
    "reconciliation",
    "garbage collection",
    "backoff",
    "monitoring",
    "benchmarks",
    "invariants",
    "leaks",
    "contention",
];

const VERB_PHRASES: &[&str] = &[
    "interacts badly with long-running processes",
    "reduces tail latency",
    "needs explicit timeouts",
    "hides partial failures",
    "shifts load onto the supervisor",
    "makes recovery deterministic",
    "is easy to get subtly wrong",
    "trades memory for throughput",
    "keeps the hot path allocation-free",
    "turns a crash into a slow leak",
    "works until the first network partition",
    "needs a bounded mailbox",
    "doubles write amplification",
    "makes retries safe",
    "survives a rolling restart",
    "belongs behind a single owner process",
    "should be measured rather than guessed",
];

const CONDITIONS: &[&str] = &[
    "the cluster grows past a few dozen nodes",
    "messages arrive out of order",
    "a node restarts mid-operation",
    "the mailbox backs up",
    "a deploy rolls through the fleet",
    "the network partitions",
    "two writers race on the same key",
    "the database fails over",
    "traffic doubles overnight",
    "a dependency starts timing out",
    "the BEAM runs out of schedulers",
    "clocks drift apart",
];

const CONSEQUENCES: &[&str] = &[
    "callers see timeouts instead of errors",
    "the fix belongs at the boundary",
    "retries amplify the load",
    "state diverges silently",
    "the supervisor restarts the wrong child",
    "the node runs out of memory",
    "latency spikes line up with garbage collection",
    "duplicates reach the user",
    "the failure stays invisible until it is expensive",
    "the recovery path is never exercised",
];

const FAILURES: &[&str] = &[
    "an unbounded mailbox",
    "a thundering herd on reconnect",
    "a stale read after failover",
    "a leaked ETS table",
    "a lock held across a network call",
    "a supervisor restart storm",
    "a binary leak in a long-lived process",
    "an atom table that keeps growing",
    "a GenServer call cycle",
    "a retry loop without jitter",
];

const METRICS: &[&str] = &[
    "p99 latency",
    "mailbox length",
    "reductions per second",
    "memory per process",
    "replication lag",
    "GC pauses",
    "error rate",
    "queue depth",
    "scheduler utilisation",
    "connection churn",
];

const LOADS: &[&str] = &[
    "bursty traffic",
    "a rolling deploy",
    "a partition",
    "sustained write load",
    "cold caches",
    "a noisy neighbour",
    "a slow downstream service",
    "a schema migration",
];

const ACTIONS: &[&str] = &[
    "instrument every boundary with telemetry",
    "keep state in one owner process",
    "write the failure test first",
    "cap every queue",
    "add jitter to every retry",
    "load test with production-shaped data",
    "document the invariants next to the code",
    "prefer a library over a hand-rolled protocol",
];

const HEADINGS: &[&str] = &[
    "How it works",
    "The approach",
    "Design notes",
    "In practice",
    "Trade-offs",
    "When to use it",
    "Operating it",
    "Testing it",
    "Failure modes",
    "Measuring it",
];

const RESP_VERBS: &[&str] = &[
    "Analyze",
    "Evaluate",
    "Identify",
    "Recommend",
    "Review",
    "Audit",
    "Design",
    "Profile",
    "Harden",
    "Explain",
];

const MODELS: &[&str] = &["opus", "sonnet", "haiku", "inherit"];
const COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "cyan",
];

// ---------------------------------------------------------------------------------------------------------------
// Corpus model

struct SkillSpec {
    name: String,
    topic: String,
    /// Global pattern indices of this skill.
    patterns: std::ops::Range<usize>,
    /// All `covers:` entries of the skill's patterns, in pattern order.
    pool: Vec<String>,
}

struct PatternSpec {
    slug: String,
    skill: usize,
    title: String,
    covers: Vec<String>,
    priority: usize,
    summary: String,
}

struct CategorySpec {
    name: String,
    skill: usize,
    /// Slots to fill in the assignment pass.
    want: usize,
    items: Vec<String>,
}

struct AgentSpec {
    name: String,
    topic: String,
    skills: Vec<usize>,
    categories: Vec<CategorySpec>,
}

struct Args {
    out: PathBuf,
    agents: usize,
    skills: usize,
    patterns: usize,
    seed: u64,
    force: bool,
    /// 0: one plugin at OUT_DIR; N: a marketplace of N plugins.
    plugins: usize,
}

fn usage() -> String {
    "usage: gen_corpus OUT_DIR [--agents N] [--skills N] [--patterns N] [--plugins N] [--seed N] [--force]"
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut args = Args {
        out: PathBuf::new(),
        agents: 1000,
        skills: 100,
        patterns: 5000,
        seed: 1,
        force: false,
        plugins: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match a.as_str() {
            "--agents" => args.agents = num("--agents")? as usize,
            "--skills" => args.skills = num("--skills")? as usize,
            "--patterns" => args.patterns = num("--patterns")? as usize,
            "--seed" => args.seed = num("--seed")?,
            "--plugins" => args.plugins = num("--plugins")? as usize,
            "--force" => args.force = true,
            "-h" | "--help" => return Err(usage()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{}", usage())),
            s => {
                if out.replace(PathBuf::from(s)).is_some() {
                    return Err(format!("more than one OUT_DIR\n{}", usage()));
                }
            }
        }
    }
    args.out = out.ok_or_else(usage)?;
    if args.skills == 0 || args.agents == 0 {
        return Err("--agents and --skills must be at least 1".into());
    }
    if args.patterns < args.skills {
        return Err("--patterns must be at least --skills (every skill needs a pattern)".into());
    }
    if args.plugins > args.skills {
        return Err("--plugins must be at most --skills (every plugin needs a skill)".into());
    }
    Ok(args)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn roman(n: usize) -> String {
    const R: &[(usize, &str)] = &[(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")];
    let mut n = n;
    let mut s = String::new();
    for &(v, r) in R {
        while n >= v {
            s.push_str(r);
            n -= v;
        }
    }
    s
}

/// A globally unique expertise item (unique after skillbook's normalisation).
fn new_item(rng: &mut Rng, seen: &mut HashSet<String>) -> String {
    for attempt in 0.. {
        let mut item = format!(
            "{} {} {}",
            rng.pick(ITEM_ADJ),
            rng.pick(ITEM_NOUN),
            rng.pick(ITEM_TAIL)
        );
        if attempt >= 8 {
            // The vocabulary is running out (very large corpora): number the item.
            write!(item, " {}", seen.len()).unwrap();
        }
        if seen.insert(normalize(&item)) {
            return capitalize(&item);
        }
    }
    unreachable!()
}

fn build_model(args: &Args, rng: &mut Rng) -> (Vec<SkillSpec>, Vec<PatternSpec>, Vec<AgentSpec>) {
    let mut seen = HashSet::default();
    let mut skills = Vec::with_capacity(args.skills);
    let mut patterns = Vec::with_capacity(args.patterns);
    for s in 0..args.skills {
        let base = TOPICS[s % TOPICS.len()];
        let round = s / TOPICS.len();
        let topic = if round == 0 {
            base.to_string()
        } else {
            format!("{base} {}", roman(round + 1))
        };
        let range = s * args.patterns / args.skills..(s + 1) * args.patterns / args.skills;
        let mut pool = Vec::new();
        for p in range.clone() {
            let n = 1 + rng.weighted(&[20, 35, 30, 15]);
            let covers: Vec<String> = (0..n).map(|_| new_item(rng, &mut seen)).collect();
            pool.extend(covers.iter().cloned());
            let lead = covers[0].to_lowercase();
            let title = match rng.below(5) {
                0 => capitalize(&lead),
                1 => format!("{} in practice", capitalize(&lead)),
                2 => format!("Designing for {lead}"),
                3 => format!(
                    "{} and {}",
                    capitalize(&lead),
                    covers.last().unwrap().to_lowercase()
                ),
                _ => format!("Getting {lead} right"),
            };
            let summary = format!(
                "{} {} when {}; {}.",
                capitalize(&lead),
                rng.pick(VERB_PHRASES),
                rng.pick(CONDITIONS),
                rng.pick(ACTIONS)
            );
            patterns.push(PatternSpec {
                slug: format!("pattern-{:04}", p + 1),
                skill: s,
                title,
                covers,
                priority: rng.range(0, 100),
                summary,
            });
        }
        skills.push(SkillSpec {
            name: format!("skill-{:03}", s + 1),
            topic,
            patterns: range,
            pool,
        });
    }

    let mut agents = Vec::with_capacity(args.agents);
    for a in 0..args.agents {
        let first = a % args.skills;
        // The skills an agent may use: all, or its plugin's (skill `s` is plugin `s % plugins`'s).
        let available = match args.plugins {
            0 => args.skills,
            n => (first % n..args.skills).step_by(n).count(),
        };
        let n_skills = (1 + rng.weighted(&[30, 45, 25])).min(available);
        let mut ks = vec![first];
        while ks.len() < n_skills {
            let k = rng.below(args.skills);
            if args.plugins > 0 && k % args.plugins != first % args.plugins {
                continue;
            }
            if !ks.contains(&k) {
                ks.push(k);
            }
        }
        let n_cats = rng.range(3, 5).max(n_skills);
        let mut categories: Vec<CategorySpec> = Vec::new();
        for j in 0..n_cats {
            let skill = ks[j % ks.len()];
            let facet_i = j / ks.len();
            let topic = &skills[skill].topic;
            let name = match FACETS[facet_i % FACETS.len()] {
                "" => topic.clone(),
                f => format!("{topic} {f}"),
            };
            categories.push(CategorySpec {
                name,
                skill,
                want: rng.range(2, 5),
                items: Vec::new(),
            });
        }
        agents.push(AgentSpec {
            name: format!("agent-{:04}", a + 1),
            topic: skills[ks[0]].topic.clone(),
            skills: ks,
            categories,
        });
    }

    // Fill the categories' slots from their skills' pools, cycling, so every pool item lands somewhere when there
    // are at least as many slots as items.
    let mut cursor = vec![0usize; skills.len()];
    let mut used: Vec<Vec<bool>> = skills.iter().map(|s| vec![false; s.pool.len()]).collect();
    for agent in agents.iter_mut() {
        let mut mine: HashSet<(usize, usize)> = HashSet::default();
        for cat in agent.categories.iter_mut() {
            let pool = &skills[cat.skill].pool;
            for _ in 0..cat.want {
                for _ in 0..pool.len() {
                    let k = cursor[cat.skill] % pool.len();
                    cursor[cat.skill] += 1;
                    if mine.insert((cat.skill, k)) {
                        used[cat.skill][k] = true;
                        cat.items.push(pool[k].clone());
                        break;
                    }
                }
            }
        }
    }
    // Items no slot reached go to the categories drawing on that skill, round-robin.
    let mut slots: Vec<Vec<(usize, usize)>> = vec![Vec::new(); skills.len()];
    for (ai, agent) in agents.iter().enumerate() {
        for (ci, cat) in agent.categories.iter().enumerate() {
            slots[cat.skill].push((ai, ci));
        }
    }
    for (s, skill) in skills.iter().enumerate() {
        if slots[s].is_empty() {
            continue;
        }
        let mut j = 0;
        for (k, item) in skill.pool.iter().enumerate() {
            if !used[s][k] {
                let (ai, ci) = slots[s][j % slots[s].len()];
                agents[ai].categories[ci].items.push(item.clone());
                j += 1;
            }
        }
    }
    for agent in agents.iter_mut() {
        agent.categories.retain(|c| !c.items.is_empty());
    }
    (skills, patterns, agents)
}

// ---------------------------------------------------------------------------------------------------------------
// Text

fn sentence(rng: &mut Rng, terms: &[String]) -> String {
    let term = rng.pick(terms).to_lowercase();
    match rng.below(8) {
        0 => format!(
            "{} {} when {}.",
            capitalize(&term),
            rng.pick(VERB_PHRASES),
            rng.pick(CONDITIONS)
        ),
        1 => format!(
            "In practice, {term} {}, so {}.",
            rng.pick(VERB_PHRASES),
            rng.pick(CONSEQUENCES)
        ),
        2 => format!(
            "Teams that {} usually find that {term} {}.",
            rng.pick(ACTIONS),
            rng.pick(VERB_PHRASES)
        ),
        3 => format!(
            "The usual failure mode is {}, which means {}.",
            rng.pick(FAILURES),
            rng.pick(CONSEQUENCES)
        ),
        4 => format!(
            "Measure {} before and after changing {term}.",
            rng.pick(METRICS)
        ),
        5 => format!(
            "A careful approach to {term} keeps {} predictable under {}.",
            rng.pick(METRICS),
            rng.pick(LOADS)
        ),
        6 => format!(
            "When {}, {term} {}.",
            rng.pick(CONDITIONS),
            rng.pick(VERB_PHRASES)
        ),
        _ => format!("If you only do one thing, {}.", rng.pick(ACTIONS)),
    }
}

fn paragraph(rng: &mut Rng, terms: &[String], min: usize, max: usize) -> String {
    let n = rng.range(min, max);
    (0..n)
        .map(|_| sentence(rng, terms))
        .collect::<Vec<_>>()
        .join(" ")
}

fn module_name(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(capitalize)
        .collect()
}

fn fn_name(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

fn code_block(rng: &mut Rng, module: &str, term: &str) -> String {
    let f = fn_name(term);
    let mut s = String::new();
    match rng.below(4) {
        0 => {
            s.push_str("```elixir\n");
            writeln!(s, "defmodule Corpus.{module} do").unwrap();
            writeln!(s, "  # {}", capitalize(term)).unwrap();
            s.push_str("  use GenServer\n\n");
            s.push_str("  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)\n\n");
            s.push_str("  @impl true\n  def init(opts) do\n");
            writeln!(
                s,
                "    {{:ok, %{{limit: Keyword.get(opts, :limit, {}), pending: :queue.new()}}}}",
                rng.range(8, 4096)
            )
            .unwrap();
            s.push_str("  end\n\n  @impl true\n");
            writeln!(
                s,
                "  def handle_call({{:{f}, item}}, _from, %{{pending: q}} = state) do"
            )
            .unwrap();
            s.push_str(
                "    {:reply, :ok, %{state | pending: :queue.in(item, q)}}\n  end\nend\n```\n",
            );
        }
        1 => {
            s.push_str("```elixir\n");
            writeln!(s, "defmodule Corpus.{module} do").unwrap();
            writeln!(s, "  @timeout {}", rng.range(1, 30) * 1000).unwrap();
            writeln!(s, "\n  def {f}(items) when is_list(items) do").unwrap();
            s.push_str("    items\n    |> Enum.chunk_every(100)\n");
            s.push_str("    |> Task.async_stream(&process/1, timeout: @timeout, max_concurrency: System.schedulers_online())\n");
            s.push_str(
                "    |> Enum.reduce({0, []}, fn\n      {:ok, n}, {ok, errs} -> {ok + n, errs}\n",
            );
            s.push_str(
                "      {:exit, reason}, {ok, errs} -> {ok, [reason | errs]}\n    end)\n  end\n\n",
            );
            s.push_str("  defp process(chunk), do: length(chunk)\nend\n```\n");
        }
        2 => {
            s.push_str("```elixir\n");
            writeln!(
                s,
                "children = [\n  {{Registry, keys: :unique, name: Corpus.{module}.Registry}},"
            )
            .unwrap();
            writeln!(
                s,
                "  {{DynamicSupervisor, strategy: :one_for_one, name: Corpus.{module}.Sup}},"
            )
            .unwrap();
            writeln!(
                s,
                "  {{Corpus.{module}.Worker, limit: {}}}\n]\n",
                rng.range(1, 64)
            )
            .unwrap();
            writeln!(
                s,
                "Supervisor.start_link(children, strategy: :rest_for_one, max_restarts: {})",
                rng.range(1, 10)
            )
            .unwrap();
            s.push_str("```\n");
        }
        _ => {
            s.push_str("```erlang\n");
            writeln!(s, "%% {}", capitalize(term)).unwrap();
            writeln!(s, "{f}(Key, State) ->").unwrap();
            s.push_str(
                "    case ets:lookup(?TABLE, Key) of\n        [{Key, Value}] -> {ok, Value};\n",
            );
            writeln!(s, "        [] -> {{error, not_found, State#state{{misses = State#state.misses + {}}}}}", rng.range(1, 3)).unwrap();
            s.push_str("    end.\n```\n");
        }
    }
    s
}

fn yaml_plain_ok(s: &str) -> bool {
    !s.contains(": ")
        && !s.contains(" #")
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c))
}

fn yaml_quoted(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn render_pattern(
    rng: &mut Rng,
    p: &PatternSpec,
    skill: &SkillSpec,
    all: &[PatternSpec],
) -> String {
    let mut fm = String::from("---\n");
    writeln!(fm, "title: {}", p.title).unwrap();
    writeln!(fm, "covers: [{}]", p.covers.join(", ")).unwrap();
    writeln!(fm, "priority: {}", p.priority).unwrap();
    if rng.chance(30) || !yaml_plain_ok(&p.summary) {
        writeln!(fm, "summary: {}", yaml_quoted(&p.summary)).unwrap();
    } else {
        writeln!(fm, "summary: {}", p.summary).unwrap();
    }
    fm.push_str("---\n\n");

    let siblings: Vec<&PatternSpec> = skill
        .patterns
        .clone()
        .filter(|&i| all[i].slug != p.slug)
        .map(|i| &all[i])
        .collect();
    let link = |rng: &mut Rng| -> Option<String> {
        if siblings.is_empty() {
            return None;
        }
        let s = siblings[rng.below(siblings.len())];
        Some(match rng.below(4) {
            0 => format!("[{}](./{}.md#the-problem)", s.title, s.slug),
            _ => format!("[{}]({}.md)", s.title, s.slug),
        })
    };
    let terms: Vec<String> = p
        .covers
        .iter()
        .cloned()
        .chain([skill.topic.clone()])
        .collect();
    let target = rng.range(300, 520);
    let mut body = String::new();

    body.push_str("## The problem\n\n");
    body.push_str(&paragraph(rng, &terms, 3, 5));
    if let Some(l) = link(rng) {
        write!(body, " See {l} for the related case.").unwrap();
    }
    body.push_str("\n\n");

    let mut heads: Vec<&str> = HEADINGS.to_vec();
    let h1 = heads.remove(rng.below(heads.len()));
    writeln!(body, "## {h1}\n").unwrap();
    body.push_str(&paragraph(rng, &terms, 2, 4));
    body.push_str("\n\n");
    for _ in 0..rng.range(3, 6) {
        let t = rng.pick(&terms).to_lowercase();
        match rng.below(3) {
            0 => writeln!(body, "- **{}**: {}", capitalize(&t), sentence(rng, &terms)).unwrap(),
            1 => writeln!(body, "- `{}` {}", fn_name(&t), rng.pick(VERB_PHRASES)).unwrap(),
            _ => writeln!(body, "- {}", sentence(rng, &terms)).unwrap(),
        }
    }
    body.push('\n');

    writeln!(body, "### Example\n").unwrap();
    body.push_str(&paragraph(rng, &terms, 1, 2));
    body.push_str("\n\n");
    let module = format!("{}.P{}", module_name(&skill.topic), &p.slug[8..]);
    body.push_str(&code_block(rng, &module, &p.covers[0]));
    body.push('\n');

    if rng.chance(40) {
        body.push_str("| Option | When | Cost |\n|---|---|---|\n");
        for _ in 0..rng.range(2, 4) {
            writeln!(
                body,
                "| {} | {} | {} |",
                capitalize(&rng.pick(&terms).to_lowercase()),
                rng.pick(CONDITIONS),
                rng.pick(METRICS)
            )
            .unwrap();
        }
        body.push('\n');
    }

    let h2 = heads.remove(rng.below(heads.len()));
    writeln!(body, "## {h2}\n").unwrap();
    for i in 1..=rng.range(2, 5) {
        writeln!(body, "{i}. {}", sentence(rng, &terms)).unwrap();
    }
    body.push('\n');
    if rng.chance(35) {
        writeln!(body, "> {}\n", sentence(rng, &terms)).unwrap();
    }

    // Pad to the word target with discussion paragraphs.
    if word_count(&body) < target {
        body.push_str("## Discussion\n\n");
        while word_count(&body) < target {
            body.push_str(&paragraph(rng, &terms, 3, 6));
            if rng.chance(25) {
                if let Some(l) = link(rng) {
                    write!(body, " Compare {l}.").unwrap();
                }
            }
            body.push_str("\n\n");
        }
    }

    if !siblings.is_empty() {
        body.push_str("## Related\n\n");
        let mut shown: Vec<String> = Vec::new();
        for _ in 0..rng.range(1, 3) {
            if let Some(l) = link(rng) {
                if !shown.contains(&l) {
                    writeln!(body, "- {l}").unwrap();
                    shown.push(l);
                }
            }
        }
    }
    fm + body.trim_end() + "\n"
}

fn render_skill(rng: &mut Rng, skill: &SkillSpec, patterns: &[PatternSpec]) -> String {
    let first = &patterns[skill.patterns.start];
    let mut s = String::from("---\n");
    writeln!(s, "name: {}", skill.name).unwrap();
    writeln!(
        s,
        "description: {} patterns for Elixir and Erlang systems ({} patterns). Use when designing, reviewing or debugging {} work.",
        skill.topic,
        skill.patterns.len(),
        skill.topic.to_lowercase()
    )
    .unwrap();
    s.push_str("---\n\n");
    writeln!(s, "# {}\n", skill.topic).unwrap();
    let terms: Vec<String> = skill.pool.iter().take(6).cloned().collect();
    s.push_str(&paragraph(rng, &terms, 2, 3));
    write!(
        s,
        " Start with [{}](patterns/{}.md).\n\n",
        first.title, first.slug
    )
    .unwrap();
    s.push_str("[Content will be expanded with full details - this stub enables plugin loading]\n");
    s
}

fn render_agent(rng: &mut Rng, a: &AgentSpec, skills: &[SkillSpec]) -> String {
    let items: Vec<String> = a
        .categories
        .iter()
        .flat_map(|c| c.items.iter().cloned())
        .collect();
    let topics: Vec<&str> = a.skills.iter().map(|&k| skills[k].topic.as_str()).collect();
    let topic_list = topics.join(", ").to_lowercase();

    // Two examples, as Claude Code's agent descriptions write them.
    let ex = |rng: &mut Rng| -> (String, String, String, String) {
        let item = rng.pick(&items).to_lowercase();
        (
            format!("Working on {}", rng.pick(&topics).to_lowercase()),
            format!("Why does {item} misbehave when {}?", rng.pick(CONDITIONS)),
            format!("I'll use the {} agent to analyze {item}.", a.name),
            {
                let i = rng.below(items.len());
                let j = (i + 1 + rng.below(items.len().max(2) - 1)) % items.len();
                format!(
                    "Question about {item}. Expert knows {} and {}.",
                    items[i], items[j]
                )
            },
        )
    };
    let examples: Vec<_> = (0..rng.range(1, 2)).map(|_| ex(rng)).collect();
    let intro =
        format!("Use this agent when working with {topic_list} in Elixir systems. Examples:");
    let mut desc_lines = vec![intro];
    for (c, u, asst, com) in &examples {
        desc_lines.push("<example>".into());
        desc_lines.push(format!("Context: {c}"));
        desc_lines.push(format!("user: \"{u}\""));
        desc_lines.push(format!("assistant: \"{asst}\""));
        desc_lines.push("<commentary>".into());
        desc_lines.push(com.clone());
        desc_lines.push("</commentary>".into());
        desc_lines.push("</example>".into());
    }

    let mut s = String::from("---\n");
    writeln!(s, "name: {}", a.name).unwrap();
    match rng.weighted(&[40, 40, 20]) {
        // Like the seed: a plain scalar with `\n` escapes and `key: value` inside; not valid YAML.
        0 => writeln!(s, "description: {}", desc_lines.join("\\n")).unwrap(),
        1 => writeln!(s, "description: {}", yaml_quoted(&desc_lines.join("\n"))).unwrap(),
        _ => {
            s.push_str("description: |\n");
            for l in &desc_lines {
                writeln!(s, "  {l}").unwrap();
            }
        }
    }
    writeln!(s, "model: {}", rng.pick(MODELS)).unwrap();
    writeln!(s, "color: {}", rng.pick(COLORS)).unwrap();
    if rng.chance(30) {
        s.push_str("tools: Read, Grep, Glob, Bash\n");
    }
    // A few single-skill agents name their skill only in the text (``See `x` skill``), like the seed.
    let text_only = a.skills.len() == 1 && rng.chance(20);
    if !text_only {
        let names: Vec<&str> = a.skills.iter().map(|&k| skills[k].name.as_str()).collect();
        writeln!(s, "skills: [{}]", names.join(", ")).unwrap();
    }
    s.push_str("---\n\n");

    writeln!(s, "# {} Expert Agent\n", a.topic).unwrap();
    let lead: Vec<String> = items.iter().take(3).map(|i| i.to_lowercase()).collect();
    writeln!(
        s,
        "You are a {} specialist with deep expertise in {}, and distributed Erlang/Elixir systems.\n",
        a.topic.to_lowercase(),
        lead.join(", ")
    )
    .unwrap();

    s.push_str("## Your Expertise\n\n");
    for c in &a.categories {
        writeln!(s, "- **{}**: {}", c.name, c.items.join(", ")).unwrap();
    }
    s.push('\n');

    s.push_str("## Responsibilities\n\n");
    for i in 1..=rng.range(4, 7) {
        let verb = rng.pick(RESP_VERBS);
        let obj = rng.pick(&items).to_lowercase();
        if rng.chance(30) {
            writeln!(s, "{i}. **{verb} {obj}** ({})", rng.pick(ACTIONS)).unwrap();
        } else {
            writeln!(s, "{i}. **{verb} {obj}**").unwrap();
        }
    }
    s.push('\n');

    s.push_str(&paragraph(rng, &items, 2, 4));
    s.push_str("\n\n");
    if text_only || rng.chance(50) {
        writeln!(
            s,
            "See `{}` skill for comprehensive patterns.\n",
            skills[a.skills[0]].name
        )
        .unwrap();
    }

    s.push_str("## Example Analysis\n\n");
    let item = rng.pick(&items).to_lowercase();
    s.push_str("```elixir\n");
    writeln!(
        s,
        "# Potential issue: {} around {item}",
        capitalize(rng.pick::<&str>(FAILURES))
    )
    .unwrap();
    writeln!(
        s,
        "# Problem: {}",
        capitalize(rng.pick::<&str>(CONSEQUENCES))
    )
    .unwrap();
    writeln!(s, "# Solution: {}", capitalize(rng.pick::<&str>(ACTIONS))).unwrap();
    writeln!(s, "defmodule Corpus.{}.Check do", module_name(&a.name)).unwrap();
    writeln!(s, "  def {}(state), do: {{:ok, state}}", fn_name(&item)).unwrap();
    s.push_str("end\n```\n\n");
    s.push_str("[Content will be expanded in follow-up - this stub enables plugin loading]\n");
    s
}

// ---------------------------------------------------------------------------------------------------------------

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes a corpus of `agents` agents, `skills` skills and `patterns` patterns into `out` (the test suite's entry).
#[allow(dead_code)]
pub fn generate(
    out: &Path,
    agents: usize,
    skills: usize,
    patterns: usize,
    seed: u64,
) -> Result<(), String> {
    generate_marketplace(out, agents, skills, patterns, 0, seed)
}

/// Writes a marketplace of `plugins` plugins (`gen_corpus --plugins`; 0: one plugin, as [`generate`]) into `out` (the
/// test suite's entry).
#[allow(dead_code)]
pub fn generate_marketplace(
    out: &Path,
    agents: usize,
    skills: usize,
    patterns: usize,
    plugins: usize,
    seed: u64,
) -> Result<(), String> {
    run(&Args {
        out: out.to_path_buf(),
        agents,
        skills,
        patterns,
        seed,
        force: true,
        plugins,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let out = &args.out;
    if out.exists() {
        let nonempty = fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_some();
        if nonempty && !args.force {
            return Err(format!(
                "{} exists and is not empty; pass --force to replace its agents/ and skills/",
                out.display()
            ));
        }
        for sub in ["agents", "skills", "plugins", ".claude-plugin"] {
            let p = out.join(sub);
            if p.exists() {
                fs::remove_dir_all(&p)
                    .map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
            }
        }
    }
    let mut rng = Rng::new(args.seed);
    let (skills, patterns, agents) = build_model(args, &mut rng);

    // The folder of skill `s`'s plugin (OUT_DIR itself without --plugins).
    let plugin_name = |s: usize| format!("plugin-{:02}", s % args.plugins.max(1) + 1);
    let plugin_dir = |s: usize| match args.plugins {
        0 => out.clone(),
        _ => out.join("plugins").join(plugin_name(s)),
    };
    let mut bytes = 0usize;
    let mut files = 0usize;
    let mut words = 0usize;
    if args.plugins > 0 {
        let mut entries = Vec::new();
        // Plugin `p`'s first skill is skill `p`: its topic describes the plugin.
        for (p, first) in skills.iter().enumerate().take(args.plugins) {
            let name = plugin_name(p);
            let meta = plugin_dir(p).join(".claude-plugin");
            fs::create_dir_all(&meta)
                .map_err(|e| format!("cannot create {}: {e}", meta.display()))?;
            let topic = first.topic.to_lowercase();
            let manifest = format!(
                "{{\n  \"name\": \"{name}\",\n  \"version\": \"1.0.0\",\n  \"description\": \"Agents and skills for {topic} in Elixir systems.\",\n  \"author\": {{ \"name\": \"Corpus\" }}\n}}\n"
            );
            write(&meta.join("plugin.json"), &manifest)?;
            files += 1;
            entries.push(format!(
                "    {{\n      \"name\": \"{name}\",\n      \"source\": \"./plugins/{name}\",\n      \"description\": \"Agents and skills for {topic}.\"\n    }}"
            ));
        }
        let meta = out.join(".claude-plugin");
        fs::create_dir_all(&meta).map_err(|e| format!("cannot create {}: {e}", meta.display()))?;
        let marketplace = format!(
            "{{\n  \"name\": \"corpus\",\n  \"owner\": {{ \"name\": \"Corpus\" }},\n  \"plugins\": [\n{}\n  ]\n}}\n",
            entries.join(",\n")
        );
        write(&meta.join("marketplace.json"), &marketplace)?;
        files += 1;
    }
    for a in &agents {
        let text = render_agent(&mut rng, a, &skills);
        bytes += text.len();
        files += 1;
        let agents_dir = plugin_dir(a.skills[0]).join("agents");
        fs::create_dir_all(&agents_dir)
            .map_err(|e| format!("cannot create {}: {e}", agents_dir.display()))?;
        write(&agents_dir.join(format!("{}.md", a.name)), &text)?;
    }
    for (k, skill) in skills.iter().enumerate() {
        let dir = plugin_dir(k).join("skills").join(&skill.name);
        let pdir = dir.join("patterns");
        fs::create_dir_all(&pdir).map_err(|e| format!("cannot create {}: {e}", pdir.display()))?;
        let text = render_skill(&mut rng, skill, &patterns);
        bytes += text.len();
        files += 1;
        write(&dir.join("SKILL.md"), &text)?;
        for p in &patterns[skill.patterns.clone()] {
            debug_assert_eq!(skills[p.skill].name, skill.name);
            let text = render_pattern(&mut rng, p, skill, &patterns);
            words += word_count(&text);
            bytes += text.len();
            files += 1;
            write(&pdir.join(format!("{}.md", p.slug)), &text)?;
        }
    }
    let items: usize = agents
        .iter()
        .flat_map(|a| &a.categories)
        .map(|c| c.items.len())
        .sum();
    eprintln!(
        "gen_corpus: wrote {files} files ({} agents, {} skills, {} patterns; {items} expertise items, {} distinct; \
         {} pattern words; {:.1} MiB) to {}",
        agents.len(),
        skills.len(),
        patterns.len(),
        skills.iter().map(|s| s.pool.len()).sum::<usize>(),
        words,
        bytes as f64 / (1024.0 * 1024.0),
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_corpus: {e}");
            ExitCode::from(2)
        }
    }
}
