// Copyright 2016 The Fancy Regex Authors.
//
// Permission is hereby granted, free of charge, to any person obtaining a copy
// of this software and associated documentation files (the "Software"), to deal
// in the Software without restriction, including without limitation the rights
// to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
// copies of the Software, and to permit persons to whom the Software is
// furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
// IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
// OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
// THE SOFTWARE.

//! Compilation of regexes to VM.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use regex_automata::meta::Regex as RaRegex;
use alloc::boxed::Box;
use alloc::sync::Arc;
use regex_automata::meta::{Builder as RaBuilder, BuildError as RaBuildError, Config as RaConfig};
use regex_automata::util::syntax::Config as SyntaxConfig;
use regex_syntax::hir::{Capture, Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::analyze::Info;
use crate::vm::{Delegate, Insn, Prog};
use crate::LookAround::*;
use crate::{CompileError, Error, Expr, LookAround, RegexOptions, Result};

// I'm thinking it probably doesn't make a lot of sense having this split
// out from Compiler.
struct VMBuilder {
    prog: Vec<Insn>,
    n_saves: usize,
}

impl VMBuilder {
    fn new(max_group: usize) -> VMBuilder {
        VMBuilder {
            prog: Vec::new(),
            n_saves: max_group * 2,
        }
    }

    fn build(self) -> Prog {
        Prog::new(self.prog, self.n_saves)
    }

    fn newsave(&mut self) -> usize {
        let result = self.n_saves;
        self.n_saves += 1;
        result
    }

    fn pc(&self) -> usize {
        self.prog.len()
    }

    // would "emit" be a better name?
    fn add(&mut self, insn: Insn) {
        self.prog.push(insn);
    }

    fn set_jmp_target(&mut self, jmp_pc: usize, target: usize) {
        match self.prog[jmp_pc] {
            Insn::Jmp(ref mut next) => *next = target,
            _ => panic!("mutating instruction other than Jmp"),
        }
    }

    fn set_split_target(&mut self, split_pc: usize, target: usize, second: bool) {
        match self.prog[split_pc] {
            Insn::Split(_, ref mut y) if second => *y = target,
            Insn::Split(ref mut x, _) => *x = target,
            _ => panic!("mutating instruction other than Split"),
        }
    }

    fn set_repeat_target(&mut self, repeat_pc: usize, target: usize) {
        match self.prog[repeat_pc] {
            Insn::RepeatGr { ref mut next, .. }
            | Insn::RepeatNg { ref mut next, .. }
            | Insn::RepeatEpsilonGr { ref mut next, .. }
            | Insn::RepeatEpsilonNg { ref mut next, .. } => *next = target,
            _ => panic!("mutating instruction other than Repeat"),
        }
    }
}

struct Compiler {
    b: VMBuilder,
    options: RegexOptions,
}

impl Compiler {
    fn new(max_group: usize) -> Compiler {
        Compiler {
            b: VMBuilder::new(max_group),
            options: Default::default(),
        }
    }

    fn visit(&mut self, info: &Info<'_>, hard: bool) -> Result<()> {
        if !hard && !info.hard {
            // easy case, delegate entire subexpr
            return self.compile_delegate(info);
        }
        match *info.expr {
            Expr::Empty => (),
            Expr::Literal { ref val, casei } => {
                if !casei {
                    self.b.add(Insn::Lit(val.clone()));
                } else {
                    self.compile_delegate(info)?;
                }
            }
            Expr::Any { newline: true } => {
                self.b.add(Insn::Any);
            }
            Expr::Any { newline: false } => {
                self.b.add(Insn::AnyNoNL);
            }
            Expr::Concat(_) => {
                self.compile_concat(info, hard)?;
            }
            Expr::Alt(_) => {
                let count = info.children.len();
                self.compile_alt(count, |compiler, i| compiler.visit(&info.children[i], hard))?;
            }
            Expr::Group(_) => {
                let group = info.start_group;
                self.b.add(Insn::Save(group * 2));
                self.visit(&info.children[0], hard)?;
                self.b.add(Insn::Save(group * 2 + 1));
            }
            Expr::Repeat { lo, hi, greedy, .. } => {
                self.compile_repeat(info, lo, hi, greedy, hard)?;
            }
            Expr::LookAround(_, la) => {
                self.compile_lookaround(info, la)?;
            }
            Expr::Backref { group, casei } => {
                self.b.add(Insn::Backref {
                    slot: group * 2,
                    casei,
                });
            }
            Expr::BackrefExistsCondition(group) => {
                self.b.add(Insn::BackrefExistsCondition(group));
            }
            Expr::AtomicGroup(_) => {
                // TODO optimization: atomic insns are not needed if the
                // child doesn't do any backtracking.
                self.b.add(Insn::BeginAtomic);
                self.visit(&info.children[0], false)?;
                self.b.add(Insn::EndAtomic);
            }
            Expr::Delegate { .. } => {
                // TODO: might want to have more specialized impls
                self.compile_delegate(info)?;
            }
            Expr::Assertion(assertion) => {
                self.b.add(Insn::Assertion(assertion));
            }
            Expr::KeepOut => {
                self.b.add(Insn::Save(0));
            }
            Expr::ContinueFromPreviousMatchEnd => {
                self.b.add(Insn::ContinueFromPreviousMatchEnd);
            }
            Expr::Conditional { .. } => {
                self.compile_conditional(|compiler, i| compiler.visit(&info.children[i], hard))?;
            }
            Expr::SubroutineCall(_) => {
                return Err(Error::CompileError(CompileError::FeatureNotYetSupported(
                    "Subroutine Call".to_string(),
                )));
            }
            Expr::UnresolvedNamedSubroutineCall { .. } => unreachable!(),
            Expr::BackrefWithRelativeRecursionLevel { .. } => unreachable!(),
        }
        Ok(())
    }

    fn compile_alt<F>(&mut self, count: usize, mut handle_alternative: F) -> Result<()>
    where
        F: FnMut(&mut Compiler, usize) -> Result<()>,
    {
        let mut jmps = Vec::new();
        let mut last_pc = usize::MAX;
        for i in 0..count {
            let has_next = i != count - 1;
            let pc = self.b.pc();
            if has_next {
                self.b.add(Insn::Split(pc + 1, usize::MAX));
            }
            if last_pc != usize::MAX {
                self.b.set_split_target(last_pc, pc, true);
            }
            last_pc = pc;

            handle_alternative(self, i)?;

            if has_next {
                // All except the last branch need to jump over instructions of
                // other branches. The last branch can just continue to the next
                // instruction.
                let pc = self.b.pc();
                jmps.push(pc);
                self.b.add(Insn::Jmp(0));
            }
        }
        let next_pc = self.b.pc();
        for jmp_pc in jmps {
            self.b.set_jmp_target(jmp_pc, next_pc);
        }
        Ok(())
    }

    fn compile_conditional<F>(&mut self, mut handle_child: F) -> Result<()>
    where
        F: FnMut(&mut Compiler, usize) -> Result<()>,
    {
        // here we use atomic group functionality to be able to remove the program counter
        // relating to the split instruction's second position if the conditional succeeds
        // This is to ensure that if the condition succeeds, but the "true" branch from the
        // conditional fails, that it wouldn't jump to the "false" branch.
        self.b.add(Insn::BeginAtomic);

        let split_pc = self.b.pc();
        // add the split instruction - we will update it's second pc later
        self.b.add(Insn::Split(split_pc + 1, usize::MAX));

        // add the conditional expression
        handle_child(self, 0)?;

        // mark it as successful to remove the state we added as a split earlier
        self.b.add(Insn::EndAtomic);

        // add the truth branch
        handle_child(self, 1)?;
        // add an instruction to jump over the false branch - we will update the jump target later
        let jump_over_false_pc = self.b.pc();
        self.b.add(Insn::Jmp(0));

        // add the false branch, update the split target
        self.b.set_split_target(split_pc, self.b.pc(), true);
        handle_child(self, 2)?;

        // update the jump target for jumping over the false branch
        self.b.set_jmp_target(jump_over_false_pc, self.b.pc());

        Ok(())
    }

    fn compile_concat(&mut self, info: &Info<'_>, hard: bool) -> Result<()> {
        // First: determine a prefix which is constant size and not hard.
        let prefix_end = info
            .children
            .iter()
            .take_while(|c| c.const_size && !c.hard)
            .count();

        // If incoming difficulty is not hard, the suffix after the last
        // hard child can be done with NFA.
        let suffix_len = if !hard {
            info.children[prefix_end..]
                .iter()
                .rev()
                .take_while(|c| !c.hard)
                .count()
        } else {
            // Even for hard, we can delegate a const-sized suffix
            info.children[prefix_end..]
                .iter()
                .rev()
                .take_while(|c| c.const_size && !c.hard)
                .count()
        };
        let suffix_begin = info.children.len() - suffix_len;

        self.compile_delegates(&info.children[..prefix_end])?;

        for child in info.children[prefix_end..suffix_begin].iter() {
            self.visit(child, true)?;
        }

        self.compile_delegates(&info.children[suffix_begin..])
    }

    fn compile_repeat(
        &mut self,
        info: &Info<'_>,
        lo: usize,
        hi: usize,
        greedy: bool,
        hard: bool,
    ) -> Result<()> {
        let child = &info.children[0];
        if lo == 0 && hi == 1 {
            // e?
            let pc = self.b.pc();
            self.b.add(Insn::Split(pc + 1, pc + 1));
            // TODO: do we want to do an epsilon check here? If we do
            // it here and in Alt, we might be able to make a good
            // bound on stack depth
            self.visit(child, hard)?;
            let next_pc = self.b.pc();
            self.b.set_split_target(pc, next_pc, greedy);
            return Ok(());
        }
        let hard = hard | info.hard;
        if hi == usize::MAX && child.min_size == 0 {
            // Use RepeatEpsilon instructions to prevent empty repeat
            let repeat = self.b.newsave();
            let check = self.b.newsave();
            self.b.add(Insn::Save0(repeat));
            let pc = self.b.pc();
            if greedy {
                self.b.add(Insn::RepeatEpsilonGr {
                    lo,
                    next: usize::MAX,
                    repeat,
                    check,
                });
            } else {
                self.b.add(Insn::RepeatEpsilonNg {
                    lo,
                    next: usize::MAX,
                    repeat,
                    check,
                });
            }
            self.visit(child, hard)?;
            self.b.add(Insn::Jmp(pc));
            let next_pc = self.b.pc();
            self.b.set_repeat_target(pc, next_pc);
        } else if lo == 0 && hi == usize::MAX {
            // e*
            let pc = self.b.pc();
            self.b.add(Insn::Split(pc + 1, pc + 1));
            self.visit(child, hard)?;
            self.b.add(Insn::Jmp(pc));
            let next_pc = self.b.pc();
            self.b.set_split_target(pc, next_pc, greedy);
        } else if lo == 1 && hi == usize::MAX {
            // e+
            let pc = self.b.pc();
            self.visit(child, hard)?;
            let next = self.b.pc() + 1;
            let (x, y) = if greedy { (pc, next) } else { (next, pc) };
            self.b.add(Insn::Split(x, y));
        } else {
            let repeat = self.b.newsave();
            self.b.add(Insn::Save0(repeat));
            let pc = self.b.pc();
            if greedy {
                self.b.add(Insn::RepeatGr {
                    lo,
                    hi,
                    next: usize::MAX,
                    repeat,
                });
            } else {
                self.b.add(Insn::RepeatNg {
                    lo,
                    hi,
                    next: usize::MAX,
                    repeat,
                });
            }
            self.visit(child, hard)?;
            self.b.add(Insn::Jmp(pc));
            let next_pc = self.b.pc();
            self.b.set_repeat_target(pc, next_pc);
        }
        Ok(())
    }

    fn compile_lookaround(&mut self, info: &Info<'_>, la: LookAround) -> Result<()> {
        let inner = &info.children[0];
        match la {
            LookBehind => {
                if let Info {
                    const_size: false,
                    expr: &Expr::Alt(_),
                    ..
                } = inner
                {
                    // Make const size by transforming `(?<=a|bb)` to `(?<=a)|(?<=bb)`
                    let alternatives = &inner.children;
                    self.compile_alt(alternatives.len(), |compiler, i| {
                        let alternative = &alternatives[i];
                        compiler.compile_positive_lookaround(alternative, la)
                    })
                } else {
                    self.compile_positive_lookaround(inner, la)
                }
            }
            LookBehindNeg => {
                if let Info {
                    const_size: false,
                    expr: &Expr::Alt(_),
                    ..
                } = inner
                {
                    // Make const size by transforming `(?<!a|bb)` to `(?<!a)(?<!bb)`
                    let alternatives = &inner.children;
                    for alternative in alternatives {
                        self.compile_negative_lookaround(alternative, la)?;
                    }
                    Ok(())
                } else {
                    self.compile_negative_lookaround(inner, la)
                }
            }
            LookAhead => self.compile_positive_lookaround(inner, la),
            LookAheadNeg => self.compile_negative_lookaround(inner, la),
        }
    }

    fn compile_positive_lookaround(&mut self, inner: &Info<'_>, la: LookAround) -> Result<()> {
        let save = self.b.newsave();
        self.b.add(Insn::Save(save));
        self.compile_lookaround_inner(inner, la)?;
        self.b.add(Insn::Restore(save));
        Ok(())
    }

    fn compile_negative_lookaround(&mut self, inner: &Info<'_>, la: LookAround) -> Result<()> {
        let pc = self.b.pc();
        self.b.add(Insn::Split(pc + 1, usize::MAX));
        self.compile_lookaround_inner(inner, la)?;
        self.b.add(Insn::FailNegativeLookAround);
        let next_pc = self.b.pc();
        self.b.set_split_target(pc, next_pc, true);
        Ok(())
    }

    fn compile_lookaround_inner(&mut self, inner: &Info<'_>, la: LookAround) -> Result<()> {
        if la == LookBehind || la == LookBehindNeg {
            if !inner.const_size {
                return Err(Error::CompileError(CompileError::LookBehindNotConst));
            }
            self.b.add(Insn::GoBack(inner.min_size));
        }
        self.visit(inner, false)
    }

    fn compile_delegates(&mut self, infos: &[Info<'_>]) -> Result<()> {
        if infos.is_empty() {
            return Ok(());
        }
        // TODO: might want to do something similar for case insensitive literals
        // (have is_literal return an additional bool for casei)
        if infos.iter().all(|e| e.is_literal()) {
            let mut val = String::new();
            for info in infos {
                info.push_literal(&mut val);
            }
            self.b.add(Insn::Lit(val));
            return Ok(());
        }

        let mut delegate_builder = DelegateBuilder::new();
        for info in infos {
            delegate_builder.push(info);
        }
        let delegate = delegate_builder.build(&self.options)?;

        self.b.add(delegate);
        Ok(())
    }

    fn compile_delegate(&mut self, info: &Info) -> Result<()> {
        let insn = if info.is_literal() {
            let mut val = String::new();
            info.push_literal(&mut val);
            Insn::Lit(val)
        } else {
            DelegateBuilder::new().push(info).build(&self.options)?
        };
        self.b.add(insn);
        Ok(())
    }
}

pub(crate) fn compile_inner(inner_re: &str, options: &RegexOptions) -> Result<Delegated> {
    compile_inner_with(inner_re, options, false)
}

pub(crate) fn compile_inner_with(inner_re: &str, options: &RegexOptions, anchored_only: bool) -> Result<Delegated> {
    // skillbook: a grammar's regexes share most of their delegates (671 distinct of 2,062 built on the shipped
    // content): each is built once per process and shared (a built regex is immutable and thread-safe).
    let key = format!(
        "{anchored_only} {} {:?} {:?} {:?} {inner_re}",
        options.ascii_form, options.syntaxc, options.delegate_size_limit, options.delegate_dfa_size_limit
    );
    if let Some(found) = built().lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(found);
    }
    let delegated = build_inner(inner_re, options, anchored_only)?;
    if let Ok(mut m) = built().lock() {
        if m.len() >= BUILT_MAX || BUILT_BYTES.load(Ordering::Relaxed) > BUILT_MAX_BYTES {
            m.clear();
            BUILT_BYTES.store(delegated.memory_usage(), Ordering::Relaxed);
        }
        m.insert(key, delegated.clone());
    }
    Ok(delegated)
}

/// skillbook: at most this many delegates are kept for sharing (syntect makes new patterns from the text it reads,
/// for the ends of here-documents and the like, so the set is not bounded by the grammars).
const BUILT_MAX: usize = 8192;

/// skillbook: the shared delegates are let go once the forms built since they were last let go hold more than this
/// (a delegate can hold megabytes: `h{60000}`; the `regex` fuzz target ran out of memory keeping 8,192 of them).
pub const BUILT_MAX_BYTES: usize = 64 << 20;

/// skillbook: the heap bytes of the delegate forms built since the shared delegates were last let go (counted when
/// each form is built, including the forms as written built later): every shared delegate was built since, so they
/// hold at most this (see `shared_delegate_bytes`).
static BUILT_BYTES: AtomicUsize = AtomicUsize::new(0);

/// skillbook: the heap bytes the shared delegates hold at most (see `BUILT_MAX_BYTES`); it stays under
/// `BUILT_MAX_BYTES` plus the largest single delegate.
pub fn shared_delegate_bytes() -> usize {
    BUILT_BYTES.load(Ordering::Relaxed)
}

fn built() -> &'static std::sync::Mutex<std::collections::HashMap<String, Delegated>> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Delegated>>> = OnceLock::new();
    BUILT.get_or_init(Default::default)
}

