//! The site's index of the model: a page path for every agent, skill, pattern and category, each agent's items
//! with the patterns that cover them (from the check report), and each pattern's backlinks to those items.

use super::util::{slugify, Unique};
use crate::check::Report;
use crate::diagnostic::Diagnostic;
use crate::expand::{PatternKey, MORE, PROCEDURES};
use crate::parse::{Agent, CoverIndex, Model, Pattern, Skill};
use std::collections::BTreeMap;

/// One expertise item of an agent.
#[derive(Debug, Clone)]
pub struct ItemInfo {
    pub category: String,
    pub name: String,
    /// The name [`crate::parse::normalize`]d: how a `covers:` entry names it.
    pub norm: String,
    /// The id of the item's row on the agent page.
    pub anchor: String,
    pub patterns: Vec<PatternKey>,
}

/// One numbered responsibility of an agent.
#[derive(Debug, Clone)]
pub struct RespInfo {
    pub name: String,
    pub text: String,
    pub anchor: String,
    pub patterns: Vec<PatternKey>,
}

/// An agent and where its page is.
pub struct AgentInfo<'m> {
    pub plugin: usize,
    pub agent: &'m Agent,
    pub display: String,
    pub path: String,
    pub skills: Vec<(usize, usize)>,
    pub items: Vec<ItemInfo>,
    pub resps: Vec<RespInfo>,
    /// Whether coverage applies to the agent (see [`crate::check::Coverage`]); an untracked agent's items are shown
    /// as not tracked rather than uncovered.
    pub tracked: bool,
}

impl AgentInfo<'_> {
    pub fn covered(&self) -> usize {
        self.items.iter().filter(|i| !i.patterns.is_empty()).count()
    }
}

/// A group of a skill's patterns: an expertise category of the agents using it, `Procedures` or `More Patterns`.
pub struct Group {
    pub name: String,
    pub path: String,
    pub patterns: Vec<PatternKey>,
}

/// A skill and where its pages are.
pub struct SkillInfo<'m> {
    pub key: (usize, usize),
    pub skill: &'m Skill,
    pub display: String,
    pub path: String,
    /// Indices into [`Index::agents`] of the agents that refer to the skill.
    pub users: Vec<usize>,
    pub groups: Vec<Group>,
}

/// What a backlink from a pattern points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Item(usize),
    Resp(usize),
}

/// A pattern and where its page is.
pub struct PatternInfo {
    /// Its own page.
    pub path: String,
    pub group: String,
    pub group_path: String,
    /// (agent index, item or responsibility) that the pattern covers.
    pub backlinks: Vec<(usize, Target)>,
}

/// Everything the pages need to link to each other.
pub struct Index<'m> {
    pub model: &'m Model,
    pub agents: Vec<AgentInfo<'m>>,
    pub skills: Vec<SkillInfo<'m>>,
    pub skill_of: BTreeMap<(usize, usize), usize>,
    pub patterns: BTreeMap<PatternKey, PatternInfo>,
    /// Skill folder (as loaded) to index into `skills`, for the expansion's link function.
    pub by_dir: BTreeMap<String, usize>,
    /// The gaps (errors that still build: see [`crate::diagnostic::ErrorKind`]) by source file, for the banners of
    /// the pages made from those files.
    pub gaps: BTreeMap<&'m str, Vec<&'m Diagnostic>>,
}

impl<'m> Index<'m> {
    pub fn new(model: &'m Model, report: &'m Report) -> Self {
        let mut paths = Unique::default();
        for reserved in [
            "index.md",
            "coverage.md",
            "print.md",
            "404.md",
            "toc.md",
            "SUMMARY.md",
        ] {
            paths.reserve(reserved);
        }
        let by_rel: BTreeMap<&str, PatternKey> = model
            .plugins
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| {
                p.skills.iter().enumerate().flat_map(move |(si, s)| {
                    s.patterns.iter().enumerate().map(move |(i, pat)| {
                        (
                            pat.doc.file.rel.as_str(),
                            PatternKey {
                                plugin: pi,
                                skill: si,
                                pattern: i,
                            },
                        )
                    })
                })
            })
            .collect();

