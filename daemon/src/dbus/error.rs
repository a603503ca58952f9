//! The daemon's stable error codes as named D-Bus errors: `org.oathkey.Error.<Name>`, the same
//! names the JSON-RPC frontend puts in `error.data.name`.

use oathkey_protocol::ErrorCode;

use crate::service::ServiceError;

/// Prefix of every oathkey D-Bus error name.
pub const PREFIX: &str = "org.oathkey.Error";

/// A D-Bus error reply. One variant per [`ErrorCode`], each carrying the message.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.oathkey.Error")]
#[allow(missing_docs)]
pub enum DbusError {
    #[zbus(error)]
    ZBus(zbus::Error),
    ParseError(String),
    InvalidRequest(String),
    MethodNotFound(String),
    InvalidParams(String),
    InternalError(String),
    KeyNotFound(String),
    KeyRemoved(String),
    TokenNotFound(String),
    TouchTimeout(String),
    PinRequired(String),
    PinInvalid(String),
    Busy(String),
    PermissionDenied(String),
    Unsupported(String),
    AlreadyExists(String),
    NoSpace(String),
    DeviceError(String),
    Claimed(String),
    Cancelled(String),
    RequestTooLarge(String),
    Locked(String),
}

impl From<ServiceError> for DbusError {
    fn from(e: ServiceError) -> Self {
        let m = e.message;
        match e.code {
            ErrorCode::ParseError => Self::ParseError(m),
            ErrorCode::InvalidRequest => Self::InvalidRequest(m),
            ErrorCode::MethodNotFound => Self::MethodNotFound(m),
            ErrorCode::InvalidParams => Self::InvalidParams(m),
            ErrorCode::KeyNotFound => Self::KeyNotFound(m),
            ErrorCode::KeyRemoved => Self::KeyRemoved(m),
            ErrorCode::TokenNotFound => Self::TokenNotFound(m),
            ErrorCode::TouchTimeout => Self::TouchTimeout(m),
            ErrorCode::PinRequired => Self::PinRequired(m),
            ErrorCode::PinInvalid => Self::PinInvalid(m),
            ErrorCode::Busy => Self::Busy(m),
            ErrorCode::PermissionDenied => Self::PermissionDenied(m),
            ErrorCode::Unsupported => Self::Unsupported(m),
            ErrorCode::AlreadyExists => Self::AlreadyExists(m),
            ErrorCode::NoSpace => Self::NoSpace(m),
            ErrorCode::DeviceError => Self::DeviceError(m),
            ErrorCode::Claimed => Self::Claimed(m),
            ErrorCode::Cancelled => Self::Cancelled(m),
            ErrorCode::RequestTooLarge => Self::RequestTooLarge(m),
            ErrorCode::Locked => Self::Locked(m),
            // InternalError, and any code a newer protocol crate adds before this map learns it.
            _ => Self::InternalError(m),
        }
    }
}

impl From<zbus::fdo::Error> for DbusError {
    fn from(e: zbus::fdo::Error) -> Self {
        Self::ZBus(e.into())
    }
}

impl DbusError {
    /// A permission error (polkit said no, or the caller is not an admin).
    pub fn denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::DBusError as _;

    #[test]
    fn every_error_code_has_its_named_dbus_error() {
        for code in ErrorCode::ALL {
            let e = DbusError::from(ServiceError::new(code, "why"));
            assert_eq!(e.name().as_str(), format!("{PREFIX}.{}", code.name()));
            assert_eq!(e.description(), Some("why"));
        }
    }
}
