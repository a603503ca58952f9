//! `oathkey provision`: the vendor how-to's loop. For each user: wait for a key that has not
//! been seeded in this run, seed it (settings applied if asked), append its row to the Azure
//! CSV, ask for the next key. The CSV is appended atomically after every key, and users already
//! in it are skipped, so an interrupted run simply starts again. A user whose token was created
//! but whose row never reached the file (the run was killed in between) gets the row back from
//! the daemon's ledger instead of a second token.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use oathkey_protocol::methods::{self as m, NoParams};
use oathkey_protocol::types::{
    Algorithm, CreateTokenParams, CreatedToken, Event, KeyList, KeyParams, MarkExportedParams,
    OtpKind, SeedState, SeedsParams, SetConfigParams,
};
use oathkey_seedfile::{Format, Target, TokenRecord, WriteMode};
use serde::Serialize;

use crate::cli::ProvisionArgs;
use crate::commands::Ctx;
use crate::exit::{BAD_FILE, Failure, NOT_FOUND, PERMISSION};
use crate::seeds::{to_token_record, warn_forced, write_failure};
use oathkey_seedfile::export::manufacturer_for;

/// Reads the users file: one UPN per line, with its 1-based line number. Blank lines, and
/// lines whose first non-blank character is `#`, are ignored; a `#` anywhere else is part of
/// the line (guest UPNs hold `#EXT#`). The file may be UTF-8, with or without a byte order mark
/// (Notepad, Excel), or UTF-16 with one (Notepad's "Unicode"): see
/// [`oathkey_seedfile::text_lines`]. A line that is not a UPN by the one UPN rule
/// ([`oathkey_seedfile::upn_problem`], which the Azure seed-file check uses too), a line that is
/// not UTF-8, and a user listed twice are refused, every one of them listed with its line,
/// `--force` or not: they are not users Azure could be told about. A seed file (or other XML or
/// JSON) given instead is one error that says what it is.
fn read_users(path: &Path) -> Result<Vec<(usize, String)>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let file = path.display();
    if let Some(content) = oathkey_seedfile::content_of(&bytes) {
        return Err(Failure::usage(format!(
            "{file} is {content}, not a users file (one UPN per line)"
        )));
    }
    let lines = oathkey_seedfile::text_lines(&bytes)
        .map_err(|problem| Failure::usage(format!("{file} {problem}")))?;
    let mut users = Vec::new();
    let mut bad = Vec::new();
    let mut seen = BTreeMap::new();
    for (n, line) in lines {
        let line = match line {
            Ok(line) => line,
            Err(problem) => {
                bad.push(format!("  {file} {problem}"));
                continue;
            }
        };
        let user = line.trim();
        if user.is_empty() || user.starts_with('#') {
            continue;
        }
        if let Some(reason) = oathkey_seedfile::upn_problem(user) {
            bad.push(format!("  {file} line {n}: {reason}"));
            continue;
        }
        if let Some(first) = seen.insert(user.to_ascii_lowercase(), n) {
            bad.push(format!(
                "  {file} line {n}: {user} is listed twice (first on line {first})"
            ));
            continue;
        }
        users.push((n, user.to_string()));
    }
    if !bad.is_empty() {
        return Err(Failure::usage(format!(
            "{file} has lines that are not users; nothing was seeded:\n{}",
            bad.join("\n")
        )));
    }
    if users.is_empty() {
        return Err(Failure::usage(format!("{file} lists no users")));
    }
    Ok(users)
}

/// The row `provision` would write for `user`, with the token settings asked for and
/// placeholders for what only the key gives (serial, secret, model).
fn sample_row(args: &ProvisionArgs, user: &str, serial: usize) -> TokenRecord {
    TokenRecord {
        serial: format!("{serial:07}"),
        user: user.into(),
        secret: oathkey_seedfile::Secret::new(vec![0; 20]),
        kind: oathkey_seedfile::Kind::Totp,
        algorithm: args.hash.into(),
        digits: args.digits,
        period: args.period,
        counter: 0,
        manufacturer: args
            .manufacturer
            .clone()
            .unwrap_or_else(|| "oathkey".into()),
        model: args.model.clone().unwrap_or_else(|| "OTP key".into()),
    }
}