        // Per skill: normalised cover -> indices of the patterns naming it.
        let covers: BTreeMap<(usize, usize), CoverIndex> = model
            .plugins
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| {
                p.skills
                    .iter()
                    .enumerate()
                    .map(move |(si, s)| ((pi, si), s.cover_index()))
            })
            .collect();
        // The patterns of `skills` that cover any of `keys` (normalised names).
        let covering = |skills: &[(usize, usize)], keys: &[&str]| -> Vec<PatternKey> {
            let mut out = Vec::new();
            for &(p, s) in skills {
                let Some(map) = covers.get(&(p, s)) else {
                    continue;
                };
                let mut found: Vec<usize> = keys
                    .iter()
                    .filter_map(|k| map.get(k))
                    .flatten()
                    .copied()
                    .collect();
                found.sort_unstable();
                found.dedup();
                out.extend(found.into_iter().map(|i| PatternKey {
                    plugin: p,
                    skill: s,
                    pattern: i,
                }));
            }
            out
        };
        let mut agents = Vec::new();
        let mut k = 0;
        for (pi, plugin) in model.plugins.iter().enumerate() {
            for agent in &plugin.agents {
                let coverage = report
                    .coverage
                    .get(k)
                    .filter(|c| c.path == agent.doc.file.rel);
                k += 1;
                let dir = if plugin.namespaced {
                    format!("agents/{}/", slugify(&plugin.name))
                } else {
                    "agents/".to_string()
                };
                let path = paths.take(&format!("{dir}{}.md", slugify(agent.doc.file.stem())));
                let skills = model.agent_skills(pi, agent);
                let mut anchors = Unique::default();
                let items = agent
                    .items()
                    .enumerate()
                    .map(|(n, (cat, item))| {
                        let patterns = match coverage.and_then(|c| c.items.get(n)) {
                            Some(ic) if ic.item == item.name => ic
                                .covered_by
                                .iter()
                                .filter_map(|r| by_rel.get(r.path.as_str()).copied())
                                .collect(),
                            _ => covering(&skills, &[&item.norm]),
                        };
                        ItemInfo {
                            category: cat.name.clone(),
                            name: item.name.clone(),
                            norm: item.norm.clone(),
                            anchor: anchors.take(&format!("item-{}", slugify(&item.name))),
                            patterns,
                        }
                    })
                    .collect();
                let resps = agent
                    .responsibilities
                    .iter()
                    .map(|r| RespInfo {
                        name: r.name.clone(),
                        text: r.text.clone(),
                        anchor: anchors.take(&format!("responsibility-{}", slugify(&r.name))),
                        patterns: covering(&skills, &[&r.norms[0], &r.norms[1]]),
                    })
                    .collect();
                let tracked = match coverage {
                    Some(c) => c.tracked,
                    None => crate::check::tracked(model, pi, agent, Default::default()),
                };
                agents.push(AgentInfo {
                    plugin: pi,
                    agent,
                    display: plugin.display(&agent.name),
                    path,
                    skills,
                    items,
                    resps,
                    tracked,
                });
            }
        }

        let mut skills = Vec::new();
        let mut skill_of = BTreeMap::new();
        let mut by_dir = BTreeMap::new();
        let mut patterns = BTreeMap::new();
        for (pi, plugin) in model.plugins.iter().enumerate() {
            for (si, skill) in plugin.skills.iter().enumerate() {
                let key = (pi, si);
                let (skill_dir, pattern_dir) = if plugin.namespaced {
                    let p = slugify(&plugin.name);
                    (format!("skills/{p}/"), format!("patterns/{p}/"))
                } else {
                    ("skills/".to_string(), "patterns/".to_string())
                };
                let slug = slugify(&skill.dir_name);
                let path = paths.take(&format!("{skill_dir}{slug}.md"));
                let pattern_dir = format!("{pattern_dir}{slug}/");
                let users: Vec<usize> = agents
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.skills.contains(&key))
                    .map(|(i, _)| i)
                    .collect();
                // Every pattern's page first, so that category pages never take a pattern's name.
                let pattern_paths: Vec<String> = skill
                    .patterns
                    .iter()
                    .map(|p| paths.take(&format!("{pattern_dir}{}.md", slugify(&p.slug))))
                    .collect();
                let mut groups = group_patterns(key, skill, &covers[&key], &users, &agents);
                for g in &mut groups {
                    g.path =
                        paths.take(&format!("{pattern_dir}by-category/{}.md", slugify(&g.name)));
                }
                for g in &groups {
                    for k in &g.patterns {
                        patterns.insert(
                            *k,
                            PatternInfo {
                                path: pattern_paths[k.pattern].clone(),
                                group: g.name.clone(),
                                group_path: g.path.clone(),
                                backlinks: Vec::new(),
                            },
                        );
                    }
                }
                skill_of.insert(key, skills.len());
                by_dir.insert(skill.dir.clone(), skills.len());
                skills.push(SkillInfo {
                    key,
                    skill,
                    display: plugin.display(&skill.name),
                    path,
                    users,
                    groups,
                });
            }
        }
        for (ai, a) in agents.iter().enumerate() {
            for (n, item) in a.items.iter().enumerate() {
                for k in &item.patterns {
                    if let Some(p) = patterns.get_mut(k) {
                        p.backlinks.push((ai, Target::Item(n)));
                    }
                }
            }
            for (n, r) in a.resps.iter().enumerate() {
                for k in &r.patterns {
                    if let Some(p) = patterns.get_mut(k) {
                        p.backlinks.push((ai, Target::Resp(n)));
                    }
                }
            }
        }
        Index {
            model,
            agents,
            skills,
            skill_of,
            patterns,
            by_dir,
            gaps: {
                let mut gaps: BTreeMap<&str, Vec<&Diagnostic>> = BTreeMap::new();
                for d in report.diagnostics.iter().filter(|d| d.is_gap()) {
                    gaps.entry(d.path.as_str()).or_default().push(d);
                }
                gaps
            },
        }
    }

    pub fn pattern(&self, k: PatternKey) -> (&'m Skill, &'m Pattern) {
        k.get(self.model)
    }

    pub fn skill_info(&self, key: (usize, usize)) -> Option<&SkillInfo<'m>> {
        self.skill_of.get(&key).map(|&i| &self.skills[i])
    }

    /// The link from the page at `from` to a pattern's page, optionally to one of its headings (`fragment`).
    pub fn href(&self, from: &str, k: PatternKey, fragment: Option<&str>) -> Option<String> {
        let info = self.patterns.get(&k)?;
        let page = super::util::rel(from, &info.path);
        Some(match fragment {
            Some(f) if !f.is_empty() => format!("{page}#{f}"),
            _ => page,
        })
    }

    /// The pattern whose skill folder is `dir` and whose slug is `slug`.
    pub fn pattern_by_dir(&self, dir: &str, slug: &str) -> Option<PatternKey> {
        let s = &self.skills[*self.by_dir.get(dir)?];
        let i = s.skill.patterns.iter().position(|p| p.slug == slug)?;
        Some(PatternKey {
            plugin: s.key.0,
            skill: s.key.1,
            pattern: i,
        })
    }

    /// Total expertise items and how many are covered, over the agents coverage applies to.
    pub fn totals(&self) -> (usize, usize) {
        let tracked = || self.agents.iter().filter(|a| a.tracked);
        let items = tracked().map(|a| a.items.len()).sum();
        let covered = tracked().map(|a| a.covered()).sum();
        (items, covered)
    }
}

