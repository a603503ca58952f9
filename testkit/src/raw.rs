//! A raw connection to the daemon's socket: whatever bytes a test wants to send, and the answer
//! lines as JSON, with no client library in between to tidy anything up.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// One raw connection: bytes out, answer lines in (reads time out after 10 s).
#[derive(Debug)]
pub struct Raw {
    /// The connection (to write to, half-close, or clone for a writer thread).
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    /// Connects to the socket at `socket`.
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Self { stream, reader }
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writes");
    }

    /// The next line, or `None` if the daemon closed the connection.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line),
            Err(e) => panic!("no answer line: {e}"),
        }
    }

    /// The next line as JSON; fails if the connection closed instead.
    pub fn answer(&mut self) -> Value {
        let line = self.line().expect("an answer, not a closed connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Whether the daemon closed the connection (EOF), within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(0) => true,
            // Closed with our unread bytes still queued: the kernel says "reset".
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    /// The connection still answers.
    #[track_caller]
    pub fn still_answers(&mut self) {
        self.send(b"{\"jsonrpc\":\"2.0\",\"id\":\"alive\",\"method\":\"hello\"}\n");
        let a = self.answer();
        assert_eq!(a["id"], "alive", "{a}");
        assert_eq!(a["result"]["protocol"], 1, "{a}");
    }
}
