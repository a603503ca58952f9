//! The seed in the admin form: held in memory that is wiped when dropped or cleared, and the
//! admin tool's Generate step (a random serial and seed from the operating system's RNG).

use std::ops::Range;

use data_encoding::BASE32_NOPAD;
use eframe::egui::TextBuffer;
use eframe::egui::text::CharIndex;
use zeroize::{Zeroize, Zeroizing};

/// Room for the longest seed (128 bytes are 205 Base32 characters) plus the spaces people type.
pub const SEED_CAPACITY: usize = 256;

/// Bytes of a generated seed: 160 bits, what the vendor tool and RFC 4226 recommend.
pub const SEED_BYTES: usize = 20;

/// Seed text for a [`eframe::egui::TextEdit`]. Its buffer is allocated once at full size and
/// never grows, so no copy of the seed is left behind in freed memory by a reallocation, and
/// it is zeroed on [`SecretBuffer::wipe`] and on drop. `Debug` never shows it.
pub struct SecretBuffer(Zeroizing<String>);

impl SecretBuffer {
    /// An empty buffer with room for any seed.
    pub fn new() -> Self {
        Self(Zeroizing::new(String::with_capacity(SEED_CAPACITY)))
    }

    /// The seed text; every use is a place to review.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces the content (Generate), keeping the one allocation.
    pub fn set(&mut self, text: &str) {
        self.wipe();
        self.insert_text(text, CharIndex(0));
    }

    /// Zeroes the content and empties the buffer.
    pub fn wipe(&mut self) {
        // Zeroize on a String also wipes the spare capacity: nothing deleted earlier survives.
        self.0.zeroize();
        if self.0.capacity() < SEED_CAPACITY {
            self.0.reserve(SEED_CAPACITY);
        }
    }
}

impl Default for SecretBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SecretBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBuffer([redacted])")
    }
}

impl TextBuffer for SecretBuffer {
    fn is_mutable(&self) -> bool {
        true
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    fn insert_text(&mut self, text: &str, char_index: CharIndex) -> usize {
        // Take only what fits without growing the buffer (growing would copy the seed into a
        // new allocation and free the old one unwiped).
        let room = self.0.capacity() - self.0.len();
        let mut end = 0;
        for (i, c) in text.char_indices() {
            if i + c.len_utf8() > room {
                break;
            }
            end = i + c.len_utf8();
        }
        let fitting = &text[..end];
        let byte_index = self
            .0
            .char_indices()
            .nth(char_index.0)
            .map_or(self.0.len(), |(i, _)| i);
        self.0.insert_str(byte_index, fitting);
        fitting.chars().count()
    }

    fn delete_char_range(&mut self, char_range: Range<CharIndex>) {
        let byte = |ci: CharIndex| {
            self.0
                .char_indices()
                .nth(ci.0)
                .map_or(self.0.len(), |(i, _)| i)
        };
        let (start, end) = (byte(char_range.start), byte(char_range.end));
        if start < end {
            // `drain` moves the tail left in place; the bytes past the new end stay in the
            // allocation and are wiped with it.
            self.0.drain(start..end);
        }
    }

    fn clear(&mut self) {
        self.wipe();
    }

    fn replace_with(&mut self, text: &str) {
        self.set(text);
    }

    fn take(&mut self) -> String {
        // egui calls this only for cut-and-paste style edits; hand out a copy, keep ours wiped.
        let text = self.0.as_str().to_owned();
        self.wipe();
        text
    }

    fn type_id(&self) -> std::any::TypeId {
        std::any::TypeId::of::<Self>()
    }
}

/// Why Generate failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random numbers: {0}")]
pub struct NoRandomness(String);

/// A random 8-digit serial (leading zeros allowed), uniformly distributed.
pub fn generate_serial() -> Result<String, NoRandomness> {
    let mut serial = String::with_capacity(8);
    let mut buf = [0u8; 16];
    while serial.len() < 8 {
        getrandom::fill(&mut buf).map_err(|e| NoRandomness(e.to_string()))?;
        // Rejection sampling: 250 is the largest multiple of 10 below 256, so every digit is
        // equally likely.
        for b in buf.iter().filter(|b| **b < 250) {
            if serial.len() == 8 {
                break;
            }
            serial.push(char::from(b'0' + b % 10));
        }
    }
    Ok(serial)
}

/// A random 160-bit seed as Base32 (upper case, no padding).
pub fn generate_seed() -> Result<Zeroizing<String>, NoRandomness> {
    let mut bytes = Zeroizing::new([0u8; SEED_BYTES]);
    getrandom::fill(bytes.as_mut()).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(Zeroizing::new(BASE32_NOPAD.encode(bytes.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_edits_like_a_string_and_never_grows() {
        let mut b = SecretBuffer::new();
        let cap = b.expose().len();
        assert_eq!(cap, 0);
        assert_eq!(b.insert_text("JBSWY3DP", CharIndex(0)), 8);
        assert_eq!(b.insert_text("XX", CharIndex(4)), 2);
        assert_eq!(b.expose(), "JBSWXXY3DP");
        b.delete_char_range(CharIndex(4)..CharIndex(6));
        assert_eq!(b.expose(), "JBSWY3DP");
        let capacity = b.0.capacity();
        let inserted = b.insert_text(&"A".repeat(1000), CharIndex(8));
        assert_eq!(inserted, capacity - 8, "only what fits is taken");
        assert_eq!(b.0.capacity(), capacity, "no reallocation");
        let n = b.expose().chars().count();
        b.delete_char_range(CharIndex(0)..CharIndex(n));
        assert!(b.is_empty());
    }

    #[test]
    fn wipe_empties_and_debug_hides() {
        let mut b = SecretBuffer::new();
        b.set("JBSWY3DPEHPK3PXP");
        assert!(!format!("{b:?}").contains("JBSW"));
        b.wipe();
        assert!(b.is_empty());
        assert!(b.0.capacity() >= SEED_CAPACITY);
        b.set("ABC");
        assert_eq!(b.expose(), "ABC");
    }

    #[test]
    fn generated_serials_are_8_digits_and_differ() {
        let a = generate_serial().expect("rng");
        let b = generate_serial().expect("rng");
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        // 1 in 10^8 chance of a false failure.
        assert_ne!(a, b);
        assert_eq!(crate::validate::serial(&a), Ok(()));
    }

    #[test]
    fn generated_seeds_are_160_bit_base32() {
        let s = generate_seed().expect("rng");
        assert_eq!(s.len(), 32);
        let decoded = BASE32_NOPAD.decode(s.as_bytes()).expect("base32");
        assert_eq!(decoded.len(), SEED_BYTES);
        assert_ne!(*s, *generate_seed().expect("rng"));
        assert!(crate::validate::seed(&s).is_ok());
    }
}
