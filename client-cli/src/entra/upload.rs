//! `oathkey entra upload`: the ledger's verified seeds (or a seed file's) into Entra.
//!
//! Per token: the user is looked up first (`GET /users/{upn}/.../hardwareOathMethods`), so an
//! unknown user fails before anything is created; the token is created unassigned unless
//! Entra has its serial already (the inventory is listed once, first: a rerun after an
//! interruption creates no duplicates); it is assigned with the UPN in the path, which Graph
//! documents for users by id or UPN (`assignTo` on create documents an object id only); with
//! `--activate`, the code is read from the key through the daemon and sent. Seeds go from the
//! daemon's answer to Graph's request body in memory, in zeroizing types.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use oathkey_entra::{
    ActivationLimiter, GraphClient, HardwareOathToken, HashFunction, NewToken, SecretKey,
    SystemClock, TokenStatus, VerificationCode,
};
use oathkey_protocol::methods as m;
use oathkey_protocol::types::{CodeParams, SeedsParams};
use oathkey_seedfile::{Algorithm, Kind, TokenRecord};
use serde::Serialize;

use super::{Settings, failure, graph};
use crate::cli::{Cli, EntraUploadArgs};
use crate::commands::{Ctx, unix_now};
use crate::exit::{self, Failure};
use crate::out::outln;

/// A code with fewer seconds left than this is not sent: it could expire on the way.
const MIN_SECONDS_LEFT: u64 = 5;

/// One token to upload.
struct Item {
    record: TokenRecord,
    /// The key holding it and its name there (from the ledger); `None` for a seed file's row,
    /// whose code is read by serial.
    on_key: Option<(String, String)>,
}

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The token's serial.
    pub serial: String,
    /// The user it is for.
    pub upn: String,
    /// What was (or, with --dry-run, would be) done: `create`, `assign`, `activate`, joined
    /// with `+`, or `none`.
    pub action: String,
    /// `done`, `unchanged`, `planned` (dry run) or `failed`.
    pub result: &'static str,
    /// Why it failed (empty otherwise).
    pub error: String,
}

fn items_from_ledger(ctx: &mut Ctx) -> Result<Vec<Item>, Failure> {
    ctx.require_admin("uploading seeds to Entra")?;
    let seeds = ctx.client().seeds_export(&SeedsParams::default())?;
    seeds
        .iter()
        .map(|r| {
            Ok(Item {
                record: crate::seeds::to_token_record(r, None, None)?,
                on_key: Some((r.info.key.clone(), r.info.name.clone())),
            })
        })
        .collect()
}

fn items_from_file(path: &Path) -> Result<Vec<Item>, Failure> {
    let (_, parsed) =
        oathkey_seedfile::read_path(path, None).map_err(crate::seeds::write_failure)?;
    if !parsed.problems.is_empty() {
        let list: Vec<String> = parsed.problems.iter().map(|p| format!("  {p}")).collect();
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!(
                "{} has problems (see `oathkey seedfile check`); nothing was uploaded:\n{}",
                path.display(),
                list.join("\n")
            ),
        });
    }
    Ok(parsed
        .into_records()
        .into_iter()
        .map(|record| Item {
            record,
            on_key: None,
        })
        .collect())
}

