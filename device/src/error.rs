//! Typed errors for everything that can go wrong talking to a key.

use std::time::Duration;

use crate::apdu::StatusWord;
use crate::ctaphid::wire::{FrameError, err};
use crate::transport::TransportError;

/// An error from a key or from the way to it.
///
/// The variants are the distinctions a caller acts on: retry later (busy), ask the user to
/// touch or replug, ask for a PIN, or report a broken device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key was unplugged.
    #[error("the key was removed")]
    Removed,
    /// The operating system would not let us open or use the device.
    #[error("{0}")]
    Transport(String),
    /// The key did not answer in time.
    #[error("the key did not answer within {0:?}")]
    Timeout(Duration),
    /// Another application kept the key busy for longer than we retry.
    #[error("the key stayed busy with another application for {0:?}")]
    Busy(Duration),
    /// The key answered with a CTAPHID ERROR.
    #[error("the key reported CTAPHID error {} ({code:#04x})", ctaphid_error_name(*.code))]
    Ctaphid {
        /// The error code byte.
        code: u8,
    },
    /// The key broke the protocol (bad sequence, unexpected answer, malformed data).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The named credential (or object) does not exist on the key.
    #[error("not found on the key")]
    NotFound,
    /// The key was not touched in time (or touch was refused).
    #[error("the key was not touched in time")]
    TouchTimeout,
    /// The request needs a verified PIN first.
    #[error("this needs the key's PIN")]
    PinRequired,
    /// The PIN was wrong.
    #[error("wrong PIN ({} attempts left)", .retries_left.map_or_else(|| "unknown number of".to_string(), |n| n.to_string()))]
    WrongPin {
        /// Attempts left before the PIN blocks, when the key says.
        retries_left: Option<u8>,
    },
    /// The key has no PIN yet.
    #[error("the key has no PIN set")]
    PinNotSet,
    /// SET PIN on a key that already has one (change it instead).
    #[error("the key already has a PIN; change it instead")]
    PinAlreadySet,
    /// Too many wrong PINs: the PIN is blocked until the app is reset.
    #[error("the PIN is blocked after too many wrong attempts; only a reset helps")]
    PinBlocked,
    /// A credential with that name already exists.
    #[error("a credential with that name already exists on the key")]
    AlreadyExists,
    /// The key has no room left.
    #[error("the key has no space left")]
    NoSpace,
    /// The key does not implement this.
    #[error("not supported by this key: {0}")]
    Unsupported(String),
    /// The key's tokens are locked behind an access code that has not been given.
    #[error("the key's tokens are locked with an access code; unlock it first")]
    Locked,
    /// The access code given to unlock a key (YKOATH VALIDATE) is wrong. The key keeps no
    /// attempt counter for it.
    #[error("wrong access code")]
    WrongAccessCode,
    /// Another application holds the smart card exclusively (PC/SC sharing violation for
    /// longer than we retry); it works again once that application lets go.
    #[error(
        "the key in reader {reader:?} is held exclusively by another application; it becomes \
         usable when that application releases it. For gpg's scdaemon, add the line \
         `pcsc-shared` to ~/.gnupg/scdaemon.conf and run `gpgconf --reload scdaemon`"
    )]
    HeldExclusively {
        /// The PC/SC reader name.
        reader: String,
    },
    /// The PC/SC service (pcscd) is not installed or not running, so no smart-card key can be
    /// reached; HID and virtual keys are not affected.
    #[error("no PC/SC service ({0}): install and start pcscd to use smart-card keys")]
    NoPcscService(String),
    /// The key refused the request with a status word we have no better name for.
    #[error("the key refused the request: {0}")]
    Status(StatusWord),
    /// The request was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The caller passed something the key cannot take; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The admin app refused a configuration change.
    #[error("the key refused config field {field:?}: {reason}")]
    Config {
        /// The field name.
        field: String,
        /// The admin app's reason.
        reason: &'static str,
    },
}

impl Error {
    /// Whether the CTAPHID channel is in an unknown state after this error and must be
    /// resynchronised before the next request.
    pub fn breaks_channel(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_)
                | Error::Protocol(_)
                | Error::Cancelled
                | Error::Transport(_)
                | Error::Ctaphid {
                    code: err::INVALID_SEQ | err::MSG_TIMEOUT | err::INVALID_LEN | err::OTHER
                }
        )
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Disconnected => Error::Removed,
            other => Error::Transport(other.to_string()),
        }
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

/// The name of a CTAPHID error code, for messages.
pub fn ctaphid_error_name(code: u8) -> &'static str {
    match code {
        err::INVALID_CMD => "INVALID_CMD",
        err::INVALID_PAR => "INVALID_PAR",
        err::INVALID_LEN => "INVALID_LEN",
        err::INVALID_SEQ => "INVALID_SEQ",
        err::MSG_TIMEOUT => "MSG_TIMEOUT",
        err::CHANNEL_BUSY => "CHANNEL_BUSY",
        err::LOCK_REQUIRED => "LOCK_REQUIRED",
        err::INVALID_CHANNEL => "INVALID_CHANNEL",
        err::OTHER => "OTHER",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            Error::Ctaphid {
                code: err::CHANNEL_BUSY
            }
            .to_string(),
            "the key reported CTAPHID error CHANNEL_BUSY (0x06)"
        );
        assert_eq!(
            Error::WrongPin {
                retries_left: Some(3)
            }
            .to_string(),
            "wrong PIN (3 attempts left)"
        );
        assert_eq!(Error::from(TransportError::Disconnected), Error::Removed);
    }

    #[test]
    fn only_broken_exchanges_force_a_resync() {
        assert!(Error::Timeout(Duration::from_secs(1)).breaks_channel());
        assert!(
            Error::Ctaphid {
                code: err::INVALID_SEQ
            }
            .breaks_channel()
        );
        assert!(!Error::NotFound.breaks_channel());
        assert!(
            !Error::Ctaphid {
                code: err::CHANNEL_BUSY
            }
            .breaks_channel()
        );
    }
}