fn build_inner(inner_re: &str, options: &RegexOptions, anchored_only: bool) -> Result<Delegated> {
    // skillbook: no full DFA and no prefilter for delegates (see vendor/README.md).
    let mut config = RaConfig::new().dfa(false).auto_prefilter(false).hybrid(!anchored_only);
    if let Some(size_limit) = options.delegate_size_limit {
        config = config.nfa_size_limit(Some(size_limit));
    }
    if let Some(dfa_size_limit) = options.delegate_dfa_size_limit {
        config = config.dfa_size_limit(Some(dfa_size_limit));
    }

    // skillbook: the delegate with its classes cut to ASCII, built now; as written, built when a haystack needs it.
    // The ASCII form is read in byte mode (Unicode off, so `\w`, `\s`, `(?i)` are ASCII from the start and no
    // Unicode table is read), or where byte mode refuses the pattern (`\p{L}`), read as written and cut.
    let hir = if options.ascii_form {
        let bytes = options.syntaxc.unicode(false).utf8(false);
        regex_automata::util::syntax::parse_with(inner_re, &bytes)
            .ok()
            .or_else(|| {
                regex_automata::util::syntax::parse_with(inner_re, &options.syntaxc)
                    .ok()
                    .map(|hir| ascii_only(&hir))
            })
    } else {
        None
    };
    // skillbook: the ASCII form is built when a haystack first needs it (see `Delegated`); what rules haystacks out
    // without it is read from its HIR now.
    let (first, required, captures) = match &hir {
        Some(hir) => (
            first_bytes(hir),
            required(hir).map(Required::new),
            hir.properties().explicit_captures_len() + 1,
        ),
        None => (None, None, 0),
    };
    let state = DelegatedState {
        first,
        required,
        captures,
        ascii: OnceLock::new(),
        ascii_hir: hir,
        full: OnceLock::new(),
        pattern: inner_re.to_owned(),
        config,
        syntax: options.syntaxc,
    };
    if state.ascii_hir.is_none() {
        // The pattern as written gives the error (or is the only regex, if the ASCII form could not be read).
        let full = state.build_full().map_err(CompileError::InnerError).map_err(Error::CompileError)?;
        let _ = state.full.set(Ok(full));
    }
    Ok(Delegated(Arc::new(state)))
}

