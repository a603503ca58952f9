//! Seeds: export from the daemon's ledger, list and purge it, check seed files, and check an
//! activation code against a file.

use crate::out::{out, outln};
use std::path::Path;

use oathkey_protocol::types::{PurgeParams, SeedInfo, SeedRecord, SeedsParams, method};
use oathkey_seedfile::export::{ExportError, Labels};
use oathkey_seedfile::{Format, Target, TokenRecord, WriteMode};
use serde_json::Value;

use crate::cli::{ActivateArgs, ExportArgs, FormatArg, SeedsCommand, TargetArg};
use crate::commands::{Ctx, unix_now};
use crate::exit::{BAD_FILE, Failure, REJECTED};
use crate::table::Table;

/// The seedfile format for a command-line choice.
pub fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::AzureCsv => Format::AzureCsv,
        FormatArg::Otpauth => Format::Otpauth,
        FormatArg::Pskc => Format::Pskc,
        FormatArg::GraphJson => Format::GraphJson,
        FormatArg::PrivacyideaCsv => Format::PrivacyIdeaCsv,
    }
}

fn target(t: TargetArg) -> Target {
    match t {
        TargetArg::Azure => Target::Azure,
        TargetArg::Graph => Target::Graph,
        TargetArg::Privacyidea => Target::PrivacyIdea,
        TargetArg::Any => Target::Any,
    }
}

/// A ledger record as a seed-file record (the shared conversion).
pub fn to_token_record(
    r: &SeedRecord,
    manufacturer: Option<&str>,
    model: Option<&str>,
) -> Result<TokenRecord, Failure> {
    let labels = Labels {
        manufacturer: manufacturer.map(str::to_owned),
        model: model.map(str::to_owned),
    };
    oathkey_seedfile::export::to_token_record(r, &labels).map_err(|e| anyhow::anyhow!("{e}").into())
}

