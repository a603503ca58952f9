//! Newline-delimited framing with a hard size limit.
//!
//! A [`LineBuffer`] takes bytes as they arrive and yields complete lines. A line longer than the
//! limit is an error as soon as the limit is passed, so a client that never sends a newline
//! cannot make the reader buffer without bound.

/// The largest request line the daemon accepts, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// The largest answer line a client accepts: answers to batches and seed exports can be far
/// longer than any request.
pub const MAX_ANSWER_LINE: usize = 64 * 1024 * 1024;

/// A framing problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A line passed the limit before its newline.
    #[error("line longer than {limit} bytes")]
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// A line is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// Accumulates bytes and splits them into lines.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    limit: usize,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new(MAX_LINE)
    }
}

impl LineBuffer {
    /// A buffer with the given line limit.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            scanned: 0,
        }
    }

    /// Adds received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line (without `\n` or `\r\n`), `Ok(None)` if none is complete yet.
    pub fn next_line(&mut self) -> Result<Option<String>, LineError> {
        match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                self.scanned = 0;
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.limit {
                    return Err(LineError::TooLong { limit: self.limit });
                }
                String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| LineError::NotUtf8)
            }
            None => {
                self.scanned = self.buf.len();
                // A `\r` at the end may be the first half of a `\r\n` and is then no part of
                // the line: counting it refused a line of exactly `limit` bytes when a read
                // happened to end between `\r` and `\n` (found by fuzzing, rpc_line).
                let unfinished = self.buf.len() - usize::from(self.buf.last() == Some(&b'\r'));
                if unfinished > self.limit {
                    return Err(LineError::TooLong { limit: self.limit });
                }
                Ok(None)
            }
        }
    }

    /// Bytes received but not yet returned as a line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encodes a message as one line.
pub fn encode_line<T: serde::Serialize>(message: &T) -> serde_json::Result<String> {
    let mut line = serde_json::to_string(message)?;
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_chunks() {
        let mut b = LineBuffer::default();
        b.extend(b"{\"a\":");
        assert_eq!(b.next_line(), Ok(None));
        b.extend(b"1}\r\n{\"b\":2}\n{\"c\"");
        assert_eq!(b.next_line(), Ok(Some("{\"a\":1}".into())));
        assert_eq!(b.next_line(), Ok(Some("{\"b\":2}".into())));
        assert_eq!(b.next_line(), Ok(None));
        assert_eq!(b.pending(), 4);
    }

    #[test]
    fn refuses_overlong_lines_before_the_newline() {
        let mut b = LineBuffer::new(8);
        b.extend(b"123456789");
        assert_eq!(b.next_line(), Err(LineError::TooLong { limit: 8 }));
        let mut b = LineBuffer::new(8);
        b.extend(b"123456789\nok\n");
        assert_eq!(b.next_line(), Err(LineError::TooLong { limit: 8 }));
        assert_eq!(b.next_line(), Ok(Some("ok".into())));
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_whatever_the_reads() {
        let mut b = LineBuffer::new(8);
        b.extend(b"12345678\r");
        assert_eq!(b.next_line(), Ok(None), "the \\r may be half of \\r\\n");
        b.extend(b"\n");
        assert_eq!(b.next_line(), Ok(Some("12345678".into())));
        let mut b = LineBuffer::new(8);
        b.extend(b"12345678\r\r");
        assert_eq!(b.next_line(), Err(LineError::TooLong { limit: 8 }));
    }

    #[test]
    fn refuses_invalid_utf8_and_keeps_going() {
        let mut b = LineBuffer::default();
        b.extend(b"\xff\xfe\nfine\n");
        assert_eq!(b.next_line(), Err(LineError::NotUtf8));
        assert_eq!(b.next_line(), Ok(Some("fine".into())));
    }

    #[test]
    fn encode_line_ends_with_one_newline() {
        let line = encode_line(&serde_json::json!({"x": "a\nb"})).expect("encodes");
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
    }
}
