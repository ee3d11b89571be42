//! Driver: runs the pipeline (load, parse, expand, check, emit, write) for the commands, and decides exit codes.

use crate::check::{self, Report};
use crate::config::{self, Config};
use crate::diagnostic::Style;
use crate::emit::bundle::{BundleError, Bundler, Layout, ManifestBundle, Templates, TokenizerInfo};
use crate::emit::{self, report::display_path};
use crate::engine::{self, Engine, Outcome, Plan};
use crate::parse::Model;
use crate::tokenize::Tokenizer;
use crate::write::OutputTree;
use crate::Exit;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

/// Options shared by the commands.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub root: Option<PathBuf>,
    /// The command's name, for suggestions in messages (`skillbook build PATH`); empty means `check`.
    pub command: &'static str,
    pub quiet: bool,
    /// `None`: colour when writing to a terminal and `NO_COLOR` is unset.
    pub color: Option<bool>,
}

impl Options {
    /// How diagnostics are coloured when written to a terminal (`terminal`) or not.
    pub fn style(&self, terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: self.color.unwrap_or(terminal && !no_color),
        }
    }

    fn progress(&self) -> ProgressBar {
        if self.quiet || !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// The content, loaded, parsed and checked.
pub struct Compiled {
    pub config: Config,
    pub model: Model,
    pub report: Report,
}

impl Compiled {
    /// The content root as diagnostics show it.
    pub fn root_display(&self) -> String {
        self.config
            .content_root
            .to_string_lossy()
            .replace('\\', "/")
    }
}

/// Loads, parses and checks the content a configuration names. Only an unreadable root is an `Err`.
pub fn compile(config: Config, progress: &ProgressBar) -> io::Result<Compiled> {
    engine::compile(config, progress)
}

/// Everything `build` writes, in memory, and the bundles that could not be made (agent, why): the engine's outputs
/// with every memo empty.
pub fn outputs(compiled: &Compiled) -> Result<(OutputTree, Vec<(String, BundleError)>), String> {
    engine::outputs_of(compiled)
}

/// Writes to stdout; a closed pipe (`skillbook check | head`) is not an error.
fn print_stdout(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn usage_error(msg: impl std::fmt::Display) -> Exit {
    eprintln!("skillbook: error: {msg}");
    Exit::Failure
}

fn resolve(opts: &Options) -> Result<Config, Exit> {
    config::resolve_for(opts.root.as_deref(), opts.command).map_err(usage_error)
}

fn exit_for(report: &Report) -> Exit {
    if report.diagnostics.iter().any(|d| d.code == "io-error") {
        Exit::Failure
    } else if report.summary.errors > 0 {
        Exit::ContentErrors
    } else {
        Exit::Success
    }
}

/// Resolves the configuration and compiles its content with a progress display, which it hands back still running;
/// a usage or I/O failure becomes its exit code, already reported.
fn compile_for(opts: &Options) -> Result<(Compiled, ProgressBar), Exit> {
    let config = resolve(opts)?;
    let progress = opts.progress();
    match compile(config, &progress) {
        Ok(c) => Ok((c, progress)),
        Err(e) => {
            progress.finish_and_clear();
            Err(usage_error(e))
        }
    }
}

/// `skillbook check`: prints the report and exits 0 (clean or warnings), 1 (content errors) or 2.
pub fn check(opts: &Options, format: Format) -> Exit {
    let (compiled, progress) = match compile_for(opts) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    progress.finish_and_clear();
    let text = match format {
        Format::Json => emit::report::json(&compiled.report, &compiled.root_display()),
        Format::Sarif => emit::sarif::sarif(&compiled.report, &compiled.root_display()),
        Format::Human => emit::report::human(
            &compiled.report,
            &compiled.root_display(),
            opts.style(io::stdout().is_terminal()),
        ),
    };
    if let Err(e) = print_stdout(&text) {
        return usage_error(e);
    }
    exit_for(&compiled.report)
}

/// `skillbook build`: checks, and unless the content has breakage (errors that make an output wrong) writes every
/// output to `out` atomically; gaps (an uncovered item, an unknown skill) are written, shown on the site, and exit 1.
/// It is one build of a fresh [`Engine`], the same build the watch loop runs on every save.
pub fn build(opts: &Options, out: &Path) -> Exit {
    let progress = opts.progress();
    let mut engine = Engine::new(opts.root.clone(), out.to_path_buf())
        .for_command(opts.command)
        .once(true)
        .delete_previous_later(true)
        .with_progress(progress.clone());
    let outcome = engine.build(&Plan::everything());
    progress.finish_and_clear();
    let exit = report_build(opts, out, &engine, outcome);
    // The process ends now: its memory goes with it, without freeing the model and the memo value by value (a tenth
    // of a second at 300 agents). The previous output is being deleted meanwhile; that is waited for.
    std::mem::forget(engine);
    crate::write::finish_cleanup();
    exit
}

/// Prints what a build found and made, and says how the process exits.
fn report_build(opts: &Options, out: &Path, engine: &Engine, outcome: Outcome) -> Exit {
    let style = opts.style(io::stderr().is_terminal());
    let root = engine.root_display();
    match (outcome, engine.compiled()) {
        (Outcome::Built(b), Some(compiled)) => {
            let report = &compiled.report;
            for d in &report.diagnostics {
                if d.is_error() || !opts.quiet {
                    eprint!(
                        "{}",
                        crate::diagnostic::render_human(d, &display_path(&root, &d.path), style)
                    );
                }
            }
            if !opts.quiet {
                for (agent, e) in &b.skipped_bundles {
                    eprint!("{}", skipped_bundle(agent, e, &compiled.config));
                }
            }
            let warnings = plural(b.warnings + b.skipped_bundles.len(), "warning");
            let errors = report.summary.errors;
            if errors > 0 {
                // Only gaps are left: every output is correct as far as it goes, so it was written, and the gaps
                // are shown on the site and in report.json; the exit code still says there are errors.
                eprintln!(
                    "built {} into {} with {} ({warnings}): the site and report.json show them",
                    plural(b.files, "file"),
                    out.display(),
                    plural(errors, "gap"),
                );
            } else if !opts.quiet {
                eprintln!(
                    "built {} into {} ({warnings})",
                    plural(b.files, "file"),
                    out.display(),
                );
            }
            exit_for(report)
        }
        (Outcome::Failed(f), compiled) => match (f.message, compiled) {
            (Some(m), _) => usage_error(m),
            (None, Some(c)) => {
                eprint!("{}", emit::report::human(&c.report, &root, style));
                eprintln!(
                    "skillbook: build failed; {} was left as it was",
                    out.display()
                );
                exit_for(&c.report)
            }
            (None, None) => usage_error("the build failed"),
        },
        // A first build always compiles and builds.
        _ => Exit::Success,
    }
}

/// `1 file`, `2 files`.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The warning `build` prints for a bundle it could not make, with the fix where `build` takes its budgets from.
pub fn skipped_bundle(agent: &str, e: &BundleError, config: &Config) -> String {
    let mut s = format!("skillbook: warning: no bundle for `{agent}`: {e}\n");
    if let BundleError::TooSmall { minimum, .. } = e {
        let book = match config.book_dir() {
            Some(d) => format!("in {}", config::clean(&d.join("book.toml")).display()),
            None => "in a book.toml".to_string(),
        };
        s.push_str(&format!(
            "  = help: raise the budgets under [preprocessor.skillbook] {book} to at least {minimum}: `budgets = [{}]`\n",
            suggested_budgets(&config.budgets, *minimum)
        ));
    }
    s
}

/// The configured budgets with those below `minimum` raised to it, deduplicated, as book.toml would list them.
fn suggested_budgets(budgets: &[u32], minimum: usize) -> String {
    let mut b: Vec<usize> = budgets.iter().map(|&b| (b as usize).max(minimum)).collect();
    b.sort_unstable();
    b.dedup();
    b.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `skillbook bundle` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    Markdown,
    Xml,
    Json,
}

/// Options of `skillbook bundle`.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    pub agent: String,
    pub budget: Option<usize>,
    pub tokenizer: Option<Tokenizer>,
    pub format: BundleFormat,
    pub output: Option<PathBuf>,
    /// `--for TEXT`: rank the patterns by relevance to this task before priority.
    pub task: Option<String>,
}

/// `skillbook bundle`: one agent's bundle for one budget, to stdout or a file. Exit 1 when the agent's own text does
/// not fit the budget or the content has errors; 2 for an unknown agent or a broken template.
pub fn bundle(opts: &Options, b: &BundleOptions) -> Exit {
    // `skillbook bundle ROOT AGENT`: the arguments the other way round.
    if let Some(root) = &opts.root {
        if !root.exists() && Path::new(&b.agent).is_dir() {
            return usage_error(format!(
                "{}: no such directory\n  = help: the agent comes first: `skillbook bundle {} {}`",
                root.display(),
                root.display(),
                b.agent
            ));
        }
    }
    if let Some(task) = &b.task {
        if let Err(e) = emit::bundle::rank::check_task(task) {
            return usage_error(format!(
                "--for: {e}\n  = help: describe the task in a few words, e.g. --for \"a Horde registry lost names after a netsplit\""
            ));
        }
    }
    let (compiled, progress) = match compile_for(opts) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    progress.finish_and_clear();
    let exit = exit_for(&compiled.report);
    if exit != Exit::Success {
        // Gaps still make a correct bundle (it holds what is covered); breakage does not.
        let style = opts.style(io::stderr().is_terminal());
        eprint!(
            "{}",
            emit::report::human(&compiled.report, &compiled.root_display(), style)
        );
        if exit == Exit::Failure || crate::diagnostic::has_breakage(&compiled.report.diagnostics) {
            return exit;
        }
    }
    let model = &compiled.model;
    let found = model.plugins.iter().enumerate().find_map(|(pi, p)| {
        p.agents
            .iter()
            .find(|a| {
                a.name == b.agent || p.display(&a.name) == b.agent || a.doc.file.stem() == b.agent
            })
            .map(|a| (pi, a))
    });
    let Some((pi, agent)) = found else {
        let names: Vec<String> = model
            .plugins
            .iter()
            .flat_map(|p| p.agents.iter().map(move |a| p.display(&a.name)))
            .collect();
        let hint = match check::did_you_mean(&b.agent, &names) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; agents: {}", names.join(", ")),
        };
        return usage_error(format!("no agent named `{}`{hint}", b.agent));
    };
    let templates = match Templates::new(&compiled.config.templates) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let tokenizer = b.tokenizer.unwrap_or(compiled.config.tokenizer);
    let layout = match b.format {
        BundleFormat::Xml => Layout::Xml,
        _ => Layout::Markdown,
    };
    let budget = b.budget.unwrap_or_else(|| {
        compiled
            .config
            .budgets
            .iter()
            .copied()
            .max()
            .unwrap_or(8000) as usize
    });
    let bundler = Bundler::new(model, &templates, tokenizer, layout);
    let result = bundler
        .bundles_for(pi, agent, &[budget], b.task.as_deref())
        .remove(0);
    let text = match (&result, b.format) {
        (Err(BundleError::Template(e)), _) => return usage_error(e),
        // JSON is printed for a budget that does not fit too, with its `error`, as build's manifest records it.
        (_, BundleFormat::Json) => {
            let plugin = &model.plugins[pi];
            let manifest = emit::bundle::Manifest {
                schema_version: emit::bundle::MANIFEST_SCHEMA_VERSION,
                agent: plugin.display(&agent.name),
                plugin: plugin.name.clone(),
                tokenizer: TokenizerInfo::of(tokenizer),
                format: layout.name(),
                bundles: vec![ManifestBundle::of(budget, &result, None)],
                compiled: None,
            };
            manifest.to_json(result.as_ref().ok().map(|b| b.text.as_str()))
        }
        (Err(e), _) => {
            bundle_error(&b.agent, e);
            return Exit::ContentErrors;
        }
        (Ok(bundle), _) => bundle.text.clone(),
    };
    if let Ok(bundle) = &result {
        if !opts.quiet && b.format != BundleFormat::Json {
            eprintln!("{}", bundle_account(bundle, tokenizer));
        }
    }
    let written = match &b.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => print_stdout(&text).map_err(|e| e.to_string()),
    };
    match (written, &result) {
        (Err(e), _) => usage_error(e),
        (Ok(()), Err(e)) => {
            bundle_error(&b.agent, e);
            Exit::ContentErrors
        }
        // With gaps only the bundle is made (it holds what is covered), and the exit code still says there are errors.
        (Ok(()), Ok(_)) => exit,
    }
}