/// skillbook: a delegate regex built from one pattern in two forms. The ASCII form has every character class cut to
/// its ASCII members and Unicode word boundaries made ASCII ones; it is built with the delegate and used for every
/// haystack that is all ASCII (the highlighter's haystacks are lines of code, nearly always ASCII), built on the first
/// haystack that is all ASCII and that the checks of `may_match_from` do not rule out (a grammar has many patterns
/// that no line of a given text can match: most are never built). The form as written is built on the first haystack
/// that is not all ASCII. On an all-ASCII haystack the two match alike: a class can only
/// match a character of the haystack, a Unicode word boundary between ASCII characters (or the ends) is the ASCII one,
/// and case folding that reaches beyond ASCII (`k` to KELVIN SIGN) has nothing to reach. Building classes such as
/// `\w` and `\p{L}` as written (hundreds of UTF-8 ranges) was half of the regex compile time. If the form as written
/// fails to build when first needed (a size limit), the search reports the compile error. See vendor/README.md.
#[derive(Clone)]
pub struct Delegated(Arc<DelegatedState>);

struct DelegatedState {
    /// The ASCII form, once built (`None`: its build failed, and the form as written serves every haystack).
    ascii: OnceLock<Option<RaRegex>>,
    /// What the ASCII form is built from; `None` when the pattern has no ASCII form.
    ascii_hir: Option<Hir>,
    /// skillbook: the bytes a match of the ASCII form can start with (a bit per byte), when they are few enough to be
    /// worth checking: an ASCII haystack without one of them from the search's start has no match.
    first: Option<[u64; 4]>,
    /// skillbook: literals one of which every match of the ASCII form contains: an ASCII haystack without any of them
    /// from the search's start has no match.
    required: Option<Required>,
    /// The number of capture groups, group 0 included (the same in both forms).
    captures: usize,
    full: OnceLock<core::result::Result<RaRegex, RaBuildError>>,
    pattern: String,
    config: RaConfig,
    syntax: SyntaxConfig,
}

