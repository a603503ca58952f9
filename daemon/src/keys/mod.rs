//! The keys: their registry, one actor per key, and the sources that find them (hidapi
//! polling, PC/SC events in [`pcsc`], virtual keys).

pub mod actor;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod registry;
pub mod sources;

pub use actor::{ActorHandle, DynKey, Health};
pub use registry::{KeyEntry, Registry, TouchTurn};
