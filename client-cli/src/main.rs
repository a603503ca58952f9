//! `oathkey`: the command-line client of oathkeyd.
//!
//! # Layout
//! - `cli`: the command line (clap), also the source of man pages and completions; `Hash` is
//!   clap's spelling of the one hash type (`oathkey-otp`'s, through the protocol).
//! - `commands`: one function per command; text or `--json` output.
//! - `demo`: the self-contained demo on a virtual key.
//! - `entra`: `oathkey entra`, Microsoft Entra ID through Graph (sign-in, upload, status).
//! - `exit`: exit codes (documented in docs/exit-codes.md).
//! - `out`: standard output that ends quietly on a closed pipe.
//! - `output`: output files checked before work that cannot be undone; private standard output.
//! - `provision`: the seed-one-key-per-user loop.
//! - `seeds`: export, the ledger, seed-file checks and activation checks.
//! - `table`: aligned text tables.

mod cli;
mod commands;
mod demo;
mod entra;
mod exit;
mod out;
mod output;
mod provision;
mod secret_input;
mod seeds;
mod table;

use std::process::ExitCode;

use clap::Parser;

/// Man pages (one per subcommand) and bash, zsh and fish completions, from the clap definition.
fn assets(dir: &std::path::Path) -> Result<(), exit::Failure> {
    use clap::CommandFactory;
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
    }
    let mut cmd = cli::Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man).map_err(|e| anyhow::anyhow!("man pages: {e}"))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "oathkey", &completions)
            .map_err(|e| anyhow::anyhow!("{shell} completions: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // --at is global (so it can go anywhere on the line), but only these commands compute codes.
    if cli.at.is_some()
        && !matches!(
            cli.command,
            cli::Command::Code { .. } | cli::Command::Codes { .. } | cli::Command::Activate(_)
        )
    {
        eprintln!("oathkey: --at applies only to code, codes and activate");
        return exit::Failure::usage("").exit_code();
    }
    let result = match &cli.command {
        cli::Command::Demo { periods } => demo::run(*periods, cli.json),
        cli::Command::GenerateAssets { dir } => assets(dir),
        cli::Command::Seedfile(cli::SeedfileCommand::Check {
            file,
            target,
            format,
        }) => seeds::check(file, *target, *format, cli.json),
        cli::Command::Activate(args) => seeds::activate(args, cli.at, cli.json),
        cli::Command::Entra(cmd) => entra::run(&cli, cmd),
        _ => commands::run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("oathkey: {}", failure.message);
            failure.exit_code()
        }
    }
}