impl DelegatedState {
    fn build_ascii(&self) -> Option<RaRegex> {
        let re = RaBuilder::new().configure(self.config.clone()).build_from_hir(self.ascii_hir.as_ref()?).ok()?;
        BUILT_BYTES.fetch_add(re.memory_usage(), Ordering::Relaxed);
        Some(re)
    }

    fn build_full(&self) -> core::result::Result<RaRegex, RaBuildError> {
        let full = RaBuilder::new()
            .configure(self.config.clone())
            .syntax(self.syntax)
            .build(&self.pattern);
        if let Ok(re) = &full {
            BUILT_BYTES.fetch_add(re.memory_usage(), Ordering::Relaxed);
        }
        full
    }
}

impl Delegated {
    /// The form of the regex for a haystack that is (`ascii`) or is not all ASCII.
    pub(crate) fn form(&self, ascii: bool) -> Result<&RaRegex> {
        if ascii && self.0.ascii_hir.is_some() {
            if let Some(re) = self.0.ascii.get_or_init(|| self.0.build_ascii()) {
                return Ok(re);
            }
        }
        self.0
            .full
            .get_or_init(|| self.0.build_full())
            .as_ref()
            .map_err(|e| Error::CompileError(CompileError::InnerError(e.clone())))
    }

    /// skillbook: the heap bytes of the forms built so far.
    pub(crate) fn memory_usage(&self) -> usize {
        self.0.ascii.get().and_then(Option::as_ref).map_or(0, RaRegex::memory_usage)
            + self.0.full.get().and_then(|f| f.as_ref().ok()).map_or(0, RaRegex::memory_usage)
    }

