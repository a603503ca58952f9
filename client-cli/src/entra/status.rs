//! `oathkey entra status`: Entra's tokens (every page) beside the ledger's seeds (without
//! secrets: `seeds.list`), matched by serial, each with one line of advice.

use std::collections::BTreeMap;

use oathkey_entra::{HardwareOathToken, TokenStatus};
use oathkey_protocol::types::SeedsParams;
use serde::Serialize;

use super::{Settings, failure, graph};
use crate::cli::Cli;
use crate::commands::Ctx;
use crate::exit::Failure;
use crate::out::outln;
use crate::table::Table;

/// One line of the status.
#[derive(Debug, Serialize)]
struct Line {
    serial: String,
    /// The ledger's user, if the ledger has the seed.
    upn: Option<String>,
    in_ledger: bool,
    in_entra: bool,
    /// Entra's status (`available`, `assigned`, `activated`, `failedActivation`).
    status: Option<String>,
    /// Who Entra assigned it to (display name, else object id).
    assigned_to: Option<String>,
    advice: &'static str,
}

fn status_name(s: Option<TokenStatus>) -> Option<String> {
    s.map(|s| match s {
        TokenStatus::Available => "available".into(),
        TokenStatus::Assigned => "assigned".into(),
        TokenStatus::Activated => "activated".into(),
        TokenStatus::FailedActivation => "failedActivation".into(),
        _ => "unknown".into(),
    })
}

fn advice(in_ledger: bool, t: Option<&HardwareOathToken>) -> &'static str {
    match (in_ledger, t.and_then(|t| t.status)) {
        (true, None) if t.is_none() => "not in Entra: run `oathkey entra upload`",
        (true, Some(TokenStatus::Activated)) => "nothing to do",
        (true, Some(TokenStatus::Available)) => {
            "not assigned: run `oathkey entra upload` to assign it to its user"
        }
        (true, Some(TokenStatus::Assigned)) => {
            "not activated: plug the key in and run `oathkey entra upload --activate`"
        }
        (true, Some(TokenStatus::FailedActivation)) => {
            "activation failed: check the computer's clock, then `oathkey entra upload --activate`"
        }
        (true, _) => "unknown state in Entra: check the token in the Entra admin center",
        (false, _) => {
            "not in this ledger (seeded elsewhere, or purged): leave it, or unassign and delete it in Entra if the key is gone"
        }
    }
}

/// `oathkey entra status`.
pub fn run(cli: &Cli, settings: &Settings) -> Result<(), Failure> {
    let mut ctx = Ctx::connect(cli)?;
    ctx.require_admin("comparing the ledger with Entra")?;
    let seeds = ctx.client().seeds_list(&SeedsParams::default())?;
    let graph = graph(settings)?;
    let mut entra: BTreeMap<String, HardwareOathToken> = graph
        .list_tokens()
        .map_err(failure)?
        .into_iter()
        .filter_map(|t| t.serial_number.clone().map(|s| (s, t)))
        .collect();
    let mut lines = Vec::new();
    for s in &seeds {
        let t = entra.remove(&s.serial);
        lines.push(Line {
            serial: s.serial.clone(),
            upn: Some(s.user.clone()),
            in_ledger: true,
            in_entra: t.is_some(),
            status: status_name(t.as_ref().and_then(|t| t.status)),
            assigned_to: t.as_ref().and_then(assignee),
            advice: advice(true, t.as_ref()),
        });
    }
    for (serial, t) in entra {
        lines.push(Line {
            serial,
            upn: None,
            in_ledger: false,
            in_entra: true,
            status: status_name(t.status),
            assigned_to: assignee(&t),
            advice: advice(false, Some(&t)),
        });
    }
    if cli.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "tokens": lines }))
            .map_err(|e| Failure::from(anyhow::Error::from(e)))?;
        outln!("{text}");
        return Ok(());
    }
    if lines.is_empty() {
        eprintln!("No tokens in the ledger or in Entra.");
        return Ok(());
    }
    let mut table = Table::new([
        "SERIAL", "USER", "LEDGER", "ENTRA", "STATUS", "ASSIGNED", "ADVICE",
    ]);
    let dash = || "-".to_owned();
    for l in &lines {
        table.row([
            l.serial.clone(),
            l.upn.clone().unwrap_or_else(dash),
            if l.in_ledger { "yes" } else { "no" }.into(),
            if l.in_entra { "yes" } else { "no" }.into(),
            l.status.clone().unwrap_or_else(dash),
            l.assigned_to.clone().unwrap_or_else(dash),
            l.advice.into(),
        ]);
    }
    outln!("{table}");
    Ok(())
}

fn assignee(t: &HardwareOathToken) -> Option<String> {
    t.assigned_to
        .as_ref()
        .and_then(|a| a.display_name.clone().or_else(|| a.id.clone()))
}
