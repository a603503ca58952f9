//! Base32 secrets (RFC 4648 alphabet) as people write them: [`decode_base32`].
//!
//! Authenticator apps, seed files and admins write secrets in any case, in groups separated by
//! spaces or dashes, with or without `=` padding, and sometimes with a length no encoder would
//! produce (a 206-character secret holds 128 bytes and 6 bits that belong to no byte). Such
//! text is taken the way authenticator apps take it: the bits after the last whole byte are
//! dropped. The stricter alphabet and length rules of a particular seed-file target are that
//! target's business (`oathkey-seedfile`), not the decoder's.

use zeroize::{Zeroize, Zeroizing};

/// Why text is not a secret. The messages never quote the text: it may be most of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// Nothing but separators and padding, or nothing at all.
    #[error("secret key is empty")]
    Empty,
    /// One character: 5 bits, less than a byte.
    #[error("secret key is too short (one Base32 character holds no whole byte)")]
    NoWholeByte,
    /// A character outside `A-Z`, `a-z`, `2-7`, the separators (space, tab, `-`) and trailing
    /// `=` padding.
    #[error("secret key is not Base32")]
    NotBase32,
}

/// Decodes a Base32 secret: any case; spaces, tabs and `-` anywhere ignored; `=` padding and
/// whitespace at the end ignored; bits left over after the last whole byte dropped.
///
/// The result and every intermediate value are wiped when no longer needed.
pub fn decode_base32(text: &str) -> Result<Zeroizing<Vec<u8>>, Base32Error> {
    let trimmed = text.trim_end_matches(|c: char| c == '=' || c.is_whitespace());
    // Five bits per character at most: this capacity is never outgrown, so the vector never
    // moves and leaves no unwiped copy of the secret behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(trimmed.len() * 5 / 8 + 1));
    let mut acc = Bits::default();
    let mut characters = 0usize;
    for c in trimmed.chars() {
        let value = match c {
            'A'..='Z' => u32::from(c) - u32::from('A'),
            'a'..='z' => u32::from(c) - u32::from('a'),
            '2'..='7' => u32::from(c) - u32::from('2') + 26,
            ' ' | '\t' | '-' => continue,
            _ => return Err(Base32Error::NotBase32),
        };
        characters += 1;
        if let Some(byte) = acc.push(value) {
            bytes.push(byte);
        }
    }
    if bytes.is_empty() {
        return Err(if characters == 0 {
            Base32Error::Empty
        } else {
            Base32Error::NoWholeByte
        });
    }
    Ok(bytes)
}

/// The bits read but not yet output as a byte; wiped on drop (they are part of the secret).
#[derive(Default)]
struct Bits {
    /// The last bits read, at most 12 of which are still pending.
    acc: u32,
    /// How many of `acc`'s low bits are pending.
    pending: u32,
}

impl Bits {
    /// Adds one character's 5 bits; returns a byte once 8 are pending.
    fn push(&mut self, value: u32) -> Option<u8> {
        // 16 bits hold the at most 7 pending bits and the 5 new ones.
        self.acc = ((self.acc << 5) | value) & 0xFFFF;
        self.pending += 5;
        if self.pending < 8 {
            return None;
        }
        self.pending -= 8;
        // Only the 8 bits above the pending ones: the cast keeps exactly those.
        Some(((self.acc >> self.pending) & 0xFF) as u8)
    }
}

impl Drop for Bits {
    fn drop(&mut self) {
        self.acc.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_characters_are_five_bytes() {
        assert_eq!(
            decode_base32("JBSWY3DP").expect("valid").as_slice(),
            b"Hello"
        );
    }

    #[test]
    fn pending_bits_never_exceed_what_a_byte_needs() {
        let mut bits = Bits::default();
        let mut out = Vec::new();
        for _ in 0..80 {
            out.extend(bits.push(31));
            assert!(bits.pending < 8);
        }
        assert_eq!(out, vec![0xFF; 50]);
    }
}