    /// The form of the regex for `haystack`.
    pub(crate) fn regex(&self, haystack: &str) -> Result<&RaRegex> {
        self.form(haystack.is_ascii())
    }

    /// skillbook: whether a match may start at or after `pos` in `haystack`, judged by the bytes a match of the ASCII
    /// form starts with; `true` when that cannot tell (a haystack that is not all ASCII, a pattern whose matches may
    /// start with many bytes or be empty).
    pub(crate) fn may_match_from(&self, haystack: &str, pos: usize) -> bool {
        if self.0.first.is_none() && self.0.required.is_none() {
            return true;
        }
        let Some(rest) = haystack.as_bytes().get(pos..) else {
            return true;
        };
        if !haystack.is_ascii() {
            return true;
        }
        // The required literals first: a scan for at most three bytes is the quicker.
        if self.0.required.as_ref().is_some_and(|r| !r.found_in(rest)) {
            return false;
        }
        self.0
            .first
            .is_none_or(|first| rest.iter().any(|&b| first[usize::from(b >> 6)] & (1 << (b & 63)) != 0))
    }

    /// The number of capture groups (the same in both forms).
    pub(crate) fn captures_len(&self) -> usize {
        if self.0.ascii_hir.is_some() {
            return self.0.captures;
        }
        match self.0.full.get() {
            Some(Ok(re)) => re.captures_len(),
            // Not reached: without an ASCII form the form as written was built with the delegate.
            _ => 0,
        }
    }
}

impl core::fmt::Debug for Delegated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Delegated").field(&self.0.pattern).finish()
    }
}

/// skillbook: literals one of which every match contains, found with a scan for their first bytes.
struct Required {
    literals: Vec<Vec<u8>>,
    /// The literals' distinct first bytes.
    lead: Vec<u8>,
}

impl Required {
    fn new(literals: Vec<Vec<u8>>) -> Required {
        let mut lead: Vec<u8> = literals.iter().map(|l| l[0]).collect();
        lead.sort_unstable();
        lead.dedup();
        Required { literals, lead }
    }

    /// Whether one of the literals occurs in `text`.
    fn found_in(&self, text: &[u8]) -> bool {
        let at = |i: usize| self.literals.iter().any(|l| text[i..].starts_with(l));
        match *self.lead.as_slice() {
            [a] => memchr::memchr_iter(a, text).any(at),
            [a, b] => memchr::memchr2_iter(a, b, text).any(at),
            [a, b, c] => memchr::memchr3_iter(a, b, c, text).any(at),
            _ => (0..text.len()).any(|i| self.lead.contains(&text[i]) && at(i)),
        }
    }
}

/// skillbook: at most this many literals in a required set, and this many bytes in each (a prefix of a required
/// literal is required too).
const REQUIRED_MAX: usize = 16;
const REQUIRED_LEN: usize = 8;

