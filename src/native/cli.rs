//! Argument parsing and dispatch for the `smtp-lab` command.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// SMTP Lab: watch e-mail travel, and talk real SMTP with the same engines.
#[derive(Debug, Parser)]
#[command(name = "smtp-lab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {}
}
