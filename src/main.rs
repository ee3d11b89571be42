//! The `skillbook` command line: parses arguments and calls the library.

use clap::{Parser, Subcommand, ValueEnum};
use skillbook::driver::{self, BundleFormat, BundleOptions, Format, Options};
use skillbook::tokenize::Tokenizer;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "skillbook",
    version,
    about = "Compile Claude Code plugin content (agents, skills, pattern files) into a documentation site, \
             token-budgeted prompt bundles and a compiled plugin with every stub expanded, and check that every \
             expertise item an agent claims is covered",
    after_help = "ROOT is a plugin (agents/, skills/, commands/ or .claude-plugin/plugin.json), a marketplace \
                  (.claude-plugin/marketplace.json), or a folder whose book.toml names the content in \
                  [preprocessor.skillbook]. Without ROOT: ./book.toml's content, else the current directory."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print nothing but results and errors (no progress).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
    /// SARIF 2.1.0, for code-scanning tools (GitHub code scanning and others).
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum BundleFormatArg {
    Markdown,
    Xml,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check coverage, references and spec limits; print diagnostics.
    Check {
        /// A plugin, a marketplace, or a folder whose book.toml names the content [default: ./book.toml's
        /// content, else the current directory]
        root: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Write a new agent, skill or pattern file from the content guide's outline; never overwrites a file.
    New {
        #[command(subcommand)]
        what: NewCommand,
    },
    /// Print one agent's prompt bundle for a token budget (or its manifest with --format json).
    Bundle {
        /// The agent: its `name`, `plugin:agent` in a marketplace, or its file's stem (NAME for agents/NAME.md).
        agent: String,
        /// A plugin, a marketplace, or a folder whose book.toml names the content [default: ./book.toml's
        /// content, else the current directory]
        root: Option<PathBuf>,
        /// Token budget (default: the largest configured budget).
        #[arg(short, long)]
        budget: Option<usize>,
        /// How to count tokens (default: the configured tokenizer, o200k).
        #[arg(short, long, value_enum)]
        tokenizer: Option<Tokenizer>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = BundleFormatArg::Markdown)]
        format: BundleFormatArg,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Rank the patterns by relevance to this task (BM25, any language) before priority: the most relevant go
        /// in full first.
        #[arg(long = "for", value_name = "TEXT")]
        task: Option<String>,
    },
    /// Check, then write the documentation site, the compiled plugin, the prompt bundles and report.json to the
    /// output directory (build/ next to the content's book.toml, or in ROOT).
    Build {
        /// A plugin, a marketplace, or a folder whose book.toml names the content [default: ./book.toml's
        /// content, else the current directory]
        root: Option<PathBuf>,
        /// Output directory [default: build/ in ROOT, or in the current directory]. Replaced whole and atomically,
        /// and only when it is empty or skillbook wrote it (it has a .skillbook-output file): any other directory
        /// is refused.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Build, then rebuild on every change to the content, theme/ or book.toml until Ctrl-C.
    Watch {
        /// A plugin, a marketplace, or a folder whose book.toml names the content [default: ./book.toml's
        /// content, else the current directory]
        root: Option<PathBuf>,
        /// Output directory [default: build/ in ROOT, or in the current directory]. Replaced whole and atomically,
        /// and only when it is empty or skillbook wrote it (it has a .skillbook-output file): any other directory
        /// is refused.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Watch, and serve the site with live reload (and the errors of a failed build over the page).
    Serve {
        /// A plugin, a marketplace, or a folder whose book.toml names the content [default: ./book.toml's
        /// content, else the current directory]
        root: Option<PathBuf>,
        /// Port to listen on (0 picks a free one).
        #[arg(short, long, default_value_t = 3000)]
        port: u16,
        /// Address to listen on; anything but a loopback address lets other machines read the site.
        #[arg(short, long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Open the site in the default browser after the first build.
        #[arg(long)]
        open: bool,
        /// Output directory [default: build/ in ROOT, or in the current directory]. Replaced whole and atomically,
        /// and only when it is empty or skillbook wrote it (it has a .skillbook-output file): any other directory
        /// is refused.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The output directory: `--out`, else `build/` in ROOT (beside its book.toml, as mdBook writes `book/`), else
/// `./build`.
fn out_dir(out: Option<PathBuf>, root: &Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| match root {
        Some(r) if r.as_os_str() != "." => r.join("build"),
        _ => PathBuf::from("build"),
    })
}

#[derive(Subcommand)]
enum NewCommand {
    /// agents/NAME.md: frontmatter, a heading, and commented outlines of its expertise and responsibilities.
    Agent {
        /// The agent's name: lowercase letters, digits and hyphens.
        name: String,
        /// A plugin, a marketplace, or a directory whose book.toml names the content (default: ./book.toml's).
        root: Option<PathBuf>,
        /// The skill the agent refers to (`skills: [SKILL]`); the agent then gets a stub expanded from its patterns.
        #[arg(long)]
        skill: Option<String>,
    },
    /// skills/NAME/SKILL.md: name, description and a stub where the pattern index goes.
    Skill {
        /// The skill's name (and folder): lowercase letters, digits and hyphens.
        name: String,
        /// A plugin, a marketplace, or a directory whose book.toml names the content (default: ./book.toml's).
        root: Option<PathBuf>,
    },
    /// skills/SKILL/patterns/<title>.md with the content guide's six parts.
    Pattern {
        /// The skill the pattern belongs to.
        skill: String,
        /// The pattern's title.
        title: String,
        /// A plugin, a marketplace, or a directory whose book.toml names the content (default: ./book.toml's).
        root: Option<PathBuf>,
        /// The expertise items (or responsibilities) it covers, as the skill's agents write them.
        #[arg(long, num_args = 1.., required = true)]
        covers: Vec<String>,
    },
}

/// mimalloc rather than glibc's allocator: fewer instructions per allocation, and it does not grow the heap of each
/// thread a page at a time (README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    skillbook::timing::process_start();
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Auto => None,
        Color::Always => Some(true),
        Color::Never => Some(false),
    };
    let exit = match cli.command {
        Command::Check { root, format } => {
            let opts = Options {
                root,
                command: "check",
                quiet: cli.quiet,
                color,
            };
            let format = match format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
                FormatArg::Sarif => Format::Sarif,
            };
            driver::check(&opts, format)
        }
        Command::New { what } => {
            use skillbook::scaffold::New;
            let (root, what) = match what {
                NewCommand::Agent { name, root, skill } => (root, New::Agent { name, skill }),
                NewCommand::Skill { name, root } => (root, New::Skill { name }),
                NewCommand::Pattern {
                    skill,
                    title,
                    root,
                    covers,
                } => (
                    root,
                    New::Pattern {
                        skill,
                        title,
                        covers,
                    },
                ),
            };
            skillbook::scaffold::run(root.as_deref(), &what)
        }
        Command::Bundle {
            agent,
            root,
            budget,
            tokenizer,
            format,
            output,
            task,
        } => {
            let opts = Options {
                root,
                command: "bundle",
                quiet: cli.quiet,
                color,
            };
            let format = match format {
                BundleFormatArg::Markdown => BundleFormat::Markdown,
                BundleFormatArg::Xml => BundleFormat::Xml,
                BundleFormatArg::Json => BundleFormat::Json,
            };
            let b = BundleOptions {
                agent,
                budget,
                tokenizer,
                format,
                output,
                task,
            };
            driver::bundle(&opts, &b)
        }
        Command::Build { root, out } => {
            let opts = Options {
                root,
                command: "build",
                quiet: cli.quiet,
                color,
            };
            let out = out_dir(out, &opts.root);
            driver::build(&opts, &out)
        }
        Command::Watch { root, out } => {
            let opts = Options {
                root,
                command: "watch",
                quiet: cli.quiet,
                color,
            };
            let out = out_dir(out, &opts.root);
            skillbook::watch::run(&opts, &out, &mut |_| {}, &mut || {})
        }
        Command::Serve {
            root,
            port,
            bind,
            open,
            out,
        } => {
            let opts = Options {
                root,
                command: "serve",
                quiet: cli.quiet,
                color,
            };
            let serve = skillbook::serve::ServeOptions { bind, port, open };
            let out = out_dir(out, &opts.root);
            skillbook::serve::run(&opts, &out, &serve)
        }
    };
    exit_now(exit as u8)
}

/// Ends the process with `code` once the standard streams are flushed, without the exit-time work of the C runtime:
/// mimalloc's destructor gives each freed segment back to the kernel one `madvise` at a time (135 calls after a
/// build of the shipped content, about 4 ms of its 70), for memory the kernel takes back whole a moment later.
/// Everything skillbook owns is done by now: outputs are renamed into place, threads joined, temporary folders gone.
fn exit_now(code: u8) -> ! {
    use std::io::Write;
    // A closed pipe or a full disk cannot be reported any more; the exit code says how the command went.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; nothing runs after it.
    unsafe { libc::_exit(i32::from(code)) }
}