/// Why Entra cannot take this token, if it cannot.
fn unfit(r: &TokenRecord) -> Option<String> {
    let mut why = Vec::new();
    if r.kind != Kind::Totp {
        why.push("it is HOTP (Entra takes TOTP only)".to_owned());
    }
    if r.digits != 6 {
        why.push(format!("it has {} digits (Entra takes 6)", r.digits));
    }
    if !matches!(r.period, 30 | 60) {
        why.push(format!(
            "its period is {} s (Entra takes 30 or 60)",
            r.period
        ));
    }
    if r.algorithm == Algorithm::Sha512 {
        why.push("it uses SHA-512 (Entra takes SHA-1 or SHA-256)".to_owned());
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// Reads the token's current code from its key, waiting for the next step when fewer than
/// [`MIN_SECONDS_LEFT`] seconds are left.
fn code_from_key(ctx: &mut Ctx, cli: &Cli, item: &Item) -> Result<VerificationCode, String> {
    let (key, token) = match &item.on_key {
        Some((key, name)) => (Some(key.clone()), name.clone()),
        None => (cli.key.clone(), item.record.serial.clone()),
    };
    for _ in 0..3 {
        let code = ctx
            .call::<m::CodesGet>(CodeParams {
                key: key.clone(),
                token: Some(token.clone()),
                at: None,
            })
            .map_err(|f| format!("cannot read the code from the key: {}", f.message))?;
        let left = code
            .valid_until
            .map_or(u64::MAX, |until| until.saturating_sub(unix_now()));
        if left >= MIN_SECONDS_LEFT {
            return Ok(VerificationCode::new(code.code));
        }
        std::thread::sleep(Duration::from_secs(left + 1));
    }
    Err("the key's code kept expiring before it could be sent".into())
}

/// The work on one token; returns the actions (done, or planned on a dry run).
struct Upload<'a> {
    cli: &'a Cli,
    graph: Option<&'a GraphClient>,
    ctx: Option<&'a mut Ctx>,
    inventory: HashMap<String, HardwareOathToken>,
    activate: bool,
    dry_run: bool,
    limiter: ActivationLimiter,
    clock: SystemClock,
}

impl Upload<'_> {
    fn one(&mut self, item: &Item, actions: &mut Vec<&'static str>) -> Result<(), String> {
        let r = &item.record;
        if let Some(why) = unfit(r) {
            return Err(format!("Entra cannot take this token: {why}"));
        }
        let graph = self.graph.ok_or("not signed in")?;
        let err = |what: &str, e: oathkey_entra::Error| format!("{what}: {e}");
        let methods = graph.user_methods(&r.user).map_err(|e| match e {
            oathkey_entra::Error::NotFound(_) => {
                format!("user {} not found in the tenant ({e})", r.user)
            }
            e => err("cannot read the user's methods", e),
        })?;
        let existing = self.inventory.get(&r.serial).cloned();
        let (id, assigned_elsewhere, status) = match &existing {
            Some(t) => (
                t.id.clone().unwrap_or_default(),
                t.assigned_to.is_some(),
                t.status,
            ),
            None => {
                actions.push("create");
                if self.dry_run {
                    (String::new(), false, None)
                } else {
                    let secret = r.secret.base32();
                    let created = graph
                        .create_token(&NewToken {
                            serial_number: r.serial.clone(),
                            manufacturer: r.manufacturer.clone(),
                            model: r.model.clone(),
                            secret_key: SecretKey::new(secret.as_str()),
                            time_interval_in_seconds: r.period,
                            hash_function: Some(match r.algorithm {
                                Algorithm::Sha256 => HashFunction::Hmacsha256,
                                _ => HashFunction::Hmacsha1,
                            }),
                            display_name: None,
                            assign_to: None,
                        })
                        .map_err(|e| err("create failed", e))?;
                    let id = created.id.clone().ok_or("Graph gave the new token no id")?;
                    self.inventory.insert(r.serial.clone(), created.clone());
                    (id, false, created.status)
                }
            }
        };
        let mine = !id.is_empty() && methods.iter().any(|m| m.id.as_deref() == Some(&id));
        if !mine {
            if assigned_elsewhere {
                return Err(format!(
                    "Entra's token {} is assigned to another user; unassign it in Entra first",
                    r.serial
                ));
            }
            actions.push("assign");
            if !self.dry_run {
                graph
                    .assign(&r.user, &id)
                    .map_err(|e| err("assign failed", e))?;
            }
        }
        if self.activate && status != Some(TokenStatus::Activated) {
            actions.push("activate");
            if !self.dry_run {
                let ctx = self.ctx.as_deref_mut().ok_or("no daemon")?;
                // The slot first, then the code: a wait for the limit must not age the code.
                self.limiter.acquire(&self.clock);
                let code = code_from_key(ctx, self.cli, item)?;
                graph
                    .activate(&r.user, &id, &code, None)
                    .map_err(|e| err("activation failed", e))?;
                let after = graph
                    .get_token(&id)
                    .map_err(|e| err("cannot read the token back", e))?;
                if after.status != Some(TokenStatus::Activated) {
                    return Err(format!(
                        "activation was accepted but Entra says {:?}",
                        after.status
                    ));
                }
            }
        }
        Ok(())
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The report as CSV.
fn report_csv(rows: &[Row]) -> String {
    let mut out = String::from("serial,upn,action,result,error\n");
    for r in rows {
        let fields = [
            csv_field(&r.serial),
            csv_field(&r.upn),
            csv_field(&r.action),
            r.result.to_owned(),
            csv_field(&r.error),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Writes `text` to `path` 0600 and atomically (a temporary file beside it, renamed over).
pub fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure {
        code: exit::BAD_FILE,
        message: format!("cannot write the report {}: {e}", path.display()),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".oathkey-report.")
        .tempfile_in(dir)
        .map_err(|e| fail(&e))?;
    tmp.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

/// `oathkey entra upload`.
pub fn run(cli: &Cli, settings: &Settings, args: &EntraUploadArgs) -> Result<(), Failure> {
    if let Some(report) = &args.report {
        let dir = report.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) || report.is_dir() {
            return Err(Failure {
                code: exit::BAD_FILE,
                message: format!(
                    "cannot write the report {}: no such directory, or it is a directory",
                    report.display()
                ),
            });
        }
    }
    let mut ctx = if args.from.is_none() || args.activate {
        Some(Ctx::connect(cli)?)
    } else {
        None
    };
    let items = match (&args.from, ctx.as_mut()) {
        (Some(path), _) => items_from_file(path)?,
        (None, Some(ctx)) => items_from_ledger(ctx)?,
        (None, None) => unreachable!("connected above"),
    };
    if args.activate
        && let Some(ctx) = &ctx
    {
        ctx.require_admin("reading codes to activate tokens")?;
    }
    let graph = graph(settings)?;
    // The CLI's limiter is the one that waits (before the code is read); the library's is
    // set so it never does.
    let graph = graph.with_limiter(ActivationLimiter::new(usize::MAX, Duration::from_secs(1)));
    let inventory = graph
        .list_tokens()
        .map_err(failure)?
        .into_iter()
        .filter_map(|t| t.serial_number.clone().map(|s| (s, t)))
        .collect();
    let mut up = Upload {
        cli,
        graph: Some(&graph),
        ctx: ctx.as_mut(),
        inventory,
        activate: args.activate,
        dry_run: args.dry_run,
        limiter: ActivationLimiter::default(),
        clock: SystemClock::default(),
    };
    let mut rows = Vec::new();
    for item in &items {
        let mut actions = Vec::new();
        let outcome = up.one(item, &mut actions);
        let action = if actions.is_empty() {
            "none".to_owned()
        } else {
            actions.join("+")
        };
        let (result, error) = match outcome {
            Err(e) => ("failed", e),
            Ok(()) if actions.is_empty() => ("unchanged", String::new()),
            Ok(()) if args.dry_run => ("planned", String::new()),
            Ok(()) => ("done", String::new()),
        };
        if !cli.json {
            let tail = if error.is_empty() {
                String::new()
            } else {
                format!(": {error}")
            };
            eprintln!(
                "{} {}: {action} {result}{tail}",
                item.record.serial, item.record.user
            );
        }
        rows.push(Row {
            serial: item.record.serial.clone(),
            upn: item.record.user.clone(),
            action,
            result,
            error,
        });
    }
    if let Some(path) = &args.report {
        write_private(path, &report_csv(&rows))?;
    }
    let failed = rows.iter().filter(|r| r.result == "failed").count();
    if cli.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "dry_run": args.dry_run,
            "tokens": rows,
            "failed": failed,
        }))
        .map_err(|e| Failure::from(anyhow::Error::from(e)))?;
        outln!("{text}");
    } else if rows.is_empty() {
        eprintln!("No seeds to upload.");
    } else {
        eprintln!(
            "{} token(s){}, {failed} failed.",
            rows.len(),
            if args.dry_run {
                " checked (dry run: nothing changed)"
            } else {
                " handled"
            }
        );
    }
    if failed > 0 {
        return Err(Failure {
            code: exit::ENTRA_FAILED,
            message: format!(
                "{failed} of {} token(s) failed{}",
                rows.len(),
                args.report
                    .as_ref()
                    .map(|p| format!("; see {}", p.display()))
                    .unwrap_or_default()
            ),
        });
    }
    Ok(())
}
