//! Seeds: export from the daemon's ledger, list and purge it, check seed files, and check an
//! activation code against a file.

use crate::out::{out, outln};
use std::path::Path;

use oathkey_protocol::methods as m;
use oathkey_protocol::types::{PurgeParams, SeedInfo, SeedRecord, SeedsParams};
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
        ..SeedsParams::default()
    };
    let labels = Labels {
        manufacturer: args.manufacturer.clone(),
        model: args.model.clone(),
    };
    let fmt = format(args.format);
    ctx.require_admin("exporting seeds")?;
    // Every output is checked before anything is written or marked exported.
    let refuse = |problem: String| Failure {
        code: BAD_FILE,
        message: format!("{problem}; nothing was exported"),
    };
    let mut forced = Vec::new();
    let records = match &args.output {
        Some(path) => {
            let mode = if args.append {
                WriteMode::Append
            } else if args.replace {
                WriteMode::Replace
            } else {
                WriteMode::CreateNew
            };
            if let Some(problem) = crate::output::seed_file_problem(path, mode) {
                return Err(refuse(problem));
            }
            if let Some(dir) = &args.qr_dir {
                // The serials the export will write (the same selection, without secrets).
                let serials: Vec<String> = ctx
                    .client()
                    .seeds_list(&params)?
                    .into_iter()
                    .map(|s| s.serial)
                    .collect();
                let pngs = serials.iter().map(|s| (s.as_str(), qr_path(dir, s)));
                if let Some(problem) = crate::output::qr_dir_problem(dir, pngs) {
                    return Err(refuse(problem));
                }
            }
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
            forced = done.forced;
            done.records
        }
        None => {
            // To standard output: the same conversion and rules. Marked exported only when
            // what was written is known to be kept: output redirected into a file, or
            // --mark-exported. A pipe (`oathkey export | head`) or a terminal may drop it, and
            // `seeds purge --exported` would then delete a seed that was never saved.
            let to_file = crate::output::private_stdout(
                "write the seeds with -o FILE, which oathkey creates 0600",
            )?;
            let seeds: Vec<SeedRecord> = ctx.client().seeds_export(&params)?;
            let records = seeds
                .iter()
                .map(|r| oathkey_seedfile::export::to_token_record(r, &labels))
                .collect::<Result<Vec<_>, _>>()
                .map_err(export_failure)?;
            if let Some(dir) = &args.qr_dir {
                let pngs = records
                    .iter()
                    .map(|r| (r.serial.as_str(), qr_path(dir, &r.serial)));
                if let Some(problem) = crate::output::qr_dir_problem(dir, pngs) {
                    return Err(refuse(problem));
                }
            }
            if !records.is_empty() {
                let rendered = oathkey_seedfile::render_checked(fmt, &records, args.force).map_err(|e| match e {
                    oathkey_seedfile::RenderError::Rejected(p) => Failure {
                        code: BAD_FILE,
                        message: format!("the target would reject these rows (--force writes rule violations anyway):\n{}", problems_text(&p)),
                    },
                    other => Failure { code: BAD_FILE, message: other.to_string() },
                })?;
                warn_forced("standard output", &rendered.forced);
                let mark = args.mark_exported || to_file;
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
    } else if let Some(dir) = &args.qr_dir {
        write_qr_codes(dir, &records).map_err(|f| Failure {
            code: BAD_FILE,
            message: f.message,
        })?;
    }
    // With -o, `--json` says what was written. Without, standard output is the seed file.
    match &args.output {
        Some(path) => ctx.print_summary(&serde_json::json!({
            "file": path,
            "format": fmt.to_string(),
            "exported": records.len(),
            "serials": records.iter().map(|r| &r.serial).collect::<Vec<_>>(),
            "forced": forced
                .iter()
                .map(|p| serde_json::json!({"line": p.line, "serial": p.serial, "reason": p.reason}))
                .collect::<Vec<_>>(),
            "qr_dir": args.qr_dir.as_ref().filter(|_| !records.is_empty()),
            "qr_codes": if args.qr_dir.is_some() { records.len() } else { 0 },
        })),
        None => Ok(()),
    }
}

/// Where a token's QR code goes: `DIR/SERIAL.png`, with characters a file name should not
/// hold replaced by `_`.
fn qr_path(dir: &Path, serial: &str) -> std::path::PathBuf {
    let safe: String = serial
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.png"))
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
        let path = qr_path(dir, &r.serial);
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
        SeedsCommand::List { all, stale } => {
            let params = SeedsParams {
                include_incomplete: *all,
                stale: *stale,
                ..SeedsParams::default()
            };
            let list: Vec<SeedInfo> = ctx.call::<m::SeedsList>(params)?;
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
                    } else if *stale {
                        " that no key holds"
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
        SeedsCommand::Purge { exported, stale } => {
            let purged: usize = ctx.call::<m::SeedsPurge>(PurgeParams {
                exported: *exported,
                stale: *stale,
            })?;
            if json {
                outln!("{}", serde_json::json!({"purged": purged}));
            } else {
                let which = match (*exported, *stale) {
                    (true, true) => "exported or stale",
                    (false, true) => "stale",
                    _ => "exported",
                };
                eprintln!("Purged {purged} {which} seed(s) from the ledger.");
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
    // Every step of the window must be a time: one past 2^64 s would be skipped while the
    // message below counts it. `code --at` refuses such a time as well.
    if record.kind == oathkey_seedfile::Kind::Totp
        && u64::from(record.period)
            .checked_mul(args.window + 1)
            .and_then(|span| t.checked_add(span))
            .is_none()
    {
        return Err(Failure::usage(format!(
            "--at {t} is out of range: the window's steps after it do not fit in 64 bits"
        )));
    }
    let result = oathkey_seedfile::check_code(record, &args.code, t, args.window);
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
                "code not accepted for serial {}: it matches none of the {} steps around {} (is this machine's clock right? compare with `oathkey code {}`)",
                args.serial,
                2 * args.window + 1,
                at.map_or_else(|| "now".to_string(), |t| t.to_string()),
                args.serial
            ),
        }),
    }
}