/// skillbook: a set of non-empty literals one of which every match of `hir` contains, when one is known with at most
/// `REQUIRED_MAX` literals: a literal, a class of a few bytes, a repetition of at least one of either, an alternation
/// whose every branch has a set, and in a concatenation the best set of its parts, or of a run of its parts that
/// each match one of a few literals (the run's literals are their concatenations: `(?i:end)` in byte mode is
/// `[Ee][Nn][Dd]`, eight literals). The best set has the longest shortest literal.
fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => exact(hir),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => match exact(&r.sub) {
            // `x{3,}`: the literal `xxx`.
            Some(set) => {
                let mut run = set.clone();
                for _ in 1..r.min.min(REQUIRED_LEN as u32) {
                    match join(&run, &set) {
                        Some(longer) => run = longer,
                        None => break,
                    }
                }
                Some(run)
            }
            None => required(&r.sub),
        },
        HirKind::Concat(subs) => {
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut consider = |set: Option<Vec<Vec<u8>>>| {
                if let Some(set) = set {
                    if best.as_ref().is_none_or(|b| better(&set, b)) {
                        best = Some(set);
                    }
                }
            };
            let mut run: Option<Vec<Vec<u8>>> = None;
            for sub in subs {
                match exact(sub) {
                    Some(set) => {
                        run = Some(match run.take() {
                            None => set,
                            Some(r) => match join(&r, &set) {
                                Some(joined) => joined,
                                None => {
                                    consider(Some(r));
                                    set
                                }
                            },
                        })
                    }
                    None => {
                        consider(run.take());
                        consider(required(sub));
                    }
                }
            }
            consider(run);
            best
        }
        HirKind::Alternation(subs) => union(subs, required),
        _ => None,
    }
}

/// skillbook: the literals `hir` matches, when it matches exactly one of at most `REQUIRED_MAX` non-empty literals (a
/// literal, a class of at most four ASCII bytes, a group or concatenation or alternation of those), each cut to
/// `REQUIRED_LEN` bytes.
fn exact(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(l) if !l.0.is_empty() => Some(vec![l.0[..l.0.len().min(REQUIRED_LEN)].to_vec()]),
        HirKind::Class(Class::Bytes(c)) => {
            few_bytes(c.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))), 0xFF)
        }
        HirKind::Class(Class::Unicode(c)) => {
            few_bytes(c.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))), 0x7F)
        }
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Concat(subs) => {
            let mut run: Option<Vec<Vec<u8>>> = None;
            for sub in subs {
                let set = exact(sub)?;
                run = Some(match run {
                    None => set,
                    Some(r) => join(&r, &set)?,
                });
            }
            run
        }
        HirKind::Alternation(subs) => union(subs, exact),
        _ => None,
    }
}

/// skillbook: a class's members (inclusive ranges of bytes, or of code points one byte each up to `max`) as one-byte
/// literals, when they are at most four and none is above `max`.
fn few_bytes(ranges: impl Iterator<Item = (u32, u32)>, max: u32) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (lo, hi) in ranges {
        for c in lo..=hi {
            if out.len() == 4 || c > max {
                return None;
            }
            out.push(vec![c as u8]);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// skillbook: the sets `set` gives for every branch of an alternation, together; `None` when a branch has none or
/// there would be more than `REQUIRED_MAX` literals.
fn union(subs: &[Hir], set: fn(&Hir) -> Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    for sub in subs {
        all.extend(set(sub)?);
        if all.len() > REQUIRED_MAX {
            return None;
        }
    }
    all.sort();
    all.dedup();
    Some(all)
}

/// skillbook: every literal of `a` followed by every literal of `b`, each cut to `REQUIRED_LEN` bytes; `None` when
/// there would be more than `REQUIRED_MAX`. When every literal of `a` is full length already, `a` itself.
fn join(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.iter().all(|l| l.len() >= REQUIRED_LEN) {
        return Some(a.to_vec());
    }
    if a.len() * b.len() > REQUIRED_MAX {
        return None;
    }
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut l = x.clone();
            l.extend_from_slice(y);
            l.truncate(REQUIRED_LEN);
            out.push(l);
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// skillbook: whether required set `a` rules out more haystacks than `b`: a longer shortest literal, then fewer.
fn better(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let shortest = |s: &[Vec<u8>]| s.iter().map(Vec::len).min().unwrap_or(0);
    (shortest(a), core::cmp::Reverse(a.len())) > (shortest(b), core::cmp::Reverse(b.len()))
}

/// skillbook: the bytes any match of `hir` starts with, when no match is empty and they are at most 100 of the 256;
/// `None` otherwise (a scan for them would then save little).
fn first_bytes(hir: &Hir) -> Option<[u64; 4]> {
    let (set, nullable) = first_set(hir);
    let count: u32 = set.iter().map(|w| w.count_ones()).sum();
    (!nullable && count <= 100).then_some(set)
}

/// skillbook: the bytes a match of `hir` can start with, and whether it can match the empty string (look-arounds
/// match it). A class of characters beyond ASCII adds every byte above 0x7F.
fn first_set(hir: &Hir) -> ([u64; 4], bool) {
    let mut set = [0u64; 4];
    let mut add = |lo: u8, hi: u8| {
        for b in lo..=hi {
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    };
    let nullable = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => match l.0.first() {
            Some(&b) => {
                add(b, b);
                false
            }
            None => true,
        },
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                add(r.start(), r.end());
            }
            false
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if lo <= 0x7F {
                    add(lo as u8, hi.min(0x7F) as u8);
                }
                if hi > 0x7F {
                    add(0x80, 0xFF);
                }
            }
            false
        }
        HirKind::Repetition(r) => {
            let (sub, nullable) = first_set(&r.sub);
            set = sub;
            r.min == 0 || nullable
        }
        HirKind::Capture(c) => {
            let (sub, nullable) = first_set(&c.sub);
            set = sub;
            nullable
        }
        HirKind::Concat(subs) => {
            let mut nullable = true;
            for sub in subs {
                let (s, n) = first_set(sub);
                for (w, x) in set.iter_mut().zip(s) {
                    *w |= x;
                }
                if !n {
                    nullable = false;
                    break;
                }
            }
            nullable
        }
        HirKind::Alternation(subs) => {
            let mut nullable = false;
            for sub in subs {
                let (s, n) = first_set(sub);
                for (w, x) in set.iter_mut().zip(s) {
                    *w |= x;
                }
                nullable |= n;
            }
            nullable
        }
    };
    (set, nullable)
}

