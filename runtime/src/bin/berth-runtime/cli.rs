//! The command line, shaped like runc's so that shims and podman can drive it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth's OCI runtime (runc-compatible command line).
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"))]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = berth_runtime::StateRoot::DEFAULT)]
    pub root: PathBuf,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the --log file.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility: systemd-style cgroupsPath values are always understood.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How the --log file is written.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// `time="..." level=error msg="..."`
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`
    Json,
}

/// Options shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility (no session keyring is created).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass fds 3..3+N to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// Container id.
        id: String,
    },
    /// Create, start and wait for a container; exits with its exit code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Container id.
        id: String,
        /// Arguments for ps(1) (table format).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only print ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json.
    Spec {
        /// Directory to write it in.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Accepted for compatibility.
        #[arg(long)]
        rootless: bool,
    },
}

/// `ps` and `list` output formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// JSON.
    Json,
}

/// `exec` options.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Return once the process is started.
    #[arg(short, long)]
    pub detach: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// A process.json describing the process (overrides the other options).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// File to write the pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Extra environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Extra capabilities.
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass fds 3..3+N to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
