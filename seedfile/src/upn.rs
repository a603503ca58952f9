//! The one rule for user principal names: [`upn_problem`]. `oathkey provision` checks its
//! users file with it, the Azure target's rules check every row with it, and `oathkey token
//! new` warns with it (through [`export_refusals`]), so the three agree on what a UPN is.
//!
//! A UPN is `name@domain`. Entra ID's user name policy allows A-Z, a-z, 0-9 and
//! `' . - _ ! # ^ ~` before the `@`, no `.` or `-` first or right before the `@`, at most 64
//! characters before it and 113 in all; the domain is a DNS name (letters, digits and `-` in dot-separated parts,
//! at least two parts). Guest accounts are UPNs too: `alice_contoso.com#EXT#@fabrikam.onmicrosoft.com`
//! has only allowed characters. That Azure gives no hardware OATH token to a guest is a rule
//! of the Azure target ([`is_guest`]), not of UPNs.

use crate::cells::hidden_char_problem;
use crate::format::Format;
use crate::record::{Secret, TokenRecord};
use crate::validate::shown;
use crate::write::{RenderError, render_checked};

/// Most characters Entra takes in a UPN.
pub const MAX_UPN: usize = 113;

/// Most characters Entra takes before the `@` of a UPN.
pub const MAX_UPN_NAME: usize = 64;

/// Why `upn` is not a user principal name, or `None` when it is one. The reason quotes the
/// UPN (escaped, cut at 64 characters) and says what to change.
pub fn upn_problem(upn: &str) -> Option<String> {
    if let Some(reason) = hidden_char_problem("upn", upn) {
        return Some(reason);
    }
    let not = |why: String| {
        Some(format!(
            "upn {} is not a user principal name: {why}",
            shown(upn)
        ))
    };
    let shape = || {
        Some(format!(
            "upn {} is not a user principal name (name@domain.tld, no spaces)",
            shown(upn)
        ))
    };
    if upn.contains(char::is_whitespace) {
        return shape();
    }
    let Some((name, domain)) = upn.split_once('@') else {
        return shape();
    };
    let parts: Vec<&str> = domain.split('.').collect();
    if name.is_empty() || domain.contains('@') || parts.len() < 2 || parts.contains(&"") {
        return shape();
    }
    if let Some(c) = name.chars().find(|&c| !name_char(c)) {
        return not(format!(
            "'{c}' is not allowed (Entra allows A-Z, a-z, 0-9 and ' . - _ ! # ^ ~ before the @)"
        ));
    }
    if name.ends_with('.') {
        return not("a '.' cannot come right before the @".into());
    }
    // Microsoft's user name rules allow '.' and '-' anywhere but first and last; a '-' first
    // would also make the UPN a formula in a spreadsheet.
    if let Some(c) = name.chars().next().filter(|c| matches!(c, '.' | '-')) {
        return not(format!("the name cannot start with '{c}'"));
    }
    if name.ends_with('-') {
        return not("a '-' cannot come right before the @".into());
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return not(format!(
            "'{c}' is not allowed in the domain (letters, digits, '-' and '.')"
        ));
    }
    if parts.iter().any(|p| p.starts_with('-') || p.ends_with('-')) {
        return not("a part of the domain cannot start or end with '-'".into());
    }
    let name_len = name.chars().count();
    if name_len > MAX_UPN_NAME {
        return not(format!(
            "{name_len} characters before the @; Entra allows at most {MAX_UPN_NAME}"
        ));
    }
    let len = upn.chars().count();
    if len > MAX_UPN {
        return not(format!("{len} characters; Entra allows at most {MAX_UPN}"));
    }
    None
}

/// Whether Entra allows `c` before the `@` of a UPN.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '\'' | '.' | '-' | '_' | '!' | '#' | '^' | '~')
}

/// Whether `upn` is a guest account's UPN (`#EXT#` before the `@`, any case), which Azure
/// gives no hardware OATH token: "Hardware OATH tokens can't be assigned to guest users in the
/// resource tenant" (Microsoft Entra documentation, upload OATH tokens in CSV format).
pub fn is_guest(upn: &str) -> bool {
    upn.to_ascii_uppercase().contains("#EXT#@")
}

/// The export formats whose files would refuse `record`, with why: [`RenderError::Rejected`]
/// when `--force` writes it anyway, [`RenderError::Other`] (without the serial in front) when
/// nothing does. In [`Format::ALL`] order; empty when every format takes it. `oathkey token
/// new` shows these at once for the token it makes, instead of `export` failing later.
pub fn export_refusals(record: &TokenRecord) -> Vec<(Format, RenderError)> {
    let records = std::slice::from_ref(record);
    // A reason the writer gives is about this record, whose serial the caller knows.
    let bare = |error: RenderError| match error {
        RenderError::Other(reason) => RenderError::Other(
            reason
                .strip_prefix(&format!("serial {}: ", record.serial))
                .map_or(reason.clone(), str::to_owned),
        ),
        rejected => rejected,
    };
    Format::ALL
        .into_iter()
        .filter_map(|format| match render_checked(format, records, false) {
            Ok(_) => None,
            Err(RenderError::Rejected(problems)) => Some((
                format,
                match render_checked(format, records, true) {
                    Err(other @ RenderError::Other(_)) => bare(other),
                    _ => RenderError::Rejected(problems),
                },
            )),
            Err(other) => Some((format, bare(other))),
        })
        .collect()
}

/// A token for `user` with settings every format takes (TOTP, SHA-1, 6 digits, 30 s, a 160-bit
/// secret, manufacturer and model), for [`export_refusals`] to judge the user alone; change
/// its other fields to judge them too.
pub fn probe_record(user: &str) -> TokenRecord {
    let mut probe = TokenRecord::totp("0000001", user, Secret::new(vec![0x5a; 20]));
    probe.manufacturer = "oathkey".into();
    probe.model = "OTP key".into();
    probe
}