/// The error `bundle` prints for a bundle it cannot make.
fn bundle_error(agent: &str, e: &BundleError) {
    let help = match e {
        BundleError::TooSmall { minimum, .. } => {
            format!("\n  = help: raise --budget to at least {minimum}")
        }
        BundleError::Template(_) | BundleError::Task(_) => String::new(),
    };
    eprintln!("skillbook: error: bundle for `{agent}`: {e}{help}");
}

/// The one-line account `bundle` prints on stderr: tokens, and how many patterns went in full, as summaries, or not
/// at all.
pub fn bundle_account(bundle: &emit::bundle::Bundle, tokenizer: Tokenizer) -> String {
    use crate::expand::Form;
    let count = |form: Form| bundle.patterns.iter().filter(|p| p.form == form).count();
    let estimate = if tokenizer.exact() {
        ""
    } else {
        " (an estimate)"
    };
    let (full, partial, summary, omit) = (
        count(Form::Full),
        count(Form::Partial),
        count(Form::Summary),
        count(Form::Omit),
    );
    let mut s = format!(
        "{} tokens{estimate} of {} ({}): {} in full, {partial} in part, {summary} as {}, {omit} left out",
        bundle.tokens,
        bundle.budget,
        tokenizer.name(),
        plural(full, "pattern"),
        if summary == 1 {
            "a summary"
        } else {
            "summaries"
        },
    );
    if omit > 0 && full + partial + summary == 0 {
        s.push_str(" (the budget holds the agent's own text only)");
    }
    s
}
