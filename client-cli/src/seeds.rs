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
            // To standard output: the same conversion and rules, then the same marking.
            let seeds: Vec<SeedRecord> = ctx.call(method::SEEDS_EXPORT, params)?;
            let records = seeds
                .iter()
                .map(|r| oathkey_seedfile::export::to_token_record(r, &labels))
                .collect::<Result<Vec<_>, _>>()
                .map_err(export_failure)?;
            if !records.is_empty() {
                let text = oathkey_seedfile::render(fmt, &records, args.force).map_err(|e| match e {
                    oathkey_seedfile::RenderError::Rejected(p) => Failure {
                        code: BAD_FILE,
                        message: format!("the target would reject these rows (--force writes rule violations anyway):\n{}", problems_text(&p)),
                    },
                    other => Failure { code: BAD_FILE, message: other.to_string() },
                })?;
                out!("{}", &*text);
                oathkey_seedfile::export::mark_exported(ctx.client(), &seeds, fmt)
                    .map_err(export_failure)?;
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

fn read_seed_file(
    path: &Path,
    fmt: Option<FormatArg>,
) -> Result<(Format, oathkey_seedfile::Parsed), Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure {
        code: BAD_FILE,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let fmt = match fmt {
        Some(f) => format(f),
        None => oathkey_seedfile::detect(&bytes).ok_or_else(|| Failure {
            code: BAD_FILE,
            message: format!(
                "cannot tell the format of {}; name it with --format",
                path.display()
            ),
        })?,
    };
    Ok((fmt, oathkey_seedfile::read(fmt, &bytes)))
}

/// `oathkey seedfile check`.
pub fn check(
    file: &Path,
    target_arg: Option<TargetArg>,
    fmt: Option<FormatArg>,
    json: bool,
) -> Result<(), Failure> {
    let bytes = std::fs::read(file).map_err(|e| Failure {
        code: BAD_FILE,
        message: format!("cannot read {}: {e}", file.display()),
    })?;
    let fmt = match fmt {
        Some(f) => format(f),
        None => oathkey_seedfile::detect(&bytes).ok_or_else(|| Failure {
            code: BAD_FILE,
            message: format!(
                "cannot tell the format of {}; name it with --format",
                file.display()
            ),
        })?,
    };
    let tgt = target_arg.map_or_else(|| fmt.target(), target);
    // One pass: reading problems and the target's rules, each with its line.
    let parsed = oathkey_seedfile::read_as(fmt, &bytes, tgt);
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
    let (_, parsed) = read_seed_file(&args.seed_file, args.format)?;
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
