//! Errors as the app shows them: the daemon's message and its stable error name.

use std::io::ErrorKind;
use std::path::Path;

use oathkey_protocol::ErrorCode;
use oathkey_protocol::client::ClientError;
use oathkey_seedfile::export::ExportError;

/// What went wrong, by its stable name: the daemon's error codes, or one of this app's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The daemon answered with this error.
    Daemon(ErrorCode),
    /// An error number this app does not know (a newer daemon).
    Unknown(i64),
    /// Nothing listens on the socket.
    NotRunning,
    /// The socket is not open to this user.
    SocketDenied,
    /// The connection broke.
    ConnectionLost,
    /// The daemon speaks another protocol version.
    Version,
    /// The daemon said something this app cannot read.
    Protocol,
    /// No answer in time.
    Timeout,
    /// A request too long to send (never sent).
    RequestTooLarge,
    /// A file could not be written.
    File,
    /// The admin form has fields to correct (nothing was sent).
    InvalidForm,
}

impl Kind {
    /// Every name of the app's own, for documentation and tests.
    pub const OWN: [Kind; 9] = [
        Kind::NotRunning,
        Kind::SocketDenied,
        Kind::ConnectionLost,
        Kind::Version,
        Kind::Protocol,
        Kind::Timeout,
        Kind::RequestTooLarge,
        Kind::File,
        Kind::InvalidForm,
    ];

    /// The stable name shown after the message.
    pub fn name(self) -> String {
        match self {
            Kind::Daemon(code) => code.name().to_string(),
            Kind::Unknown(n) => format!("Error {n}"),
            Kind::NotRunning => "NotRunning".into(),
            Kind::SocketDenied => "SocketDenied".into(),
            Kind::ConnectionLost => "ConnectionLost".into(),
            Kind::Version => "Version".into(),
            Kind::Protocol => "Protocol".into(),
            Kind::Timeout => "Timeout".into(),
            // The daemon's name for the same thing, though the app found it itself.
            Kind::RequestTooLarge => ErrorCode::RequestTooLarge.name().into(),
            Kind::File => "File".into(),
            Kind::InvalidForm => "InvalidForm".into(),
        }
    }
}

/// A failed call, as shown in the window: "message (Name)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonError {
    /// What went wrong.
    pub kind: Kind,
    /// The message for people.
    pub message: String,
}

impl DaemonError {
    /// An error of a kind with a message.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The message shown when nothing listens on the socket.
    pub fn not_running(socket: &Path) -> Self {
        Self::new(
            Kind::NotRunning,
            format!(
                "oathkeyd is not running at {}: start it with `oathkeyd --user`, or \
                 `systemctl start oathkeyd`",
                socket.display()
            ),
        )
    }

    /// Whether this says the daemon cannot be reached at all (as opposed to a failed call).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.kind,
            Kind::NotRunning | Kind::ConnectionLost | Kind::Version | Kind::SocketDenied
        )
    }
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.name())
    }
}

impl From<ClientError> for DaemonError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotRunning { path, source } => {
                if source.kind() == ErrorKind::PermissionDenied {
                    Self::new(
                        Kind::SocketDenied,
                        format!(
                            "oathkeyd's socket {} is not open to you (permission denied); ask \
                             an administrator to add you to its group",
                            path.display()
                        ),
                    )
                } else {
                    Self::not_running(&path)
                }
            }
            ClientError::Rpc(err) => {
                let kind = err.kind().map_or(Kind::Unknown(err.code), Kind::Daemon);
                Self::new(kind, err.message)
            }
            ClientError::Io(io) => Self::new(Kind::ConnectionLost, format!("lost oathkeyd: {io}")),
            e @ ClientError::Version { .. } => Self::new(Kind::Version, e.to_string()),
            e @ ClientError::Protocol(_) => Self::new(Kind::Protocol, e.to_string()),
            e @ ClientError::Timeout(_) => Self::new(Kind::Timeout, e.to_string()),
            e @ ClientError::RequestTooLarge { .. } => {
                Self::new(Kind::RequestTooLarge, e.to_string())
            }
        }
    }
}

impl From<ExportError> for DaemonError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Daemon(c) => c.into(),
            other => Self::new(Kind::File, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oathkey_protocol::jsonrpc::ErrorObject;

    #[test]
    fn every_name_of_the_apps_own_is_documented() {
        let docs = include_str!("../../docs/desktop.md");
        for kind in Kind::OWN {
            assert!(
                docs.contains(&format!("| `{}` |", kind.name())),
                "{} is not in docs/desktop.md's Messages table",
                kind.name()
            );
        }
    }

    #[test]
    fn daemon_errors_keep_their_stable_name() {
        let e: DaemonError =
            ClientError::Rpc(ErrorObject::new(ErrorCode::AlreadyExists, "serial taken")).into();
        assert_eq!(e.to_string(), "serial taken (AlreadyExists)");
        assert!(!e.is_unreachable());
    }

    #[test]
    fn a_missing_socket_says_how_to_start_the_daemon() {
        let e: DaemonError = ClientError::NotRunning {
            path: "/run/x.sock".into(),
            source: std::io::Error::from(ErrorKind::NotFound),
        }
        .into();
        assert_eq!(e.kind, Kind::NotRunning);
        assert!(e.message.contains("/run/x.sock") && e.message.contains("oathkeyd --user"));
        assert!(e.is_unreachable());
        let denied: DaemonError = ClientError::NotRunning {
            path: "/run/x.sock".into(),
            source: std::io::Error::from(ErrorKind::PermissionDenied),
        }
        .into();
        assert_eq!(denied.kind, Kind::SocketDenied);
    }
}
