//! Secrets the user gives the CLI (access codes): from the terminal without echo, or from the
//! first line of a file. Never from the command line, where `ps`, other users and shell
//! histories see them. Held in a zeroizing buffer and sent to the daemon only.

use std::io::IsTerminal;
use std::path::Path;

use oathkey_protocol::SecretText;
use zeroize::Zeroizing;

use crate::exit::Failure;

/// The secret from `file` (its first line), else asked on the terminal with `prompt` (twice
/// when `confirm`).
pub fn read(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<SecretText, Failure> {
    let text = match file {
        Some(path) => {
            let all = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the access code from {}: {e}",
                    path.display()
                ))
            })?);
            Zeroizing::new(all.lines().next().unwrap_or_default().to_string())
        }
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::usage(
                    "no terminal to ask for the access code: give it with --code-file FILE",
                ));
            }
            let first = Zeroizing::new(
                rpassword::prompt_password(prompt)
                    .map_err(|e| Failure::usage(format!("cannot read the access code: {e}")))?,
            );
            if confirm {
                let again =
                    Zeroizing::new(rpassword::prompt_password("Again: ").map_err(|e| {
                        Failure::usage(format!("cannot read the access code: {e}"))
                    })?);
                if *again != *first {
                    return Err(Failure::usage(
                        "the two access codes differ; nothing changed",
                    ));
                }
            }
            first
        }
    };
    if text.is_empty() {
        return Err(Failure::usage("the access code is empty"));
    }
    Ok(SecretText::new(text.to_string()))
}
