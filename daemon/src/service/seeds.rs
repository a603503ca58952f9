//! The seeds API for admins: list, export (with secrets), mark exported, purge.

use oathkey_protocol::types::{MarkExportedParams, PurgeParams, SeedInfo, SeedRecord, SeedsParams};
use tracing::info;

use super::{Result, Service, ServiceError};
use crate::auth::Caller;

impl Service {
    pub(super) fn select_seeds(&self, p: &SeedsParams) -> Vec<SeedRecord> {
        self.ledger
            .records()
            .into_iter()
            .filter(|r| p.include_incomplete || p.stale || r.info.state.exportable())
            .filter(|r| !p.stale || r.info.state.stale())
            .filter(|r| !p.not_exported || r.info.exported_at.is_none())
            .filter(|r| {
                p.serials
                    .as_ref()
                    .is_none_or(|s| s.contains(&r.info.serial))
            })
            .filter(|r| {
                p.users
                    .as_ref()
                    .is_none_or(|u| u.iter().any(|u| u.eq_ignore_ascii_case(&r.info.user)))
            })
            .collect()
    }

    /// `seeds.list` (admin): records without secrets.
    pub fn seeds_list(&self, caller: &Caller, p: SeedsParams) -> Result<Vec<SeedInfo>> {
        Self::require_admin(caller, "reading the seed ledger")?;
        Ok(self.select_seeds(&p).into_iter().map(|r| r.info).collect())
    }

    /// `seeds.export` (admin): records with secrets.
    pub fn seeds_export(&self, caller: &Caller, p: SeedsParams) -> Result<Vec<SeedRecord>> {
        Self::require_admin(caller, "exporting seeds")?;
        let records = self.select_seeds(&p);
        info!(count = records.len(), uid = ?caller.uid, "seeds exported to an admin");
        Ok(records)
    }

    /// `seeds.mark_exported` (admin).
    pub async fn seeds_mark_exported(
        &self,
        caller: &Caller,
        p: MarkExportedParams,
    ) -> Result<usize> {
        Self::require_admin(caller, "marking seeds exported")?;
        self.ledger_do(move |l| l.mark_exported(&p.ids, &p.format))
            .await
    }

    /// `seeds.purge` (admin): deletes exported seeds and/or seeds no key holds; a seed a key
    /// may hold is never deleted before it was exported.
    pub async fn seeds_purge(&self, caller: &Caller, p: PurgeParams) -> Result<usize> {
        Self::require_admin(caller, "purging seeds")?;
        if !p.exported && !p.stale {
            return Err(ServiceError::params(
                "say which seeds to purge: exported = true (seeds already in a seed file) and/or stale = true (seeds no key holds)",
            ));
        }
        self.ledger_do(move |l| {
            l.purge(|info| {
                (p.exported && info.exported_at.is_some()) || (p.stale && info.state.stale())
            })
        })
        .await
    }
}