/// Checks every user's row against Azure's rules before any key is touched: what the CSV
/// cannot hold at all (HOTP, SHA-256, 8 digits) is refused even with `--force`; what Azure's
/// upload would reject (a settings problem, or a user's UPN: a guest, `name@contoso..com`) is
/// refused with every bad line of the users file listed, or with `--force` shown as a warning
/// per line and seeded anyway.
fn check_rows(args: &ProvisionArgs, users: &[(usize, String)]) -> Result<(), Failure> {
    let file = args.users.display();
    // The settings, on a user Azure takes: their problems are the same for every row.
    let mut probe = sample_row(args, "user@example.com", 0);
    probe.serial.clear();
    if let Err(other) =
        oathkey_seedfile::render(Format::AzureCsv, std::slice::from_ref(&probe), true)
    {
        return Err(Failure::usage(format!(
            "the Azure CSV cannot hold these tokens: {other}"
        )));
    }
    let probe = sample_row(args, "user@example.com", 0);
    let settings = oathkey_seedfile::validate(Target::Azure, std::slice::from_ref(&probe));
    let settings: Vec<String> = settings.into_iter().map(|p| p.reason).collect();
    // Each user's row with settings Azure takes, so that only the user's own problems show.
    let rows: Vec<(usize, TokenRecord)> = users
        .iter()
        .enumerate()
        .map(|(i, (line, user))| {
            let mut row = sample_row(args, user, i + 1);
            row.algorithm = Algorithm::Sha1;
            row.digits = 6;
            row.period = 30;
            (*line, row)
        })
        .collect();
    let rendered: Vec<TokenRecord> = rows.iter().map(|(_, r)| r.clone()).collect();
    if let Err(oathkey_seedfile::RenderError::Other(reason)) =
        oathkey_seedfile::render(Format::AzureCsv, &rendered, true)
    {
        return Err(Failure::usage(format!(
            "the Azure CSV cannot hold these rows: {reason}"
        )));
    }
    let users_problems: Vec<String> = oathkey_seedfile::validate_numbered(Target::Azure, &rows)
        .into_iter()
        .map(|p| format!("{file} line {}: {}", p.line.unwrap_or(0), p.reason))
        .collect();
    if settings.is_empty() && users_problems.is_empty() {
        return Ok(());
    }
    if args.force {
        for reason in &settings {
            eprintln!(
                "warning: every row: {reason} (seeded because of --force; Azure's upload will reject it)"
            );
        }
        for problem in &users_problems {
            eprintln!(
                "warning: {problem} (seeded because of --force; Azure's upload will reject this row)"
            );
        }
        return Ok(());
    }
    let mut list: Vec<String> = settings
        .iter()
        .map(|reason| format!("  every row: {reason}"))
        .collect();
    list.extend(users_problems.iter().map(|p| format!("  {p}")));
    Err(Failure::usage(format!(
        "Azure's CSV upload would reject these rows; no key was touched (--force seeds them anyway):\n{}",
        list.join("\n")
    )))
}

/// Users already in the output file (lower case), refusing a file that is not a valid seed file.
fn done_users(out: &Path, force: bool) -> Result<BTreeSet<String>, Failure> {
    if !out.exists() {
        return Ok(BTreeSet::new());
    }
    let bytes = std::fs::read(out).map_err(|e| Failure {
        code: BAD_FILE,
        message: format!("cannot read {}: {e}", out.display()),
    })?;
    // Rows that cannot be read at all: appending would be refused, --force or not.
    let unreadable: Vec<String> = oathkey_seedfile::unreadable(Format::AzureCsv, &bytes)
        .iter()
        .map(|p| format!("  {p}"))
        .collect();
    if !unreadable.is_empty() {
        return Err(Failure {
            code: BAD_FILE,
            message: format!(
                "{} has rows that cannot be read; fix them first:\n{}",
                out.display(),
                unreadable.join("\n")
            ),
        });
    }
    let parsed = oathkey_seedfile::read(Format::AzureCsv, &bytes);
    // A file with a header and no rows yet is a file to append to.
    let problems: Vec<&oathkey_seedfile::Problem> = parsed
        .problems
        .iter()
        .filter(|p| p.kind != oathkey_seedfile::ProblemKind::NoTokens)
        .collect();
    if !problems.is_empty() && !force {
        let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        return Err(Failure {
            code: BAD_FILE,
            message: format!(
                "{} has problems; fix them before appending (or --force):\n{}",
                out.display(),
                list.join("\n")
            ),
        });
    }
    for p in problems {
        eprintln!(
            "warning: {}: {p} (kept because of --force; Azure's upload will reject it)",
            out.display()
        );
    }
    Ok(parsed
        .records
        .into_iter()
        .map(|(_, r)| r.user.to_ascii_lowercase())
        .collect())
}

