//! The HMAC hash of a token: [`Algorithm`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// The HMAC hash of an OATH token.
///
/// Serialised as `"sha1"`, `"sha256"` and `"sha512"`: the names of protocol version 1 and of
/// the daemon's seed ledger, which must keep reading what it wrote. [`fmt::Display`] gives the
/// standard names (`SHA-1`, ...) for messages to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA-1: the default everywhere, and the only hash Azure's CSV upload takes.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512 (YubiKeys and the virtual key; the Nitrokey 3 lacks it).
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order above.
    pub const ALL: [Self; 3] = [Self::Sha1, Self::Sha256, Self::Sha512];

    /// The name on the wire and in the ledger (`sha1`, `sha256`, `sha512`), the same text
    /// serde writes.
    pub const fn wire_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of the HMAC in bytes, which is also the secret length RFC 6238's test vectors
    /// (and RFC 4226's advice of a key as long as the hash) use.
    pub const fn mac_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_wire_names() {
        for alg in Algorithm::ALL {
            let json = serde_json::to_string(&alg).expect("serialises");
            assert_eq!(json, format!("\"{}\"", alg.wire_name()));
            let back: Algorithm = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, alg);
        }
        assert_eq!(
            serde_json::to_string(&Algorithm::Sha256).expect("serialises"),
            "\"sha256\""
        );
        assert!(serde_json::from_str::<Algorithm>("\"SHA1\"").is_err());
        assert!(serde_json::from_str::<Algorithm>("\"md5\"").is_err());
    }

    #[test]
    fn default_and_display() {
        assert_eq!(Algorithm::default(), Algorithm::Sha1);
        let names: Vec<String> = Algorithm::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["SHA-1", "SHA-256", "SHA-512"]);
    }
}
