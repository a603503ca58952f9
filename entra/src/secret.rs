//! Secret strings: token seeds, verification codes, access and refresh tokens, client secrets.
//!
//! Each is its own type so a seed cannot be passed where a code is expected, and each holds a
//! [`SecretString`]: zeroized on drop, `Debug` and `Display` print `[redacted]`. Serialization
//! writes the value (it has to reach Graph and the token cache); nothing else exposes it but
//! [`expose`](AccessToken::expose), which is easy to search for in review.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                $name(SecretString::from(value.into()))
            }

            /// The value itself, for the one place that must send or store it.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name::new(value)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.expose())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Zeroizing: the intermediate String is wiped if anything fails after it.
                let value = zeroize::Zeroizing::new(String::deserialize(d)?);
                Ok($name::new(value.as_str()))
            }
        }
    };
}

secret_type!(
    /// A token's seed in Base32 (Graph's `secretKey`). Graph never returns it.
    SecretKey
);
secret_type!(
    /// A one-time code read from a token, sent to activate it. Valid for a minute or so, yet
    /// whoever sees it in a log could use it in that minute.
    VerificationCode
);
secret_type!(
    /// An OAuth access token (bearer): whoever holds it acts as the admin for about an hour.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token: longer-lived than the access token, stored only in the cache.
    RefreshToken
);
secret_type!(
    /// An app registration's client secret.
    ClientSecret
);
secret_type!(
    /// The device code of a device-authorization sign-in (the user code is public; this one
    /// redeems the sign-in).
    DeviceCodeSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let k = SecretKey::new("JBSWY3DPEHPK3PXP");
        assert_eq!(format!("{k:?}"), "SecretKey([redacted])");
        assert_eq!(format!("{k}"), "[redacted]");
        assert_eq!(k.expose(), "JBSWY3DPEHPK3PXP");
        let t: AccessToken = serde_json::from_str("\"eyJ0eXAi.abc\"").expect("json");
        assert!(!format!("{t:?}").contains("eyJ"));
        assert_eq!(serde_json::to_string(&t).expect("json"), "\"eyJ0eXAi.abc\"");
    }
}