/// Appends one record to the CSV (atomically: the file is whole before and after); with
/// `force`, the row's problems are shown as warnings.
fn append(out: &Path, record: &TokenRecord, force: bool) -> Result<(), Failure> {
    let mode = if out.exists() {
        WriteMode::Append
    } else {
        WriteMode::CreateNew
    };
    let forced = oathkey_seedfile::write_file(
        out,
        Format::AzureCsv,
        std::slice::from_ref(record),
        mode,
        force,
    )
    .map_err(write_failure)?;
    warn_forced(&out.display().to_string(), &forced);
    Ok(())
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} keys seeded  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Waits for a key not seeded in this run; `None` when `keys_present` and none is left.
/// With `keys_present` the keys are listed once (`present` keeps that list): listing every
/// key again for each one made a batch's cost grow with the square of its size.
#[allow(clippy::too_many_arguments)]
fn next_key(
    ctx: &mut Ctx,
    present: &mut Option<Vec<String>>,
    seeded: &BTreeSet<String>,
    reported_used: &mut BTreeSet<String>,
    allow_used: bool,
    keys_present: bool,
    wait: Option<Duration>,
    user: &str,
    bar: &ProgressBar,
) -> Result<Option<String>, Failure> {
    // A wait beyond what the clock can count has no end: no deadline, rather than a panic.
    let deadline = wait.and_then(|w| Instant::now().checked_add(w));
    let mut asked = false;
    loop {
        let ids: Vec<String> = match present {
            Some(ids) if keys_present => ids.clone(),
            _ => {
                let list: KeyList = ctx.call::<m::KeysList>(NoParams)?;
                let ids: Vec<String> = list.keys.into_iter().map(|k| k.id).collect();
                if keys_present {
                    *present = Some(ids.clone());
                }
                ids
            }
        };
        // A key found holding tokens stays skipped: it is not asked again.
        let candidates: Vec<&String> = ids
            .iter()
            .filter(|id| !seeded.contains(*id) && !reported_used.contains(*id))
            .collect();
        for id in candidates {
            let tokens = ctx.call::<m::TokensList>(KeyParams {
                key: Some(id.clone()),
            })?;
            if tokens.is_empty() || allow_used {
                return Ok(Some(id.clone()));
            }
            bar.suspend(|| eprintln!("Key {id} already holds {} token(s); skipping it (--allow-used-keys seeds it anyway).", tokens.len()));
            reported_used.insert(id.clone());
        }
        if keys_present {
            return Ok(None);
        }
        if !asked {
            bar.suspend(|| eprintln!("Insert the key for {user}..."));
            asked = true;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Failure {
                code: NOT_FOUND,
                message: format!("no new key was inserted for {user} in time"),
            });
        }
        // Keys arrive as events; the list is read again at least every second.
        let _ = ctx.next_event(Duration::from_secs(1))?;
    }
}

/// Waits until `key` is unplugged, for at most `wait` (`--wait`, none: as long as it takes).
fn wait_removed(
    ctx: &mut Ctx,
    key: &str,
    wait: Option<Duration>,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    bar.suspend(|| eprintln!("Remove key {key} and insert the next one."));
    let deadline = wait.and_then(|w| Instant::now().checked_add(w));
    loop {
        let list: KeyList = ctx.call::<m::KeysList>(NoParams)?;
        if !list.keys.iter().any(|k| k.id == key) {
            return Ok(());
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(Duration::from_secs(1)),
                _ => {
                    return Err(Failure {
                        code: NOT_FOUND,
                        message: format!(
                            "key {key} was not removed within {} s; the users seeded so far are in the seed file: run the command again to go on",
                            wait.unwrap_or_default().as_secs()
                        ),
                    });
                }
            },
            None => Duration::from_secs(1),
        };
        // Removals arrive as events; the list is read again at least every second.
        if let Some(Event::KeyRemoved { key: gone }) = ctx.next_event(left)?
            && gone == key
        {
            return Ok(());
        }
    }
}

/// A token `provision` wrote a row for.
#[derive(Debug, Serialize)]
struct Row {
    user: String,
    key: String,
    serial: String,
}

