//! Stable error codes. The numbers and names are part of the API: clients branch on them, the
//! D-Bus frontend maps them to `org.oathkey.Error.<Name>`, and they never change meaning.

use serde::{Deserialize, Serialize};

/// An error code with a stable number and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The line was not valid JSON.
    ParseError,
    /// The JSON was not a valid JSON-RPC 2.0 request.
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// Wrong or missing parameters.
    InvalidParams,
    /// A bug in the daemon.
    InternalError,
    /// No key with that serial or id.
    KeyNotFound,
    /// The key was unplugged while the request ran.
    KeyRemoved,
    /// No token with that label, serial or account.
    TokenNotFound,
    /// The key was not touched in time.
    TouchTimeout,
    /// The request needs the key's PIN.
    PinRequired,
    /// The PIN was wrong, or is blocked.
    PinInvalid,
    /// The key stayed busy with another application.
    Busy,
    /// The caller's role does not allow this.
    PermissionDenied,
    /// The key cannot do this.
    Unsupported,
    /// Something with that name already exists.
    AlreadyExists,
    /// The key is full.
    NoSpace,
    /// The key misbehaved (protocol error, timeout).
    DeviceError,
    /// Another client claimed the key.
    Claimed,
    /// The request was cancelled.
    Cancelled,
    /// The request line was too long.
    RequestTooLarge,
    /// The key's tokens are locked behind an access code (`keys.unlock`).
    Locked,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 21] = [
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::InternalError,
        Self::KeyNotFound,
        Self::KeyRemoved,
        Self::TokenNotFound,
        Self::TouchTimeout,
        Self::PinRequired,
        Self::PinInvalid,
        Self::Busy,
        Self::PermissionDenied,
        Self::Unsupported,
        Self::AlreadyExists,
        Self::NoSpace,
        Self::DeviceError,
        Self::Claimed,
        Self::Cancelled,
        Self::RequestTooLarge,
        Self::Locked,
    ];

    /// The number on the wire (JSON-RPC reserves -32768..-32000; ours are -32000 and below
    /// down to -32099, the range JSON-RPC leaves to implementations).
    pub const fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::KeyNotFound => -32001,
            Self::KeyRemoved => -32002,
            Self::TokenNotFound => -32003,
            Self::TouchTimeout => -32004,
            Self::PinRequired => -32005,
            Self::PinInvalid => -32006,
            Self::Busy => -32007,
            Self::PermissionDenied => -32008,
            Self::Unsupported => -32009,
            Self::AlreadyExists => -32010,
            Self::NoSpace => -32011,
            Self::DeviceError => -32012,
            Self::Claimed => -32013,
            Self::Cancelled => -32014,
            Self::RequestTooLarge => -32015,
            Self::Locked => -32016,
        }
    }

    /// The stable name (also the D-Bus error name's last part).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ParseError => "ParseError",
            Self::InvalidRequest => "InvalidRequest",
            Self::MethodNotFound => "MethodNotFound",
            Self::InvalidParams => "InvalidParams",
            Self::InternalError => "InternalError",
            Self::KeyNotFound => "KeyNotFound",
            Self::KeyRemoved => "KeyRemoved",
            Self::TokenNotFound => "TokenNotFound",
            Self::TouchTimeout => "TouchTimeout",
            Self::PinRequired => "PinRequired",
            Self::PinInvalid => "PinInvalid",
            Self::Busy => "Busy",
            Self::PermissionDenied => "PermissionDenied",
            Self::Unsupported => "Unsupported",
            Self::AlreadyExists => "AlreadyExists",
            Self::NoSpace => "NoSpace",
            Self::DeviceError => "DeviceError",
            Self::Claimed => "Claimed",
            Self::Cancelled => "Cancelled",
            Self::RequestTooLarge => "RequestTooLarge",
            Self::Locked => "Locked",
        }
    }

    /// The code with this number.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The code with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl From<ErrorCode> for i64 {
    fn from(c: ErrorCode) -> i64 {
        c.code()
    }
}

impl TryFrom<i64> for ErrorCode {
    type Error = String;

    fn try_from(n: i64) -> Result<Self, String> {
        Self::from_code(n).ok_or_else(|| format!("unknown error code {n}"))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let codes: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        let names: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
            let json = serde_json::to_string(&c).expect("encodes");
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&json).expect("decodes"),
                c
            );
        }
        assert_eq!(ErrorCode::from_code(12), None);
    }

    #[test]
    fn application_codes_stay_in_the_implementation_range() {
        for c in ErrorCode::ALL {
            let n = c.code();
            assert!(
                (-32099..=-32000).contains(&n) || (-32768..=-32600).contains(&n),
                "{c}: {n}"
            );
        }
    }
}
