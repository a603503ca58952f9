//! The keys: their registry, one actor per key, and the sources that find them.

pub mod actor;
pub mod registry;
pub mod sources;

pub use actor::{ActorHandle, DynKey, Health};
pub use registry::{KeyEntry, Registry, TouchTurn};
