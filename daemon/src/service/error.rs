//! The service's errors: a stable code and a message that says what to do, and how device
//! and ledger errors become one.

use oathkey_device::Error as DeviceError;
use oathkey_protocol::ErrorCode;

use crate::ledger::LedgerError;

/// An error for a client: a stable code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// Stable code.
    pub code: ErrorCode,
    /// Message for people.
    pub message: String,
}

impl ServiceError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }
}

impl From<ServiceError> for oathkey_protocol::jsonrpc::ErrorObject {
    fn from(e: ServiceError) -> Self {
        Self::new(e.code, e.message)
    }
}

/// Maps a device error to a client error, naming the key.
pub fn device_error(key: &str, e: DeviceError) -> ServiceError {
    let code = match &e {
        DeviceError::Removed => ErrorCode::KeyRemoved,
        DeviceError::TouchTimeout => ErrorCode::TouchTimeout,
        DeviceError::PinRequired | DeviceError::PinNotSet => ErrorCode::PinRequired,
        DeviceError::Locked => ErrorCode::Locked,
        DeviceError::WrongPin { .. }
        | DeviceError::PinBlocked
        | DeviceError::PinAlreadySet
        | DeviceError::WrongAccessCode => ErrorCode::PinInvalid,
        // Held by another application: the same "try again later" as our own busy key.
        DeviceError::Busy(_) | DeviceError::HeldExclusively { .. } => ErrorCode::Busy,
        DeviceError::AlreadyExists => ErrorCode::AlreadyExists,
        DeviceError::NoSpace => ErrorCode::NoSpace,
        DeviceError::Unsupported(_) => ErrorCode::Unsupported,
        DeviceError::NotFound => ErrorCode::TokenNotFound,
        DeviceError::Cancelled => ErrorCode::Cancelled,
        DeviceError::InvalidArgument(_) | DeviceError::Config { .. } => ErrorCode::InvalidParams,
        _ => ErrorCode::DeviceError,
    };
    let message = match &e {
        DeviceError::Removed => format!("key {key} was removed"),
        DeviceError::TouchTimeout => {
            format!("key {key} was not touched in time; touch it when it blinks")
        }
        other => format!("key {key}: {other}"),
    };
    ServiceError::new(code, message)
}

pub(super) fn ledger_error(e: LedgerError) -> ServiceError {
    ServiceError::new(ErrorCode::InternalError, e.to_string())
}

/// Adds what the failed ledger write means for the key to its error.
pub(super) fn ledger_context(what: &'static str) -> impl FnOnce(ServiceError) -> ServiceError {
    move |e| ServiceError::new(e.code, format!("{}; {what}", e.message))
}
