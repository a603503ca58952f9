//! Property test of the JSON-RPC line codec: requests, answers and events of every shape,
//! encoded as lines, concatenated and fed to a `LineBuffer` in reads of any size, come back
//! as the same lines and decode to the same messages.
//!
//! The crate takes no test dependencies, so the cases come from a small seeded generator
//! (xorshift): the same 3000 cases on every run, each one reproducible from its number.

use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, MAX_LINE, encode_line};
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Incoming, Notification, Request, Response};
use serde_json::{Map, Value, json};

/// xorshift64*: deterministic, good enough to spread cases.
struct Gen(u64);

impl Gen {
    fn new(case: u64) -> Self {
        Self(case.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// Text with the characters that break naive line protocols: newlines, quotes,
    /// backslashes, controls, non-ASCII and astral characters.
    fn text(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "a", "Z", "0", " ", "\n", "\r", "\r\n", "\"", "\\", "\u{0}", "\u{1f}", "é", "日本",
            "🔑", "\u{2028}", "/",
        ];
        let len = self.below(12);
        (0..len)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    fn number(&mut self) -> Value {
        match self.below(5) {
            0 => json!(self.next() as i64),
            1 => json!(self.next()),
            2 => json!(self.below(100)),
            3 => json!(i64::MIN),
            // Eighths are exact in binary: float text round trips without rounding questions.
            _ => json!((self.below(10_000) as f64 - 5_000.0) / 8.0),
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        let leaf = depth == 0 || self.chance(2);
        match (leaf, self.below(4)) {
            (true, 0) => Value::Null,
            (true, 1) => Value::Bool(self.chance(2)),
            (true, 2) => self.number(),
            (true, _) => Value::String(self.text()),
            (false, 0) => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            (false, _) => Value::Object(self.object(depth - 1)),
        }
    }

    fn object(&mut self, depth: u32) -> Map<String, Value> {
        (0..self.below(5))
            .map(|_| (self.text(), self.value(depth)))
            .collect()
    }

    fn id(&mut self) -> Id {
        match self.below(3) {
            0 => Id::Number(self.next() as i64),
            1 => Id::String(self.text()),
            _ => Id::Null,
        }
    }

    fn request(&mut self) -> Request {
        Request {
            jsonrpc: "2.0".into(),
            method: self.text(),
            // Absent or an object: `"params": null` reads as absent, by design.
            params: if self.chance(3) {
                None
            } else {
                Some(Value::Object(self.object(3)))
            },
            id: if self.chance(4) {
                None
            } else {
                Some(self.id())
            },
        }
    }

    fn response(&mut self) -> Response {
        if self.chance(2) {
            // A non-null result: `"result": null` reads as no result (and `into_result` gives
            // null for it either way).
            let result = match self.value(3) {
                Value::Null => json!({}),
                v => v,
            };
            Response::ok(self.id(), result)
        } else {
            let code = ErrorCode::ALL[self.below(ErrorCode::ALL.len() as u64) as usize];
            let mut error = ErrorObject::new(code, self.text());
            if self.chance(2) {
                error.data = Some(json!({ "name": code.name(), "detail": self.value(2) }));
            }
            Response::err(self.id(), error)
        }
    }

    fn notification(&mut self) -> Notification {
        Notification {
            jsonrpc: "2.0".into(),
            method: self.text(),
            params: Value::Object(self.object(2)),
        }
    }
}

/// One message of a stream, as sent.
#[derive(Debug, PartialEq)]
enum Sent {
    Request(Request),
    Response(Response),
    Notification(Notification),
}

fn lines_through_codec(g: &mut Gen, stream: &[u8]) -> Vec<String> {
    let mut buffer = LineBuffer::new(MAX_LINE);
    let mut lines = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // Reads of 1 byte to a few hundred: a line arrives whole, in pieces, or with others.
        let n = (1 + g.below(300) as usize).min(rest.len());
        buffer.extend(&rest[..n]);
        rest = &rest[n..];
        while let Some(line) = buffer.next_line().expect("valid lines") {
            lines.push(line);
        }
    }
    assert_eq!(buffer.pending(), 0, "bytes left over");
    lines
}

#[test]
fn messages_survive_lines_and_any_reads() {
    for case in 0..3000 {
        let mut g = Gen::new(case);
        let sent: Vec<Sent> = (0..1 + g.below(6))
            .map(|_| match g.below(3) {
                0 => Sent::Request(g.request()),
                1 => Sent::Response(g.response()),
                _ => Sent::Notification(g.notification()),
            })
            .collect();
        let mut stream = Vec::new();
        for message in &sent {
            let line = match message {
                Sent::Request(r) => encode_line(r),
                Sent::Response(r) => encode_line(r),
                Sent::Notification(n) => encode_line(n),
            }
            .expect("encodes");
            assert!(line.ends_with('\n'), "case {case}");
            assert_eq!(line.matches('\n').count(), 1, "case {case}: {line:?}");
            stream.extend_from_slice(line.as_bytes());
        }
        let lines = lines_through_codec(&mut g, &stream);
        assert_eq!(lines.len(), sent.len(), "case {case}");
        for (line, message) in lines.iter().zip(&sent) {
            match message {
                Sent::Request(r) => {
                    let back: Request = serde_json::from_str(line).expect("a request");
                    assert_eq!(&back, r, "case {case}");
                }
                Sent::Response(r) => match serde_json::from_str::<Incoming>(line) {
                    Ok(Incoming::Response(back)) => assert_eq!(&back, r, "case {case}"),
                    other => panic!("case {case}: {other:?}"),
                },
                Sent::Notification(n) => match serde_json::from_str::<Incoming>(line) {
                    Ok(Incoming::Notification(back)) => assert_eq!(&back, n, "case {case}"),
                    other => panic!("case {case}: {other:?}"),
                },
            }
        }
    }
}
