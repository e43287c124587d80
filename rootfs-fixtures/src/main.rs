//! `berth-fixtures`: writes a busybox rootfs or an OCI bundle to a directory, for
//! benchmark scripts and demos.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_fixtures::{busybox_rootfs, cached_busybox_rootfs, Bundle, FixtureError};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth-fixtures", about = "Build busybox test fixtures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write an OCI bundle (rootfs/ and config.json) into DIR.
    Bundle {
        /// The bundle directory (created if missing).
        dir: PathBuf,
        /// The container's process; defaults to `sh`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Write a busybox rootfs into DIR.
    Rootfs {
        /// The rootfs directory (created if missing; must be empty).
        dir: PathBuf,
    },
    /// Print the path of the machine's shared, read-only busybox rootfs.
    CachedRootfs,
}

fn run(cli: Cli) -> Result<(), FixtureError> {
    match cli.command {
        Command::Bundle { dir, args } => {
            let args: Vec<&str> = if args.is_empty() {
                vec!["sh"]
            } else {
                args.iter().map(String::as_str).collect()
            };
            let bundle = Bundle::new(&dir, &args)?;
            println!("{}", bundle.dir().display());
        }
        Command::Rootfs { dir } => {
            busybox_rootfs(&dir)?;
            println!("{}", dir.display());
        }
        Command::CachedRootfs => println!("{}", cached_busybox_rootfs()?.display()),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth-fixtures: {error}");
            ExitCode::FAILURE
        }
    }
}
