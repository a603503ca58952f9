//! Errors as the app shows them: the daemon's message and its stable error name.

use std::io::ErrorKind;
use std::path::Path;

use oathkey_protocol::client::ClientError;
use oathkey_seedfile::export::ExportError;

/// A failed call, as shown in the window: "message (Name)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonError {
    /// The stable name: the daemon's `error.data.name` (`TouchTimeout`, `AlreadyExists`...),
    /// or one of this app's: `NotRunning`, `PermissionDenied`, `ConnectionLost`, `Version`,
    /// `Protocol`, `Timeout`, `RequestTooLarge` (too long to send), `File`.
    pub name: String,
    /// The message for people.
    pub message: String,
}

impl DaemonError {
    /// An error with a name and a message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }

    /// The message shown when nothing listens on the socket.
    pub fn not_running(socket: &Path) -> Self {
        Self::new(
            "NotRunning",
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
            self.name.as_str(),
            "NotRunning" | "ConnectionLost" | "Version" | "SocketDenied"
        )
    }
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.name)
    }
}

impl From<ClientError> for DaemonError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotRunning { path, source } => {
                if source.kind() == ErrorKind::PermissionDenied {
                    Self::new(
                        "SocketDenied",
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
                let name = err
                    .data
                    .as_ref()
                    .and_then(|d| d.get("name"))
                    .and_then(|n| n.as_str())
                    .map(str::to_owned)
                    .or_else(|| err.kind().map(|k| k.name().to_owned()))
                    .unwrap_or_else(|| format!("Error {}", err.code));
                Self::new(name, err.message)
            }
            ClientError::Io(io) => Self::new("ConnectionLost", format!("lost oathkeyd: {io}")),
            e @ ClientError::Version { .. } => Self::new("Version", e.to_string()),
            e @ ClientError::Protocol(_) => Self::new("Protocol", e.to_string()),
            e @ ClientError::Timeout(_) => Self::new("Timeout", e.to_string()),
            e @ ClientError::RequestTooLarge { .. } => Self::new("RequestTooLarge", e.to_string()),
        }
    }
}

impl From<ExportError> for DaemonError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Daemon(c) => c.into(),
            other => Self::new("File", other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oathkey_protocol::ErrorCode;
    use oathkey_protocol::jsonrpc::ErrorObject;

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
        assert_eq!(e.name, "NotRunning");
        assert!(e.message.contains("/run/x.sock") && e.message.contains("oathkeyd --user"));
        assert!(e.is_unreachable());
        let denied: DaemonError = ClientError::NotRunning {
            path: "/run/x.sock".into(),
            source: std::io::Error::from(ErrorKind::PermissionDenied),
        }
        .into();
        assert_eq!(denied.name, "SocketDenied");
    }
}