/// skillbook: `hir` with every class cut to its ASCII members and Unicode word boundaries made ASCII ones: on a
/// haystack that is all ASCII it matches exactly what `hir` matches.
fn ascii_only(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0.clone()),
        HirKind::Class(Class::Unicode(c)) => Hir::class(Class::Unicode(ClassUnicode::new(
            c.ranges()
                .iter()
                .take_while(|r| r.start() <= '\x7F')
                .map(|r| ClassUnicodeRange::new(r.start(), r.end().min('\x7F'))),
        ))),
        HirKind::Class(Class::Bytes(c)) => Hir::class(Class::Bytes(c.clone())),
        HirKind::Look(look) => Hir::look(match look {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => *other,
        }),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            sub: Box::new(ascii_only(&r.sub)),
            ..r.clone()
        }),
        HirKind::Capture(c) => Hir::capture(Capture {
            sub: Box::new(ascii_only(&c.sub)),
            ..c.clone()
        }),
        HirKind::Concat(v) => Hir::concat(v.iter().map(ascii_only).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(ascii_only).collect()),
    }
}

/// Compile the analyzed expressions into a program.
pub fn compile(info: &Info<'_>, anchored: bool) -> Result<Prog> {
    let mut c = Compiler::new(info.end_group);
    if !anchored {
        // add instructions as if \O*? was used at the start of the expression
        // so that we bump the haystack index by one when failing to match at the current position
        let current_pc = c.b.pc();
        // we are adding 3 instructions, so the current program counter plus 3 gives us the first real instruction
        c.b.add(Insn::Split(current_pc + 3, current_pc + 1));
        c.b.add(Insn::Any);
        c.b.add(Insn::Jmp(current_pc));
    }
    if info.start_group == 1 {
        // add implicit capture group 0 begin
        c.b.add(Insn::Save(0));
    }
    c.visit(info, false)?;
    if info.start_group == 1 {
        // add implicit capture group 0 end
        c.b.add(Insn::Save(1));
    }
    c.b.add(Insn::End);
    Ok(c.b.build())
}

struct DelegateBuilder {
    re: String,
    min_size: usize,
    const_size: bool,
    start_group: Option<usize>,
    end_group: usize,
}

impl DelegateBuilder {
    fn new() -> Self {
        Self {
            re: String::new(),
            min_size: 0,
            const_size: true,
            start_group: None,
            end_group: 0,
        }
    }

    fn push(&mut self, info: &Info<'_>) -> &mut DelegateBuilder {
        // TODO: might want to detect case of a group with no captures
        //  inside, so we can run find() instead of captures()

        self.min_size += info.min_size;
        self.const_size &= info.const_size;
        if self.start_group.is_none() {
            self.start_group = Some(info.start_group);
        }
        self.end_group = info.end_group;

        // Add expression. The precedence argument has to be 1 here to
        // ensure correct grouping in these cases:
        //
        // If we have multiple expressions, we are building a concat.
        // Without grouping, we'd turn ["a", "b|c"] into "^ab|c". But we
        // want "^a(?:b|c)".
        //
        // Even with a single expression, because we add `^` at the
        // beginning, we need a group. Otherwise `["a|b"]` would be turned
        // into `"^a|b"` instead of `"^(?:a|b)"`.
        info.expr.to_str(&mut self.re, 1);
        self
    }