/// What `provision --json` prints on standard output when it ends well: what it did, never a
/// seed (the seeds are in the seed file and the daemon's ledger).
#[derive(Debug, Serialize)]
struct Summary {
    /// The seed file written to.
    seed_file: String,
    /// Its format.
    format: String,
    /// Users seeded in this run.
    seeded: Vec<Row>,
    /// Users whose token an earlier, interrupted run had created: rows written from the ledger.
    restored: Vec<Row>,
    /// Users skipped because they are in the seed file already.
    already_in_file: usize,
    /// Users skipped because an earlier run's token for them is not settled yet.
    unsettled: Vec<Row>,
    /// Users left for the next run because no more keys were plugged in (`--keys-present`).
    left: usize,
}

/// `oathkey provision`.
pub fn run(ctx: &mut Ctx, args: &ProvisionArgs) -> Result<(), Failure> {
    let numbered = read_users(&args.users)?;
    if ctx.role_is_reader() {
        return Err(Failure {
            code: PERMISSION,
            message: "provisioning keys needs an admin".into(),
        });
    }
    // Refuse up front what Azure's upload would refuse, for every user, before any key is
    // touched: a row refused after its key was seeded leaves a token without a row.
    check_rows(args, &numbered)?;
    // The same for the seed file: a key seeded for a row that cannot be written is the failure
    // this command exists to prevent.
    if let Some(problem) = crate::output::seed_file_problem(&args.out, WriteMode::Append) {
        return Err(Failure {
            code: BAD_FILE,
            message: format!("{problem}; no key was touched"),
        });
    }
    let users: Vec<String> = numbered.into_iter().map(|(_, user)| user).collect();
    let algorithm: Algorithm = args.hash.into();
    let done = done_users(&args.out, args.force)?;
    let mut remaining: Vec<String> = users
        .iter()
        .filter(|u| !done.contains(&u.to_ascii_lowercase()))
        .cloned()
        .collect();
    let mut summary = Summary {
        seed_file: args.out.display().to_string(),
        format: Format::AzureCsv.to_string(),
        seeded: Vec::new(),
        restored: Vec::new(),
        already_in_file: users.len() - remaining.len(),
        unsettled: Vec::new(),
        left: 0,
    };
    if remaining.len() < users.len() {
        eprintln!(
            "{} of {} users are already in {}; skipping them.",
            users.len() - remaining.len(),
            users.len(),
            args.out.display()
        );
    }
    ctx.subscribe()?;

    // An earlier run may have been interrupted between writing a token and settling its
    // record; the daemon settles such records when it sees the key. Wait for that, so a user
    // whose token is on a key gets that row back rather than a second key.
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let params = SeedsParams {
            users: Some(remaining.clone()),
            include_incomplete: true,
            ..SeedsParams::default()
        };
        let all = ctx.client().seeds_list(&params)?;
        let unsettled: Vec<_> = all
            .iter()
            .filter(|s| {
                matches!(s.state, SeedState::Pending)
                    || (s.state == SeedState::Written && s.kind == OtpKind::Totp)
            })
            .collect();
        if unsettled.is_empty() {
            break;
        }
        if Instant::now() > settle_deadline {
            for s in &unsettled {
                eprintln!(
                    "{}: an earlier run left serial {} unsettled on key {} (not plugged in?); skipping this user until it is",
                    s.user, s.serial, s.key
                );
                remaining.retain(|u| !u.eq_ignore_ascii_case(&s.user));
                summary.unsettled.push(Row {
                    user: s.user.clone(),
                    key: s.key.clone(),
                    serial: s.serial.clone(),
                });
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Tokens created by an earlier, interrupted run whose rows never reached the file: seeds
    // of these users not yet exported to any file. A seed is marked exported only after its
    // row was appended, so an interrupted run's seed is among them; a seed already written to
    // another file is not (that user gets a new key, as when a key is replaced).
    let params = SeedsParams {
        users: Some(remaining.clone()),
        not_exported: true,
        ..SeedsParams::default()
    };
    let recorded = ctx.client().seeds_export(&params)?;
    for seed in recorded {
        if !remaining
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&seed.info.user))
        {
            continue;
        }
        let record = to_token_record(&seed, args.manufacturer.as_deref(), args.model.as_deref())?;
        append(&args.out, &record, args.force)?;
        let _: usize = ctx.call::<m::SeedsMarkExported>(MarkExportedParams {
            ids: vec![seed.info.id.clone()],
            format: Format::AzureCsv.to_string(),
        })?;
        eprintln!(
            "{}: restored serial {} from the ledger (seeded in an earlier run).",
            seed.info.user, seed.info.serial
        );
        remaining.retain(|u| !u.eq_ignore_ascii_case(&seed.info.user));
        summary.restored.push(Row {
            user: seed.info.user.clone(),
            key: seed.info.key.clone(),
            serial: seed.info.serial.clone(),
        });
    }

    let bar = progress(remaining.len() as u64);
    let mut seeded = BTreeSet::new();
    let mut reported_used = BTreeSet::new();
    let mut present = None;
    let wait = (args.wait > 0).then(|| Duration::from_secs(args.wait));
    let total = remaining.len();
    for (i, user) in remaining.iter().enumerate() {
        let Some(key) = next_key(
            ctx,
            &mut present,
            &seeded,
            &mut reported_used,
            args.allow_used_keys,
            args.keys_present,
            wait,
            user,
            &bar,
        )?
        else {
            bar.finish_and_clear();
            eprintln!(
                "No more keys plugged in; {} user(s) left for the next run.",
                total - i
            );
            summary.left = total - i;
            return ctx.print_summary(&summary);
        };
        bar.set_message(format!("{user} on key {key}"));
        ctx.call::<m::KeysClaim>(KeyParams {
            key: Some(key.clone()),
        })?;
        let result = seed_one(ctx, args, &key, user);
        let _ = ctx.call::<m::KeysRelease>(KeyParams {
            key: Some(key.clone()),
        });
        let (created, model) = result?;
        let record = TokenRecord {
            serial: created.serial.clone(),
            user: created.token.account.clone(),
            secret: oathkey_seedfile::Secret::from_base32(created.secret.expose())
                .map_err(|e| anyhow::anyhow!("the daemon returned an unreadable secret: {e}"))?,
            kind: oathkey_seedfile::Kind::Totp,
            algorithm,
            digits: created.digits,
            period: created.period,
            counter: 0,
            manufacturer: args
                .manufacturer
                .clone()
                .unwrap_or_else(|| manufacturer_for(&model)),
            model: args.model.clone().unwrap_or(model),
        };
        append(&args.out, &record, args.force)?;
        if let Some(id) = &created.seed_id {
            let _: usize = ctx.call::<m::SeedsMarkExported>(MarkExportedParams {
                ids: vec![id.clone()],
                format: Format::AzureCsv.to_string(),
            })?;
        }
        seeded.insert(key.clone());
        summary.seeded.push(Row {
            user: user.clone(),
            key: key.clone(),
            serial: created.serial.clone(),
        });
        bar.inc(1);
        bar.suspend(|| {
            eprintln!(
                "{user}: key {key}, serial {} (verified) -> {}",
                created.serial,
                args.out.display()
            )
        });
        if !args.keys_present && i + 1 < total {
            wait_removed(ctx, &key, wait, &bar)?;
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "Done: {total} key(s) seeded; upload {} to Azure (Entra ID > Protection > Authentication methods > OATH tokens).",
        args.out.display()
    );
    ctx.print_summary(&summary)
}

/// Applies the settings asked for and creates the user's token on `key`.
fn seed_one(
    ctx: &mut Ctx,
    args: &ProvisionArgs,
    key: &str,
    user: &str,
) -> Result<(CreatedToken, String), Failure> {
    let settings = SetConfigParams {
        key: Some(key.into()),
        keyboard: args.keyboard.map(|s| s.enabled()),
        u2f: args.u2f.map(|s| s.enabled()),
        key_press: args.key_press.map(|s| s.enabled()),
    };
    if settings.keyboard.is_some() || settings.u2f.is_some() || settings.key_press.is_some() {
        ctx.call::<m::KeysSetConfig>(settings)?;
    }
    let info: oathkey_protocol::types::KeyInfo = ctx.call::<m::KeysInfo>(KeyParams {
        key: Some(key.into()),
    })?;
    let created: CreatedToken = ctx.call::<m::TokensCreate>(CreateTokenParams {
        key: Some(key.into()),
        account: user.into(),
        serial: None,
        secret: None,
        kind: OtpKind::Totp,
        algorithm: args.hash.into(),
        digits: args.digits,
        period: args.period,
        touch: args.touch,
        counter: 0,
    })?;
    Ok((created, info.model))
}
