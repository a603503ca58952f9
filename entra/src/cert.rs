//! [`ClientCertificate`]: an app registration's certificate and private key, and the signed
//! JWT client assertion that proves the app holds them (Microsoft's "certificate
//! credentials" page).
//!
//! Microsoft's current page asks for `alg: PS256` (RSA-PSS with SHA-256) and an `x5t#S256`
//! header, the Base64url SHA-256 thumbprint of the certificate's DER; older versions of the
//! page said RS256 with a SHA-1 `x5t`. The newer form is used. Claims: `aud` (the token
//! endpoint), `iss` and `sub` (the client id), `jti` (random), `nbf`/`iat` (now), `exp` (now +
//! 10 minutes, the most the page recommends).
//!
//! Signing uses ring, the crypto rustls already builds, so certificates add no dependency.
//! Keys are RSA, PEM, unencrypted, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
//! KEY`).

use data_encoding::{BASE64, BASE64URL_NOPAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use serde_json::json;
use zeroize::Zeroizing;

use crate::error::AuthError;

/// How long an assertion is valid.
const ASSERTION_LIFETIME_SECS: u64 = 600;
/// `client_assertion_type` for a JWT assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate credential: the key to sign with and the certificate's thumbprint.
pub struct ClientCertificate {
    key: RsaKeyPair,
    thumbprint: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The thumbprint is public (the portal shows it); the key is not printed.
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint)
            .finish()
    }
}

fn refused(reason: impl Into<String>) -> AuthError {
    AuthError::Certificate(reason.into())
}

/// The DER inside the first PEM block labelled `label`, if any.
fn pem_block(pem: &str, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AuthError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = pem.find(&begin) else {
        return Ok(None);
    };
    let body = &pem[start + begin.len()..];
    let stop = body
        .find(&end)
        .ok_or_else(|| refused(format!("unterminated {label} block")))?;
    let text: Zeroizing<String> = Zeroizing::new(
        body[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    if text.contains(':') {
        // "Proc-Type: 4,ENCRYPTED" headers of legacy encrypted keys.
        return Err(refused(
            "encrypted private keys are not supported; decrypt it first",
        ));
    }
    let der = BASE64
        .decode(text.as_bytes())
        .map_err(|_| refused(format!("the {label} block is not valid Base64")))?;
    Ok(Some(Zeroizing::new(der)))
}

impl ClientCertificate {
    /// The certificate (PEM, `BEGIN CERTIFICATE`) and its RSA private key (PEM).
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, AuthError> {
        let cert = pem_block(certificate_pem, "CERTIFICATE")?
            .ok_or_else(|| refused("no CERTIFICATE block in the certificate file"))?;
        let key = if let Some(der) = pem_block(key_pem, "PRIVATE KEY")? {
            RsaKeyPair::from_pkcs8(&der)
        } else if let Some(der) = pem_block(key_pem, "RSA PRIVATE KEY")? {
            RsaKeyPair::from_der(&der)
        } else if key_pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(refused(
                "encrypted private keys are not supported; decrypt it first",
            ));
        } else {
            return Err(refused(
                "no RSA private key (PKCS#8 or PKCS#1 PEM) in the key file",
            ));
        }
        .map_err(|e| refused(format!("the private key is not a usable RSA key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &cert);
        Ok(ClientCertificate {
            key,
            thumbprint: BASE64URL_NOPAD.encode(digest.as_ref()),
        })
    }

    /// `x5t#S256`: the Base64url SHA-256 thumbprint of the certificate's DER.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint
    }

    /// A signed assertion for `client_id` at the token endpoint `audience`, issued at `now`
    /// (Unix seconds). Whoever holds it can sign in as the app until it expires: a secret.
    pub fn assertion(
        &self,
        audience: &str,
        client_id: &str,
        now: u64,
    ) -> Result<Zeroizing<String>, AuthError> {
        let rng = SystemRandom::new();
        let mut id = [0u8; 16];
        rng.fill(&mut id)
            .map_err(|_| refused("no randomness for the assertion id"))?;
        // A version 4 UUID, as the page's "a Guid" example.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let jti = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        let header = json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint });
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
            BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| refused("signing the assertion failed"))?;
        Ok(Zeroizing::new(format!(
            "{signing_input}.{}",
            BASE64URL_NOPAD.encode(&signature)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_use() {
        let err = ClientCertificate::from_pem("", "").expect_err("empty");
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        let err = ClientCertificate::from_pem(cert, enc).expect_err("encrypted");
        assert!(err.to_string().contains("encrypted"), "{err}");
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        let err = ClientCertificate::from_pem(cert, junk).expect_err("junk");
        assert!(err.to_string().contains("not a usable RSA key"), "{err}");
    }
}
