//! Every method, once: its wire name, whether only admins may call it, its params and its
//! result. The daemon's dispatcher and every client ([`crate::Client::request`]) go through
//! these, so a method's name and its types cannot drift apart: a call with the wrong params, or
//! an answer read as the wrong type, does not compile.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::types;

/// A JSON-RPC method of the daemon.
pub trait Method {
    /// The name on the wire.
    const NAME: &'static str;
    /// Whether only admins may call it.
    const ADMIN: bool;
    /// Its params (an object, or [`NoParams`]).
    type Params: Serialize + DeserializeOwned + Send + 'static;
    /// Its result (`()` for `null`).
    type Result: Serialize + DeserializeOwned + Send + 'static;
}

/// The params of a method that takes none: absent, `null`, `{}` or `[]` on the wire (sent as
/// absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoParams;

impl Serialize for NoParams {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Nothing;
        impl<'de> Visitor<'de> for Nothing {
            type Value = NoParams;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("no params (absent, null, {} or [])")
            }

            fn visit_unit<E>(self) -> Result<NoParams, E> {
                Ok(NoParams)
            }

            fn visit_none<E>(self) -> Result<NoParams, E> {
                Ok(NoParams)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoParams, A::Error> {
                match map.next_key::<de::IgnoredAny>()? {
                    None => Ok(NoParams),
                    Some(_) => Err(de::Error::custom("this method takes no params")),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoParams, A::Error> {
                match seq.next_element::<de::IgnoredAny>()? {
                    None => Ok(NoParams),
                    Some(_) => Err(de::Error::custom("this method takes no params")),
                }
            }
        }
        d.deserialize_any(Nothing)
    }
}

macro_rules! role {
    (admin) => {
        true
    };
    (reader) => {
        false
    };
}

macro_rules! methods {
    ($($(#[doc = $doc:literal])* $ty:ident = $name:literal, $role:ident: $params:ty => $result:ty;)*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $ty;

            impl Method for $ty {
                const NAME: &'static str = $name;
                const ADMIN: bool = role!($role);
                type Params = $params;
                type Result = $result;
            }
        )*

        /// Every method as `(name, admin only)`, in the order of docs/protocol.md.
        pub const ALL: &[(&str, bool)] = &[$(($name, role!($role))),*];
    };
}

methods! {
    /// Versions and the caller's role.
    Hello = "hello", reader: NoParams => types::Hello;
    /// Keys present, and devices found that cannot be used.
    KeysList = "keys.list", reader: NoParams => types::KeyList;
    /// One key.
    KeysInfo = "keys.info", reader: types::KeyParams => types::KeyInfo;
    /// Blink a key.
    KeysWink = "keys.wink", reader: types::KeyParams => ();
    /// Mode and Key Press.
    KeysGetConfig = "keys.get_config", reader: types::KeyParams => types::Settings;
    /// Change Mode and Key Press.
    KeysSetConfig = "keys.set_config", admin: types::SetConfigParams => types::Settings;
    /// Claim a key for a multi-step job.
    KeysClaim = "keys.claim", admin: types::KeyParams => ();
    /// Release a claim.
    KeysRelease = "keys.release", reader: types::KeyParams => ();
    /// Unlock a key's tokens with its access code.
    KeysUnlock = "keys.unlock", admin: types::UnlockParams => ();
    /// Set or clear a key's access code.
    KeysSetAccessCode = "keys.set_access_code", admin: types::AccessCodeParams => ();
    /// Tokens on one or all keys.
    TokensList = "tokens.list", reader: types::KeyParams => Vec<types::TokenInfo>;
    /// Create a token (the admin tool's New Token, Generate, Save).
    TokensCreate = "tokens.create", admin: types::CreateTokenParams => types::CreatedToken;
    /// Delete a token.
    TokensDelete = "tokens.delete", admin: types::TokenParams => ();
    /// Rename a token (its account), keeping its seed; the token as it is now.
    TokensRename = "tokens.rename", admin: types::RenameParams => types::TokenInfo;
    /// One code.
    CodesGet = "codes.get", reader: types::CodeParams => types::Code;
    /// Codes of every token.
    CodesAll = "codes.all", reader: types::CodesParams => Vec<types::CodeEntry>;
    /// Start receiving `event` notifications on this connection.
    EventsSubscribe = "events.subscribe", reader: NoParams => ();
    /// Seed records without secrets.
    SeedsList = "seeds.list", admin: types::SeedsParams => Vec<types::SeedInfo>;
    /// Seed records with their secrets, for a seed file.
    SeedsExport = "seeds.export", admin: types::SeedsParams => Vec<types::SeedRecord>;
    /// Record that seeds were written to a seed file; the number of records marked.
    SeedsMarkExported = "seeds.mark_exported", admin: types::MarkExportedParams => usize;
    /// Delete exported or stale seeds from the ledger; the number deleted.
    SeedsPurge = "seeds.purge", admin: types::PurgeParams => usize;
    /// Unplug an in-process virtual key.
    VirtualUnplug = "virtual.unplug", admin: types::KeyParams => ();
    /// Plug an unplugged virtual key back in; its id.
    VirtualPlug = "virtual.plug", admin: types::KeyParams => String;
    /// Press a virtual key's button; whether a request was waiting for it.
    VirtualPress = "virtual.press", admin: types::KeyParams => bool;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_params_is_absent_null_or_empty_and_nothing_else() {
        for ok in [json!(null), json!({}), json!([])] {
            assert_eq!(serde_json::from_value::<NoParams>(ok).ok(), Some(NoParams));
        }
        for bad in [json!({"a": 1}), json!([1]), json!(1), json!("x")] {
            assert!(serde_json::from_value::<NoParams>(bad).is_err());
        }
        assert_eq!(
            serde_json::to_value(NoParams).expect("encodes"),
            json!(null)
        );
    }

    #[test]
    fn every_method_is_listed_once() {
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(before, 24);
    }
}
