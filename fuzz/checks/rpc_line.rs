//! The JSON-RPC line layer: the line codec (`oathkey_protocol::codec::LineBuffer`) and the
//! daemon's request parser (`oathkeyd::rpc::parse`), fed arbitrary bytes.
//!
//! Shared by `fuzz/fuzz_targets/rpc_line.rs` and `daemon/tests/daemon/fuzz_replay.rs`.
//!
//! Input: a byte that chooses the line limit and how the stream is cut into reads, then the
//! stream. Properties:
//! - the codec gives the same lines whatever the reads are (compared with one whole read and
//!   with a plain model of the rules: split at `\n`, drop one `\r` before it, a line over the
//!   limit is an error, one not UTF-8 is an error, an unfinished line is an error once it is
//!   over the limit);
//! - every line parses to a request, a batch or an error answer with a JSON-RPC code; and
//! - requests and answers survive encoding as a line and decoding again unchanged.
#![allow(dead_code)]

use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, LineError, MAX_LINE, encode_line};
use oathkey_protocol::jsonrpc::{Request, Response};
use oathkeyd::rpc::{self, Parsed};

/// What a line was, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One request.
    Single,
    /// A batch: its requests, and its items that are no request (answered with errors).
    Batch { requests: usize, errors: usize },
    /// An error answer with this code.
    Invalid(i64),
    /// The codec refused the line.
    Refused(LineError),
}

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One entry per line.
    pub lines: Vec<Kind>,
}

/// The codec's results for a stream fed in reads of the given sizes, up to the first error
/// that ends a connection (a line over the limit) or the end of the complete lines.
pub fn lines_of(stream: &[u8], limit: usize, cuts: &[usize]) -> Vec<Result<String, LineError>> {
    let mut buffer = LineBuffer::new(limit);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut cut = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = cut
            .next()
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (read, tail) = rest.split_at(n);
        rest = tail;
        buffer.extend(read);
        loop {
            match buffer.next_line() {
                Ok(Some(line)) => out.push(Ok(line)),
                Ok(None) => break,
                Err(e @ LineError::TooLong { .. }) => {
                    out.push(Err(e));
                    return out;
                }
                Err(e @ LineError::NotUtf8) => out.push(Err(e)),
            }
        }
    }
    out
}

/// The rules of the codec, written plainly, for a whole stream.
pub fn model(stream: &[u8], limit: usize) -> Vec<Result<String, LineError>> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..i];
        rest = &rest[i + 1..];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        if line.len() > limit {
            out.push(Err(LineError::TooLong { limit }));
            return out;
        }
        out.push(String::from_utf8(line.to_vec()).map_err(|_| LineError::NotUtf8));
    }
    // An unfinished line: an error once it is over the limit, not counting a `\r` at its end
    // (the first half of a `\r\n`, maybe).
    if rest.len() - usize::from(rest.last() == Some(&b'\r')) > limit {
        out.push(Err(LineError::TooLong { limit }));
    }
    out
}

/// A request survives encoding as a line and decoding.
fn request_round_trip(req: &Request) {
    assert_eq!(req.jsonrpc, "2.0");
    let line = encode_line(req).expect("a request encodes");
    let mut buffer = LineBuffer::default();
    buffer.extend(line.as_bytes());
    let text = buffer
        .next_line()
        .expect("an encoded request is one valid line")
        .expect("complete");
    assert_eq!(buffer.pending(), 0, "one line, one newline");
    match rpc::parse(&text) {
        Parsed::Single(back) => assert_eq!(&back, req, "request changed in the round trip"),
        other => panic!("an encoded request parsed as {other:?}"),
    }
}

/// An error answer is well-formed and survives encoding as a line and decoding.
fn answer_round_trip(resp: &Response) -> i64 {
    assert_eq!(resp.jsonrpc, "2.0");
    assert!(resp.result.is_none());
    let error = resp.error.as_ref().expect("an error answer");
    let code = error.kind().expect("a known error code");
    assert!(
        matches!(code, ErrorCode::ParseError | ErrorCode::InvalidRequest),
        "a parse failure answered {code}"
    );
    let line = encode_line(resp).expect("an answer encodes");
    let back: Response = serde_json::from_str(line.trim_end_matches('\n')).expect("decodes");
    assert_eq!(&back, resp, "answer changed in the round trip");
    error.code
}

/// Runs one input; panics if a property breaks.
pub fn check(data: &[u8]) -> Outcome {
    let (control, stream) = data.split_first().map_or((0, &[][..]), |(c, s)| (*c, s));
    // Small limits reach the over-long paths with short inputs; 0 means the daemon's own.
    let limit = match control & 0x0F {
        0 => MAX_LINE,
        n => usize::from(n) * 8,
    };
    let cuts: Vec<usize> = match control >> 4 {
        0 => vec![stream.len().max(1)],
        n => stream
            .iter()
            .take(8)
            .map(|b| usize::from(b % (n * 4)) + 1)
            .collect(),
    };
    let whole = lines_of(stream, limit, &[stream.len().max(1)]);
    let pieces = lines_of(stream, limit, &cuts);
    let expected = model(stream, limit);
    assert_eq!(whole, expected, "the codec differs from its rules");
    assert_eq!(pieces, expected, "the codec depends on how reads are cut");

    let mut lines = Vec::new();
    for item in expected {
        let line = match item {
            Ok(line) => line,
            Err(e) => {
                lines.push(Kind::Refused(e));
                continue;
            }
        };
        lines.push(match rpc::parse(&line) {
            Parsed::Single(req) => {
                request_round_trip(&req);
                Kind::Single
            }
            Parsed::Batch(items) => {
                assert!(!items.is_empty(), "an empty batch is an error, not a batch");
                let (mut requests, mut errors) = (0, 0);
                for item in &items {
                    match item {
                        Ok(req) => {
                            request_round_trip(req);
                            requests += 1;
                        }
                        Err(resp) => {
                            answer_round_trip(resp);
                            errors += 1;
                        }
                    }
                }
                Kind::Batch { requests, errors }
            }
            Parsed::Invalid(resp) => Kind::Invalid(answer_round_trip(&resp)),
        });
    }
    Outcome { lines }
}
