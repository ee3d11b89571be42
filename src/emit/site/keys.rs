//! The keys of the generated pages: a hash of what each page is made from, so that a caller that keeps pages between
//! builds (the engine, under `watch`) makes again only the pages whose inputs changed.
//!
//! Every page may read the model's *shape*: every source file except the bodies of the pattern files (agents,
//! SKILL.md, commands, manifests, the files copied as they are), each pattern's frontmatter and what is read from it
//! (title, slug, priority, summary, `covers:`), the check report's coverage, and its gaps without their positions
//! when they are in pattern files. A pattern's body, and the positions of the gaps in its file, are read by its own
//! page alone; the coverage page lists every gap with its position. The agents' and bundles' pages also read what
//! the bundle stage made for the agent ([`super::AgentBundles::key`]).
//!
//! A key that misses an input would keep a stale page: the engine's tests compare every incremental build with a
//! build from scratch, byte for byte.

use super::SiteInput;
use crate::diagnostic::Diagnostic;
use crate::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// What every page may read, hashed once per build.
pub struct Shape {
    shape: u64,
}

fn gap_full(d: &Diagnostic, h: &mut DefaultHasher) {
    (&d.path, d.line, d.column, d.code, &d.message).hash(h);
}

impl Shape {
    pub fn new(input: &SiteInput, title: &str, description: &str) -> Shape {
        let mut h = DefaultHasher::new();
        let model = input.model;
        (title, description, model.files).hash(&mut h);
        if let Some(m) = &model.marketplace {
            (&m.rel, &m.text).hash(&mut h);
        }
        for f in &model.copies {
            (&f.rel, f.mode, crate::write::hash_bytes(&f.bytes)).hash(&mut h);
        }
        // The pattern files, by relative path (their gaps' positions are not in the shape).
        let mut patterns = HashSet::default();
        for p in &model.plugins {
            (
                &p.name,
                &p.dir,
                p.namespaced,
                p.agents.len(),
                p.skills.len(),
            )
                .hash(&mut h);
            if let Some(m) = &p.manifest {
                (&m.rel, &m.text).hash(&mut h);
            }
            for a in &p.agents {
                (&a.doc.file.rel, &a.doc.file.text).hash(&mut h);
            }
            for c in &p.commands {
                (&c.doc.file.rel, &c.doc.file.text).hash(&mut h);
            }
            for s in &p.skills {
                (
                    &s.name,
                    &s.dir_name,
                    &s.dir,
                    s.has_skill_md,
                    &s.description,
                    s.patterns.len(),
                )
                    .hash(&mut h);
                if let Some(d) = &s.doc {
                    (&d.file.rel, &d.file.text).hash(&mut h);
                }
                for pat in &s.patterns {
                    let front = pat
                        .doc
                        .file
                        .text
                        .get(..pat.doc.body_start)
                        .unwrap_or_default();
                    (
                        &pat.doc.file.rel,
                        front,
                        &pat.slug,
                        &pat.title,
                        pat.priority,
                        &pat.summary,
                    )
                        .hash(&mut h);
                    for c in &pat.covers {
                        c.name.hash(&mut h);
                    }
                    patterns.insert(pat.doc.file.rel.clone());
                }
            }
        }
        input.report.coverage.hash(&mut h);
        for d in input.report.diagnostics.iter().filter(|d| d.is_gap()) {
            if patterns.contains(&d.path) {
                (&d.path, d.code, &d.message).hash(&mut h);
            } else {
                gap_full(d, &mut h);
            }
        }
        Shape { shape: h.finish() }
    }

    fn start(&self, kind: u8) -> DefaultHasher {
        let mut h = DefaultHasher::new();
        (self.shape, kind).hash(&mut h);
        h
    }

    /// A page that reads the shape alone (the home page, a skill's page, a category's page): `kind` and `at` tell
    /// the pages apart.
    pub fn plain(&self, kind: u8, at: &[usize]) -> u64 {
        let mut h = self.start(kind);
        at.hash(&mut h);
        h.finish()
    }

    /// A pattern's page: the shape, the whole file and the gaps in it with their positions (the index's gaps of the
    /// file, [`super::index::Index::gaps`]).
    pub fn pattern(
        &self,
        at: crate::expand::PatternKey,
        file: &crate::load::SourceFile,
        gaps: &[&Diagnostic],
    ) -> u64 {
        let mut h = self.start(4);
        (at, &file.rel, &file.text).hash(&mut h);
        for d in gaps {
            gap_full(d, &mut h);
        }
        h.finish()
    }

    /// The coverage page: the shape and every gap with its position, as the page lists them (the index's gaps).
    pub fn coverage<'d>(&self, gaps: impl Iterator<Item = &'d Diagnostic>) -> u64 {
        let mut h = self.start(5);
        for d in gaps {
            gap_full(d, &mut h);
        }
        h.finish()
    }

    /// A page that also reads what the bundle stage made for an agent (its key).
    pub fn with_bundles(&self, kind: u8, at: usize, bundles: Option<u64>) -> u64 {
        let mut h = self.start(kind);
        (at, bundles).hash(&mut h);
        h.finish()
    }
}
