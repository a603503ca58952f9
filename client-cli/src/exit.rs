//! Exit codes: what a script can tell apart without parsing messages. Documented in
//! `docs/exit-codes.md`; the numbers never change meaning.

use std::process::ExitCode;

use oathkey_protocol::{ClientError, ErrorCode};

// 0 is success (ExitCode::SUCCESS).
/// Any other failure (the key misbehaved, an internal error).
pub const FAILURE: u8 = 1;
/// Bad usage: wrong arguments, an ambiguous key or token choice.
pub const USAGE: u8 = 2;
/// oathkeyd is not reachable (not running, wrong socket, other protocol version).
pub const NO_DAEMON: u8 = 3;
/// No such key or token, or the key was removed.
pub const NOT_FOUND: u8 = 4;
/// The key was not touched in time (or the wait was cancelled).
pub const TOUCH: u8 = 5;
/// The caller's role does not allow this.
pub const PERMISSION: u8 = 6;
/// The key is busy or claimed by another client; try again later.
pub const BUSY: u8 = 7;
/// A PIN is needed or was wrong.
pub const PIN: u8 = 8;
/// The thing exists already, or the key is full.
pub const CONFLICT: u8 = 9;
/// A seed file has problems (`seedfile check`, or a file to append to).
pub const BAD_FILE: u8 = 10;
/// `activate`: the code was not accepted.
pub const REJECTED: u8 = 11;
/// `entra upload`: one or more tokens were not created, assigned or activated (the others
/// were; the report says which failed and why).
pub const ENTRA_FAILED: u8 = 12;

/// The exit code for a daemon error code.
pub fn for_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::InvalidParams | ErrorCode::MethodNotFound | ErrorCode::RequestTooLarge => USAGE,
        ErrorCode::KeyNotFound | ErrorCode::KeyRemoved | ErrorCode::TokenNotFound => NOT_FOUND,
        ErrorCode::TouchTimeout | ErrorCode::Cancelled => TOUCH,
        ErrorCode::PermissionDenied => PERMISSION,
        ErrorCode::Busy | ErrorCode::Claimed => BUSY,
        ErrorCode::PinRequired | ErrorCode::PinInvalid | ErrorCode::Locked => PIN,
        ErrorCode::AlreadyExists | ErrorCode::NoSpace => CONFLICT,
        _ => FAILURE,
    }
}

/// A failure with its exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// Message (without the program name).
    pub message: String,
}

impl Failure {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }

    /// The exit code as the process returns it.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotRunning { path, source }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Self {
                    code: PERMISSION,
                    message: format!(
                        "oathkeyd's socket {} is not open to you (permission denied); ask an \
                         administrator to add you to the socket's group (socket_group, usually \
                         `oathkey`), then log in again",
                        path.display()
                    ),
                }
            }
            ClientError::NotRunning { path, source } => Self {
                code: NO_DAEMON,
                message: format!(
                    "cannot reach oathkeyd at {} ({source}); is it running? Start it with \
                     `oathkeyd --user` (or `systemctl start oathkeyd`), or point --socket / \
                     OATHKEY_SOCKET at its socket",
                    path.display()
                ),
            },
            ClientError::Version { .. } => Self {
                code: NO_DAEMON,
                message: e.to_string(),
            },
            // A request too long to send is a usage problem, as when the daemon refuses one.
            ClientError::RequestTooLarge { .. } => Self {
                code: USAGE,
                message: e.to_string(),
            },
            ClientError::Rpc(err) => Self {
                code: err.kind().map_or(FAILURE, for_code),
                message: err.message.clone(),
            },
            other => Self {
                code: FAILURE,
                message: other.to_string(),
            },
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self {
            code: FAILURE,
            message: format!("{e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_an_exit_code_and_the_common_ones_differ() {
        for code in ErrorCode::ALL {
            assert!(for_code(code) <= CONFLICT);
            assert!(
                for_code(code) != BAD_FILE
                    && for_code(code) != REJECTED
                    && for_code(code) != ENTRA_FAILED
            );
        }
        let distinct = [
            for_code(ErrorCode::InvalidParams),
            for_code(ErrorCode::TokenNotFound),
            for_code(ErrorCode::TouchTimeout),
            for_code(ErrorCode::PermissionDenied),
            for_code(ErrorCode::Busy),
            for_code(ErrorCode::PinRequired),
            for_code(ErrorCode::AlreadyExists),
        ];
        let mut sorted = distinct.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), distinct.len());
    }
}
