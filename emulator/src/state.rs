//! The virtual key's persistent state, its "flash": credentials, PIN, settings, identity.
//!
//! Stored as JSON in a file created 0600 and replaced atomically (temp file, fsync, rename,
//! fsync of the directory), so a crash at any moment leaves either the old or the new state,
//! never a torn one. The file holds the credentials' secrets in the clear, as a real key's
//! flash does; PIN-protected credentials are hidden by the app's rules, not encrypted at rest.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use data_encoding::HEXLOWER;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// One stored credential.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredCredential {
    /// The name as raw bytes.
    #[serde(with = "hex_bytes")]
    pub name: Vec<u8>,
    /// The kind|algorithm byte as registered.
    pub kind_alg: u8,
    /// Digits as registered (the app does not check them).
    pub digits: u8,
    /// The HMAC key.
    #[serde(with = "hex_secret")]
    pub secret: Zeroizing<Vec<u8>>,
    /// Every use needs a touch.
    pub touch: bool,
    /// Hidden unless a PIN verification precedes the request.
    pub pin_encrypted: bool,
    /// HOTP moving factor.
    pub counter: u32,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("kind_alg", &format_args!("{:#04x}", self.kind_alg))
            .field("digits", &self.digits)
            .field("secret", &"[redacted]")
            .field("touch", &self.touch)
            .field("pin_encrypted", &self.pin_encrypted)
            .field("counter", &self.counter)
            .finish()
    }
}

/// The PIN as stored: a salted SHA-256, never the PIN itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinRecord {
    /// Random salt.
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    /// SHA-256(salt || PIN).
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// Attempts left; 0 means blocked.
    pub retries: u8,
}

impl std::fmt::Debug for PinRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinRecord")
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl PinRecord {
    /// Attempts a new PIN gets.
    pub const RETRIES: u8 = 8;

    /// A record for `pin` with a fresh salt and full retries.
    pub fn new(pin: &[u8]) -> Self {
        let mut salt = vec![0u8; 16];
        // A failing OS RNG leaves a zero salt; the record still verifies correctly.
        let _ = getrandom::fill(&mut salt);
        let hash = Self::digest(&salt, pin);
        Self {
            salt,
            hash,
            retries: Self::RETRIES,
        }
    }

    fn digest(salt: &[u8], pin: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(pin);
        h.finalize().to_vec()
    }

    /// Whether `pin` matches (constant-time comparison of the hashes).
    pub fn matches(&self, pin: &[u8]) -> bool {
        let candidate = Self::digest(&self.salt, pin);
        candidate.len() == self.hash.len()
            && candidate
                .iter()
                .zip(&self.hash)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The device-wide settings of the vendor admin tool.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// Mode: keyboard interface on.
    pub keyboard: bool,
    /// Mode: U2F/FIDO function on.
    pub u2f: bool,
    /// Key Press: every code needs a touch.
    pub key_press: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keyboard: true,
            u2f: true,
            key_press: false,
        }
    }
}

/// Everything the virtual key keeps across restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyState {
    /// Format version of this file.
    pub format: u32,
    /// Secrets-app serial number (the first 4 bytes of the UUID on a Nitrokey 3).
    pub serial: u32,
    /// Device UUID.
    #[serde(with = "hex_bytes")]
    pub uuid: Vec<u8>,
    /// Credentials in registration order.
    pub credentials: Vec<StoredCredential>,
    /// The PIN, once set.
    pub pin: Option<PinRecord>,
    /// Mode and Key Press.
    pub settings: Settings,
    /// What only the smart-card face of the key keeps (the YubiKey-like profile). Files written
    /// before the card existed have none: a fresh one is made for them.
    #[serde(default)]
    pub card: CardState,
}

impl KeyState {
    /// The current file format.
    pub const FORMAT: u32 = 1;

    /// A factory-fresh key with the given serial (or a random one).
    pub fn new(serial: Option<u32>) -> Self {
        let mut uuid = vec![0u8; 16];
        let _ = getrandom::fill(&mut uuid);
        if let Some(s) = serial {
            uuid[..4].copy_from_slice(&s.to_be_bytes());
        }
        let serial = u32::from_be_bytes([uuid[0], uuid[1], uuid[2], uuid[3]]);
        Self {
            format: Self::FORMAT,
            serial,
            uuid,
            credentials: Vec::new(),
            pin: None,
            settings: Settings::default(),
            card: CardState::default(),
        }
    }
}

/// The access code of the YubiKey-like card's OATH app, as the card stores it: the key the host
/// derived from the password (PBKDF2 on the host), never the password itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessKey {
    /// The type|algorithm byte SET CODE carried (`0x21`: HMAC-SHA1).
    pub kind_alg: u8,
    /// The HMAC key the VALIDATE exchange proves knowledge of.
    #[serde(with = "hex_secret")]
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("kind_alg", &format_args!("{:#04x}", self.kind_alg))
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The smart-card face's own persistent state (YubiKey-like profile).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CardState {
    /// The OATH app's salt, which hosts hash into the device id and derive the access key
    /// with; a new one comes with every OATH reset, as on a YubiKey.
    #[serde(with = "hex_bytes")]
    pub oath_salt: Vec<u8>,
    /// The OATH access code, once set.
    pub access_key: Option<AccessKey>,
    /// USB applications enabled in the Management app's bitmask, except OTP (0x01) and U2F
    /// (0x02): those two are [`Settings::keyboard`] and [`Settings::u2f`], the same Mode the
    /// HID key's admin app shows.
    pub usb_enabled_other: u16,
}

impl CardState {
    /// OATH, PIV, OpenPGP and FIDO2 on, as a YubiKey 5 leaves the factory.
    pub const DEFAULT_OTHER: u16 = 0x0020 | 0x0010 | 0x0008 | 0x0200;

