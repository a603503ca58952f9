//! Exporting seeds from oathkeyd's ledger to a seed file: the one code path the CLI
//! (`oathkey export`, `oathkey provision`) and the desktop app's admin view share.
//!
//! Fetch the records (admin only), turn them into [`TokenRecord`]s, write the file (0600,
//! atomically, refusing rows the target would reject unless forced), and only then tell the
//! daemon they were exported, so that `seeds purge --exported` can never delete a seed that did
//! not reach a file.

use std::path::Path;

use oathkey_protocol::client::{Client, ClientError};
use oathkey_protocol::types::{OtpKind, SeedRecord, SeedsParams};

use crate::{FileError, Format, Kind, Problem, Secret, TokenRecord, WriteMode};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Talking to the daemon failed.
    #[error(transparent)]
    Daemon(#[from] ClientError),
    /// Writing the file failed (or the target would reject rows).
    #[error(transparent)]
    File(#[from] FileError),
    /// A record in the ledger could not be read.
    #[error("seed {serial} in the ledger is unreadable: {reason}")]
    Record {
        /// The token serial.
        serial: String,
        /// What is wrong.
        reason: String,
    },
}

/// What goes into the manufacturer and model columns.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Manufacturer; by default derived from the key model.
    pub manufacturer: Option<String>,
    /// Model; by default the key's model.
    pub model: Option<String>,
}

/// The manufacturer column for a key model.
pub fn manufacturer_for(model: &str) -> String {
    if model.to_ascii_lowercase().contains("nitrokey") {
        "Nitrokey".into()
    } else {
        "oathkey".into()
    }
}

/// A ledger record as a seed-file record.
pub fn to_token_record(r: &SeedRecord, labels: &Labels) -> Result<TokenRecord, ExportError> {
    let key_model = r.info.model.clone().unwrap_or_else(|| "OTP key".into());
    Ok(TokenRecord {
        serial: r.info.serial.clone(),
        user: r.info.user.clone(),
        secret: Secret::from_base32(r.secret.expose()).map_err(|reason| ExportError::Record {
            serial: r.info.serial.clone(),
            reason,
        })?,
        kind: match r.info.kind {
            OtpKind::Hotp => Kind::Hotp,
            _ => Kind::Totp,
        },
        // The ledger's hash is the seed file's: one type (`oathkey-otp`).
        algorithm: r.info.algorithm,
        digits: r.info.digits,
        period: r.info.period,
        counter: u64::from(r.info.counter),
        manufacturer: labels
            .manufacturer
            .clone()
            .unwrap_or_else(|| manufacturer_for(&key_model)),
        model: labels.model.clone().unwrap_or(key_model),
    })
}

/// What an export did.
#[derive(Debug)]
pub struct Exported {
    /// The records written (secrets included; callers may need them for QR codes).
    pub records: Vec<TokenRecord>,
    /// The problems of rows written only because of `force` (the target will reject them),
    /// with their lines in the file: show them as warnings.
    pub forced: Vec<Problem>,
}

/// Fetches the seeds `params` selects and writes them to `path`; marks them exported only once
/// the file is safely written. Nothing matching is not an error: the file is left alone.
pub fn export_to_file(
    client: &mut Client,
    params: SeedsParams,
    format: Format,
    path: &Path,
    mode: WriteMode,
    force: bool,
    labels: &Labels,
) -> Result<Exported, ExportError> {
    let seeds = client.seeds_export(&params)?;
    if seeds.is_empty() {
        return Ok(Exported {
            records: Vec::new(),
            forced: Vec::new(),
        });
    }
    let records = seeds
        .iter()
        .map(|r| to_token_record(r, labels))
        .collect::<Result<Vec<_>, _>>()?;
    let forced = crate::write_file(path, format, &records, mode, force)?;
    mark_exported(client, &seeds, format)?;
    Ok(Exported { records, forced })
}

/// Tells the daemon that these seeds reached a file of `format`.
pub fn mark_exported(
    client: &mut Client,
    seeds: &[SeedRecord],
    format: Format,
) -> Result<usize, ExportError> {
    let ids: Vec<String> = seeds.iter().map(|r| r.info.id.clone()).collect();
    Ok(client.mark_exported(&ids, &format.to_string())?)
}
