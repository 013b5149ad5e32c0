//! `cav`: the classify-audio-video daemon and its command-line tools.

mod api;
mod classifier;
mod cli;
mod config;
mod config_file;
mod daemon;
mod hearing;
mod labels;
mod logging;
mod offline;
mod sources;
mod systemd;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => daemon::run(cli.config.as_deref(), cli.log_format),
        Command::CheckConfig { path } => {
            cli::check_config(path.as_deref().or(cli.config.as_deref()))
        }
        Command::Devices => cli::devices(),
        Command::Analyze(args) => offline::analyze(&args, cli.config.as_deref()),
        Command::Eval(args) => labels::eval(&args, cli.config.as_deref()),
        Command::Train(args) => labels::train(&args, cli.config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