/// Groups a skill's patterns as the expansion does: under the first expertise category (of the agents using the
/// skill, in their order) with an item the pattern covers; then `Procedures` for patterns that cover only
/// responsibilities; then `More Patterns`. Within a group: the order of the items they cover, then priority (highest
/// first), then slug.
fn group_patterns(
    key: (usize, usize),
    skill: &Skill,
    by_cover: &CoverIndex,
    users: &[usize],
    agents: &[AgentInfo],
) -> Vec<Group> {
    let mut order: Vec<String> = Vec::new();
    // pattern index -> (group, position of the first covered item in that group)
    let mut placed: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for &ai in users {
        let a = agents[ai].agent;
        for cat in &a.expertise {
            for (pos, item) in cat.items.iter().enumerate() {
                let Some(list) = by_cover.get(item.norm.as_str()) else {
                    continue;
                };
                for &i in list {
                    if placed.contains_key(&i) {
                        continue;
                    }
                    if !order.contains(&cat.name) {
                        order.push(cat.name.clone());
                    }
                    placed.insert(i, (cat.name.clone(), pos));
                }
            }
        }
    }
    for &ai in users {
        for (pos, r) in agents[ai].agent.responsibilities.iter().enumerate() {
            for key in &r.norms {
                for &i in by_cover.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                    placed
                        .entry(i)
                        .or_insert_with(|| (PROCEDURES.to_string(), pos));
                }
            }
        }
    }
    let mut rest = false;
    for i in 0..skill.patterns.len() {
        if let std::collections::btree_map::Entry::Vacant(e) = placed.entry(i) {
            e.insert((MORE.to_string(), 0));
            rest = true;
        }
    }
    if placed.values().any(|(g, _)| g == PROCEDURES) {
        order.push(PROCEDURES.to_string());
    }
    if rest {
        order.push(MORE.to_string());
    }
    order
        .into_iter()
        .map(|name| {
            let mut members: Vec<(usize, usize)> = placed
                .iter()
                .filter(|(_, (g, _))| *g == name)
                .map(|(&i, (_, pos))| (i, *pos))
                .collect();
            members.sort_by_key(|&(i, pos)| {
                let p = &skill.patterns[i];
                (pos, std::cmp::Reverse(p.priority), p.slug.clone())
            });
            Group {
                name,
                path: String::new(),
                patterns: members
                    .into_iter()
                    .map(|(i, _)| PatternKey {
                        plugin: key.0,
                        skill: key.1,
                        pattern: i,
                    })
                    .collect(),
            }
        })
        .collect()
}