fn problems_text(problems: &[oathkey_seedfile::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Shows every problem that `--force` let into `file` as a warning on standard error: the row
/// (its line and serial) and the reason. Never silent, never a secret (reasons quote none).
pub fn warn_forced(file: &str, problems: &[oathkey_seedfile::Problem]) {
    for p in problems {
        eprintln!("warning: {file}: {p} (written because of --force; the target will reject it)");
    }
}

/// Whether standard output is a regular file (`oathkey export > seeds.csv`), as opposed to a
/// pipe, a terminal or a device: only then is what was written to it known to be kept.
fn stdout_is_a_file() -> bool {
    use std::os::fd::AsFd;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_file())
}

/// Maps a seed-file write failure to a message and exit code.
pub fn write_failure(e: oathkey_seedfile::FileError) -> Failure {
    Failure {
        code: BAD_FILE,
        message: e.to_string(),
    }
}

/// An export failure as a message and exit code.
fn export_failure(e: ExportError) -> Failure {
    match e {
        ExportError::Daemon(c) => c.into(),
        ExportError::File(f) => write_failure(f),
        other => Failure {
            code: BAD_FILE,
            message: other.to_string(),
        },
    }
}

/// `oathkey export`.
pub fn export(ctx: &mut Ctx, args: &ExportArgs) -> Result<(), Failure> {
    let params = SeedsParams {
        serials: (!args.serials.is_empty()).then(|| args.serials.clone()),
        users: (!args.users.is_empty()).then(|| args.users.clone()),
        include_incomplete: args.include_incomplete,
        not_exported: args.new_only,
    };
    let labels = Labels {
        manufacturer: args.manufacturer.clone(),
        model: args.model.clone(),
    };
    let fmt = format(args.format);
    let records = match &args.output {
        Some(path) => {
            let mode = if args.append {
                WriteMode::Append
            } else if args.replace {
                WriteMode::Replace
            } else {
                WriteMode::CreateNew
            };
            let done = oathkey_seedfile::export::export_to_file(
                ctx.client(),
                params,
                fmt,
                path,
                mode,
                args.force,
                &labels,
            )
            .map_err(export_failure)?;
            warn_forced(&path.display().to_string(), &done.forced);
            if !done.records.is_empty() {
                eprintln!(
                    "Wrote {} seed(s) to {} ({fmt}).",
                    done.records.len(),
                    path.display()
                );
            }
            done.records
        }
        None => {
            // To standard output: the same conversion and rules. Marked exported only when
            // what was written is known to be kept: output redirected into a file, or
            // --mark-exported. A pipe (`oathkey export | head`) or a terminal may drop it, and
            // `seeds purge --exported` would then delete a seed that was never saved.
            let seeds: Vec<SeedRecord> = ctx.call(method::SEEDS_EXPORT, params)?;
            let records = seeds
                .iter()
                .map(|r| oathkey_seedfile::export::to_token_record(r, &labels))
                .collect::<Result<Vec<_>, _>>()
                .map_err(export_failure)?;
            if !records.is_empty() {
                let rendered = oathkey_seedfile::render_checked(fmt, &records, args.force).map_err(|e| match e {
                    oathkey_seedfile::RenderError::Rejected(p) => Failure {
                        code: BAD_FILE,
                        message: format!("the target would reject these rows (--force writes rule violations anyway):\n{}", problems_text(&p)),
                    },
                    other => Failure { code: BAD_FILE, message: other.to_string() },
                })?;
                warn_forced("standard output", &rendered.forced);
                let mark = args.mark_exported || stdout_is_a_file();
                out!("{}", &*rendered.text);
                if mark {
                    oathkey_seedfile::export::mark_exported(ctx.client(), &seeds, fmt)
                        .map_err(export_failure)?;
                } else {
                    eprintln!(
                        "Not marked exported: standard output is not a file, so `seeds purge --exported` keeps these seeds (write with -o FILE, or add --mark-exported once the output is saved)."
                    );
                }
            }
            records
        }
    };
    if records.is_empty() {
        eprintln!("No seeds match; nothing written.");
        return Ok(());
    }
    if let Some(dir) = &args.qr_dir {
        write_qr_codes(dir, &records).map_err(|f| Failure {
            code: BAD_FILE,
            message: f.message,
        })?;
    }
    Ok(())
}

fn write_qr_codes(dir: &Path, records: &[TokenRecord]) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    for r in records {
        let uri = oathkey_seedfile::otpauth_uri(r, Some(&r.manufacturer));
        let png = oathkey_seedfile::qr_png(&uri)
            .map_err(|e| anyhow::anyhow!("QR code for {}: {e}", r.serial))?;
        let safe: String = r
            .serial
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.png"));
        // A QR code is the seed in another form: 0600, and never over an existing file.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        f.write_all(&png)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    eprintln!("Wrote {} QR code(s) to {}.", records.len(), dir.display());
    Ok(())
}

fn state_name(info: &SeedInfo) -> String {
    serde_json::to_value(info.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `oathkey seeds ...`.
pub fn seeds(ctx: &mut Ctx, cmd: &SeedsCommand, json: bool) -> Result<(), Failure> {
    match cmd {
        SeedsCommand::List { all } => {
            let params = SeedsParams {
                include_incomplete: *all,
                ..SeedsParams::default()
            };
            let list: Vec<SeedInfo> = ctx.call(method::SEEDS_LIST, params)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(());
            }
            if list.is_empty() {
                eprintln!(
                    "The ledger holds no seeds{}.",
                    if *all {
                        ""
                    } else {
                        " ready to export (--all shows every record)"
                    }
                );
                return Ok(());
            }
            let mut t = Table::new(["SERIAL", "USER", "KEY", "STATE", "EXPORTED", "ID"]);
            for s in &list {
                t.row([
                    s.serial.clone(),
                    s.user.clone(),
                    s.key.clone(),
                    state_name(s),
                    if s.exported_at.is_some() {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    s.id.clone(),
                ]);
            }
            out!("{t}");
            for s in list.iter().filter(|s| s.reason.is_some()) {
                eprintln!("{}: {}", s.serial, s.reason.as_deref().unwrap_or_default());
            }
            Ok(())
        }
        SeedsCommand::Purge { exported } => {
            let purged: usize = ctx.call(
                method::SEEDS_PURGE,
                PurgeParams {
                    exported: *exported,
                },
            )?;
            if json {
                outln!("{}", serde_json::json!({"purged": purged}));
            } else {
                eprintln!("Purged {purged} exported seed(s) from the ledger.");
            }
            Ok(())
        }
    }
}

/// Reads `path` in `fmt`, or in the format guessed from its content, else from `tgt` (the
/// target it is meant for), else from its name (`.csv`: Azure CSV); see
/// [`oathkey_seedfile::guess`]. Says on standard error when the format was not detected but
/// assumed. Checks the records against `tgt` (default: the format's own target).
fn read_seed_file(
    path: &Path,
    fmt: Option<FormatArg>,
    tgt: Option<Target>,
) -> Result<(Format, oathkey_seedfile::Parsed), Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure {
        code: BAD_FILE,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let fmt = match fmt {
        Some(f) => format(f),
        None => {
            let name = path.file_name().map(|n| n.to_string_lossy());
            let guessed = oathkey_seedfile::guess(&bytes, name.as_deref(), tgt);
            match guessed {
                Some(f) if oathkey_seedfile::detect(&bytes) != Some(f) => {
                    eprintln!(
                        "note: the content of {} is no known format; reading it as {f} ({})",
                        path.display(),
                        if tgt.is_some_and(|t| t != Target::Any) {
                            "the target's format"
                        } else {
                            "from its name"
                        }
                    );
                    f
                }
                Some(f) => f,
                None => {
                    return Err(Failure {
                        code: BAD_FILE,
                        message: format!(
                            "cannot tell the format of {}; name it with --format (or --target)",
                            path.display()
                        ),
                    });
                }
            }
        }
    };
    let tgt = tgt.unwrap_or_else(|| fmt.target());
    Ok((fmt, oathkey_seedfile::read_as(fmt, &bytes, tgt)))
}

/// `oathkey seedfile check`.
pub fn check(
    file: &Path,
    target_arg: Option<TargetArg>,
    fmt: Option<FormatArg>,
    json: bool,
) -> Result<(), Failure> {
    // One pass: reading problems and the target's rules, each with its line.
    let (fmt, parsed) = read_seed_file(file, fmt, target_arg.map(target))?;
    let mut problems = parsed.problems.clone();
    problems.sort_by_key(|p| p.line.unwrap_or(0));
    let count = parsed.records.len();
    if json {
        let items: Vec<Value> = problems
            .iter()
            .map(|p| serde_json::json!({"line": p.line, "serial": p.serial, "reason": p.reason}))
            .collect();
        let report =
            serde_json::json!({"format": fmt.to_string(), "records": count, "problems": items});
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for p in &problems {
            outln!("{p}");
        }
        eprintln!(
            "{}: {count} token(s), {} problem(s) ({fmt}).",
            file.display(),
            problems.len()
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: BAD_FILE,
            message: format!("{} has {} problem(s)", file.display(), problems.len()),
        })
    }
}

/// `oathkey activate`: checks a code as the MFA service's activation does.
pub fn activate(args: &ActivateArgs, at: Option<u64>, json: bool) -> Result<(), Failure> {
    let (_, parsed) = read_seed_file(&args.seed_file, args.format, None)?;
    let Some((_, record)) = parsed.records.iter().find(|(_, r)| r.serial == args.serial) else {
        return Err(Failure {
            code: crate::exit::NOT_FOUND,
            message: format!(
                "no token with serial {} in {}",
                args.serial,
                args.seed_file.display()
            ),
        });
    };
    let t = at.unwrap_or_else(unix_now);
    let result = oathkey_seedfile::check_code(record, args.code.trim(), t, args.window);
    if json {
        outln!(
            "{}",
            serde_json::json!({"serial": args.serial, "accepted": result.is_some(), "offset": result})
        );
    }
    match result {
        Some(offset) => {
            if !json {
                let when = match offset {
                    0 => "the current time step".to_string(),
                    n if n < 0 => format!("{} step(s) ago", -n),
                    n => format!("{n} step(s) ahead"),
                };
                outln!(
                    "accepted: the code matches {when} for {} (serial {})",
                    record.user,
                    record.serial
                );
            }
            Ok(())
        }
        None => Err(Failure {
            code: REJECTED,
            message: format!(
                "code not accepted for serial {}: it matches none of the {} steps around now (is this machine's clock right? compare with `oathkey code {}`)",
                args.serial,
                2 * args.window + 1,
                args.serial
            ),
        }),
    }
}
