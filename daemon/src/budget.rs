//! How many socket connections each caller may hold.
//!
//! One reader opening a thousand idle connections must not lock everyone else out. So a reader
//! (per uid) holds at most `per_user` connections, all readers together at most
//! `max_clients - admin_reserved`, and the rest stays for admins: root's `oathkey code` or
//! `token new` always finds a slot. Admins count against the total only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oathkey_protocol::types::Role;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Most connections at once.
    pub max_clients: usize,
    /// Most connections one reader uid may hold.
    pub per_user: usize,
    /// Connections only admins may take.
    pub admin_reserved: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every slot is taken.
    #[error("too many clients ({0}); try again later")]
    Full(usize),
    /// Every slot readers may take is taken; the rest are kept for admins.
    #[error(
        "too many clients: the {0} connections readers may hold are taken (the rest are kept for admins); try again later"
    )]
    ReadersFull(usize),
    /// This user holds too many connections.
    #[error(
        "your user already holds {0} connections to oathkeyd, the most one user may; close some and try again"
    )]
    UserFull(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    readers: usize,
    per_uid: HashMap<Option<u32>, usize>,
}

/// The connections held now.
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    counts: Mutex<Counts>,
}

/// One admitted connection; its slot is given back when dropped.
#[derive(Debug)]
pub struct Slot {
    budget: Arc<Budget>,
    /// `Some(uid)` for a reader's slot.
    reader: Option<Option<u32>>,
}

impl Budget {
    /// A budget with `limits`.
    pub fn new(limits: BudgetLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
        })
    }

    /// Takes a slot for a connection of `uid` with `role`.
    pub fn admit(self: &Arc<Self>, uid: Option<u32>, role: Role) -> Result<Slot, Refused> {
        let l = self.limits;
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= l.max_clients {
            return Err(Refused::Full(l.max_clients));
        }
        let reader = match role {
            Role::Admin => None,
            Role::Reader => {
                let readers_max = l.max_clients.saturating_sub(l.admin_reserved).max(1);
                if c.readers >= readers_max {
                    return Err(Refused::ReadersFull(readers_max));
                }
                let mine = c.per_uid.get(&uid).copied().unwrap_or(0);
                if mine >= l.per_user {
                    return Err(Refused::UserFull(l.per_user));
                }
                *c.per_uid.entry(uid).or_default() += 1;
                c.readers += 1;
                Some(uid)
            }
        };
        c.total += 1;
        Ok(Slot {
            budget: self.clone(),
            reader,
        })
    }

    /// Connections held now (total, readers).
    pub fn held(&self) -> (usize, usize) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        (c.total, c.readers)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.budget.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(uid) = self.reader {
            c.readers -= 1;
            if let Some(n) = c.per_uid.get_mut(&uid) {
                *n -= 1;
                if *n == 0 {
                    c.per_uid.remove(&uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Arc<Budget> {
        Budget::new(BudgetLimits {
            max_clients: 10,
            per_user: 3,
            admin_reserved: 4,
        })
    }

    #[test]
    fn one_reader_cannot_take_more_than_its_share() {
        let b = budget();
        let mine: Vec<Slot> = (0..3)
            .map(|_| b.admit(Some(1000), Role::Reader).expect("within the share"))
            .collect();
        assert_eq!(
            b.admit(Some(1000), Role::Reader).map(|_| ()),
            Err(Refused::UserFull(3))
        );
        // Another reader is not affected.
        let other = b.admit(Some(1001), Role::Reader).expect("another uid");
        drop(mine);
        assert!(b.admit(Some(1000), Role::Reader).is_ok(), "slots come back");
        drop(other);
        assert_eq!(b.held(), (0, 0));
    }

    #[test]
    fn readers_together_leave_room_for_admins() {
        let b = budget();
        let readers: Vec<Slot> = (0..6)
            .map(|uid| b.admit(Some(uid), Role::Reader).expect("reader"))
            .collect();
        assert_eq!(
            b.admit(Some(99), Role::Reader).map(|_| ()),
            Err(Refused::ReadersFull(6))
        );
        let admins: Vec<Slot> = (0..4)
            .map(|_| b.admit(Some(0), Role::Admin).expect("admin, reserved"))
            .collect();
        assert_eq!(
            b.admit(Some(0), Role::Admin).map(|_| ()),
            Err(Refused::Full(10))
        );
        assert_eq!(b.held(), (10, 6));
        drop(readers);
        drop(admins);
        assert_eq!(b.held(), (0, 0));
    }

    #[test]
    fn admins_are_not_held_to_a_per_user_share() {
        let b = budget();
        let admins: Vec<Slot> = (0..10)
            .map(|_| b.admit(Some(0), Role::Admin).expect("admin"))
            .collect();
        assert_eq!(admins.len(), 10);
    }
}