    fn build(&self, options: &RegexOptions) -> Result<Insn> {
        let start_group = self.start_group.expect("Expected at least one expression");
        let end_group = self.end_group;

        let compiled = compile_inner_with(&self.re, options, true)?;

        Ok(Insn::Delegate(Delegate {
            inner: compiled,
            pattern: self.re.clone(),
            start_group,
            end_group,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyze;
    use crate::parse::ExprTree;
    use crate::vm::Insn::*;
    use alloc::vec;
    use bit_set::BitSet;
    use matches::assert_matches;

    #[test]
    fn jumps_for_alternation() {
        let tree = ExprTree {
            expr: Expr::Alt(vec![
                Expr::Literal {
                    val: "a".into(),
                    casei: false,
                },
                Expr::Literal {
                    val: "b".into(),
                    casei: false,
                },
                Expr::Literal {
                    val: "c".into(),
                    casei: false,
                },
            ]),
            backrefs: BitSet::new(),
            named_groups: Default::default(),
            contains_subroutines: false,
            self_recursive: false,
        };
        let info = analyze(&tree, false).unwrap();

        let mut c = Compiler::new(0);
        // Force "hard" so that compiler doesn't just delegate
        c.visit(&info, true).unwrap();
        c.b.add(Insn::End);

        let prog = c.b.prog;

        assert_eq!(prog.len(), 8, "prog: {:?}", prog);
        assert_matches!(prog[0], Split(1, 3));
        assert_matches!(prog[1], Lit(ref l) if l == "a");
        assert_matches!(prog[2], Jmp(7));
        assert_matches!(prog[3], Split(4, 6));
        assert_matches!(prog[4], Lit(ref l) if l == "b");
        assert_matches!(prog[5], Jmp(7));
        assert_matches!(prog[6], Lit(ref l) if l == "c");
        assert_matches!(prog[7], End);
    }

    #[cfg_attr(not(feature = "std"), ignore = "this test need std")]
    #[test]
    fn look_around_pattern_can_be_delegated() {
        let prog = compile_prog("(?=ab*)c");

        assert_eq!(prog.len(), 5, "prog: {:?}", prog);
        assert_matches!(prog[0], Save(0));
        assert_delegate(&prog[1], "ab*");
        assert_matches!(prog[2], Restore(0));
        assert_matches!(prog[3], Lit(ref l) if l == "c");
        assert_matches!(prog[4], End);
    }

    #[cfg_attr(not(feature = "std"), ignore = "this test need std")]
    #[test]
    fn easy_concat_can_delegate_end() {
        let prog = compile_prog("(?!x)(?:a|ab)x*");

        assert_eq!(prog.len(), 5, "prog: {:?}", prog);
        assert_matches!(prog[0], Split(1, 3));
        assert_matches!(prog[1], Lit(ref l) if l == "x");
        assert_matches!(prog[2], FailNegativeLookAround);
        assert_delegate(&prog[3], "(?:a|ab)x*");
        assert_matches!(prog[4], End);
    }

    #[cfg_attr(not(feature = "std"), ignore = "this test need std")]
    #[test]
    fn hard_concat_can_delegate_const_size_end() {
        let prog = compile_prog("(?:(?!x)(?:a|b)c)x*");

        assert_eq!(prog.len(), 6, "prog: {:?}", prog);
        assert_matches!(prog[0], Split(1, 3));
        assert_matches!(prog[1], Lit(ref l) if l == "x");
        assert_matches!(prog[2], FailNegativeLookAround);
        assert_delegate(&prog[3], "(?:a|b)c");
        assert_delegate(&prog[4], "x*");
        assert_matches!(prog[5], End);
    }

    #[cfg_attr(not(feature = "std"), ignore = "this test need std")]
    #[test]
    fn hard_concat_can_not_delegate_variable_end() {
        let prog = compile_prog("(?:(?!x)(?:a|ab))x*");

        assert_eq!(prog.len(), 9, "prog: {:?}", prog);
        assert_matches!(prog[0], Split(1, 3));
        assert_matches!(prog[1], Lit(ref l) if l == "x");
        assert_matches!(prog[2], FailNegativeLookAround);
        assert_matches!(prog[3], Split(4, 6));
        assert_matches!(prog[4], Lit(ref l) if l == "a");
        assert_matches!(prog[5], Jmp(7));
        assert_matches!(prog[6], Lit(ref l) if l == "ab");
        assert_delegate(&prog[7], "x*");
        assert_matches!(prog[8], End);
    }

    #[test]
    fn conditional_expression_can_be_compiled() {
        let prog = compile_prog(r"(?(ab)c|d)");

        assert_eq!(prog.len(), 8, "prog: {:?}", prog);

        assert_matches!(prog[0], BeginAtomic);
        assert_matches!(prog[1], Split(2, 6));
        assert_matches!(prog[2], Lit(ref l) if l == "ab");
        assert_matches!(prog[3], EndAtomic);
        assert_matches!(prog[4], Lit(ref l) if l == "c");
        assert_matches!(prog[5], Jmp(7));
        assert_matches!(prog[6], Lit(ref l) if l == "d");
        assert_matches!(prog[7], End);
    }

    #[test]
    fn lazy_any_can_be_compiled_explicit_capture_group_zero() {
        let prog = compile_prog(r"\O*?((?!a))");

        assert_eq!(prog.len(), 9, "prog: {:?}", prog);

        assert_matches!(prog[0], Split(3, 1));
        assert_matches!(prog[1], Any);
        assert_matches!(prog[2], Jmp(0));
        assert_matches!(prog[3], Save(0));
        assert_matches!(prog[4], Split(5, 7));
        assert_matches!(prog[5], Lit(ref l) if l == "a");
        assert_matches!(prog[6], FailNegativeLookAround);
        assert_matches!(prog[7], Save(1));
        assert_matches!(prog[8], End);
    }

    fn compile_prog(re: &str) -> Vec<Insn> {
        let tree = Expr::parse_tree(re).unwrap();
        let info = analyze(&tree, true).unwrap();
        let prog = compile(&info, true).unwrap();
        prog.body
    }

    #[cfg(feature = "std")]
    fn assert_delegate(insn: &Insn, re: &str) {
        use crate::vm::Delegate;

        match insn {
            // skillbook: a `Delegated` keeps its pattern, so no global map of patterns is needed.
            Insn::Delegate(Delegate { inner, .. }) => {
                assert_eq!(inner.0.pattern, re);
            }
            _ => {
                panic!("Expected Insn::Delegate but was {:#?}", insn);
            }
        }
    }

    #[cfg(not(feature = "std"))]
    fn assert_delegate(_: &Insn, _: &str) {}
}