    /// A fresh random OATH salt.
    pub fn new_salt() -> Vec<u8> {
        let mut salt = vec![0u8; 8];
        // A failing OS RNG leaves a zero salt: a fixed device id, nothing worse.
        let _ = getrandom::fill(&mut salt);
        salt
    }
}

impl Default for CardState {
    fn default() -> Self {
        Self {
            oath_salt: Self::new_salt(),
            access_key: None,
            usb_enabled_other: Self::DEFAULT_OTHER,
        }
    }
}

/// A state file problem.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file is not a valid state file.
    #[error("{path} is not a valid virtual key state file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A state file on disk.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// A state file at `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the state, or `None` when the file does not exist yet.
    pub fn load(&self) -> Result<Option<KeyState>, StateError> {
        let mut text = match read_no_link(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(StateError::Io {
                    action: "reading",
                    path: self.path.clone(),
                    cause,
                });
            }
        };
        let parsed = serde_json::from_slice::<KeyState>(&text);
        text.zeroize();
        let state = parsed.map_err(|e| StateError::Invalid {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if state.format != KeyState::FORMAT {
            return Err(StateError::Invalid {
                path: self.path.clone(),
                reason: format!("format {} is not {}", state.format, KeyState::FORMAT),
            });
        }
        Ok(Some(state))
    }

    /// Replaces the file atomically with `state`.
    pub fn save(&self, state: &KeyState) -> Result<(), StateError> {
        let io = |action, cause| StateError::Io {
            action,
            path: self.path.clone(),
            cause,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text =
            Zeroizing::new(serde_json::to_vec_pretty(state).map_err(|e| io("encoding", e.into()))?);
        // tempfile creates the file 0600 in the same directory, so the rename is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(".vkey-")
            .tempfile_in(&dir)
            .map_err(|e| io("creating a temporary file for", e))?;
        tmp.write_all(&text).map_err(|e| io("writing", e))?;
        tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
        tmp.persist(&self.path)
            .map_err(|e| io("replacing", e.error))?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Reads a state file, refusing a symbolic link in its place: the state is a key's secrets, and
/// a link planted where it lives would hand them (or someone else's file) to the key.
fn read_no_link(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    }
    let mut file = options.open(path)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok(text)
}

/// Serde for plain byte fields as lower-case hex.
mod hex_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&HEXLOWER.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        HEXLOWER
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for secrets as hex, zeroizing the intermediate text.
mod hex_secret {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &Zeroizing<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(HEXLOWER.encode(bytes));
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        hex_bytes::deserialize(d).map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> KeyState {
        let mut state = KeyState::new(Some(0x0102_0304));
        state.credentials.push(StoredCredential {
            name: b"0001:alice@example.com".to_vec(),
            kind_alg: 0x21,
            digits: 6,
            secret: Zeroizing::new(b"12345678901234567890".to_vec()),
            touch: false,
            pin_encrypted: false,
            counter: 0,
        });
        state.pin = Some(PinRecord::new(b"123456"));
        state.card.access_key = Some(AccessKey {
            kind_alg: 0x21,
            key: Zeroizing::new(vec![0xA5; 16]),
        });
        state
    }

    #[test]
    fn a_file_without_card_state_gets_a_fresh_one() {
        let mut json = serde_json::to_value(KeyState::new(Some(5))).expect("encodes");
        json.as_object_mut().expect("object").remove("card");
        let state: KeyState = serde_json::from_value(json).expect("older files still load");
        assert_eq!(state.card.oath_salt.len(), 8);
        assert_eq!(state.card.access_key, None);
        assert_eq!(state.card.usb_enabled_other, CardState::DEFAULT_OTHER);
    }

    #[test]
    fn new_key_uses_the_given_serial() {
        let state = KeyState::new(Some(0xCAFE_F00D));
        assert_eq!(state.serial, 0xCAFE_F00D);
        assert_eq!(&state.uuid[..4], &[0xCA, 0xFE, 0xF0, 0x0D]);
        assert_eq!(state.settings, Settings::default());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_link_in_place_of_the_state_file_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = dir.path().join("other.json");
        let file = StateFile::new(dir.path().join("key.json"));
        file.save(&KeyState::new(Some(7))).expect("saved");
        std::fs::rename(file.path(), &other).expect("moved away");
        std::os::unix::fs::symlink(&other, file.path()).expect("symlink");
        assert!(file.load().is_err(), "a link is not read through");
    }

    #[test]
    fn save_and_load_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::new(dir.path().join("key.json"));
        assert!(file.load().expect("absent is fine").is_none());
        let state = sample();
        file.save(&state).expect("saved");
        let mode = fs::metadata(file.path())
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(file.load().expect("loads"), Some(state));
        // Nothing but the state file is left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn pin_is_stored_as_a_salted_hash() {
        let record = PinRecord::new(b"123456");
        assert!(record.matches(b"123456"));
        assert!(!record.matches(b"123457"));
        let json = serde_json::to_string(&record).expect("encodes");
        assert!(!json.contains(&HEXLOWER.encode(b"123456")), "{json}");
        assert_eq!(PinRecord::new(b"123456").retries, 8);
        assert_ne!(PinRecord::new(b"x").salt, PinRecord::new(b"x").salt);
    }

    #[test]
    fn corrupt_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.json");
        fs::write(&path, b"{\"format\": 1, \"serial\": ").expect("written");
        let err = StateFile::new(&path).load().expect_err("torn file");
        assert!(err.to_string().contains("key.json"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let state = sample();
        let shown = format!("{state:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("12345678901234567890"));
        assert!(!shown.contains("49, 50, 51"));
        assert!(!shown.contains("165, 165"), "{shown}");
        assert!(!shown.contains("a5a5"), "{shown}");
    }
}
