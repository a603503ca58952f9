//! Secret text (Base32 seeds) in messages: redacted in `Debug`, zeroized when dropped.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A secret carried as text. It serialises as the plain string (the wire must carry it), but
/// never shows in `Debug` output and is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps a secret.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret itself; every use is a place to review.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_is_plain() {
        let s = SecretText::new("GEZDGNBVGY3TQOJQ".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(
            serde_json::to_string(&s).expect("encodes"),
            "\"GEZDGNBVGY3TQOJQ\""
        );
        let back: SecretText = serde_json::from_str("\"ABC\"").expect("decodes");
        assert_eq!(back.expose(), "ABC");
    }
}
