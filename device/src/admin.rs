//! The admin app (CTAPHID vendor command 0x72): device status and named configuration fields.
//!
//! The vendor tool's two device settings, Mode (Keyboard / U2F interfaces) and Key Press (touch
//! to release an OTP), are carried as the boolean fields [`Setting`] names. A key that does not
//! know a field answers "invalid key"; a key without the admin app answers CTAPHID INVALID_CMD.
//! Both mean "unsupported" to callers.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Admin app subcommand bytes (the first byte of the 0x72 payload).
pub mod command {
    /// Init status and hardware details.
    pub const STATUS: u8 = 0x80;
    /// Read one configuration field; data = the field name in UTF-8.
    pub const GET_CONFIG: u8 = 0x82;
    /// Write one field; data = CBOR `{"key": name, "value": text}`.
    pub const SET_CONFIG: u8 = 0x83;
    /// CBOR array of the fields the device knows.
    pub const LIST_AVAILABLE_FIELDS: u8 = 0x86;
}

/// The status byte of GET_CONFIG and SET_CONFIG answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConfigStatus {
    /// Done.
    Success = 0,
    /// The stored configuration could not be read.
    ReadFailed = 1,
    /// The new configuration could not be stored.
    WriteFailed = 2,
    /// The request could not be decoded.
    DeserializationFailed = 3,
    /// The answer could not be encoded.
    SerializationFailed = 4,
    /// No such field.
    InvalidKey = 5,
    /// The value is not valid for the field.
    InvalidValue = 6,
    /// The value is too long.
    DataTooLong = 7,
    /// The change needed a touch that did not come.
    NotConfirmed = 8,
}

impl ConfigStatus {
    /// Decodes a status byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Success,
            1 => Self::ReadFailed,
            2 => Self::WriteFailed,
            3 => Self::DeserializationFailed,
            4 => Self::SerializationFailed,
            5 => Self::InvalidKey,
            6 => Self::InvalidValue,
            7 => Self::DataTooLong,
            8 => Self::NotConfirmed,
            _ => return None,
        })
    }

    /// A reason for messages.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ReadFailed => "reading the configuration failed",
            Self::WriteFailed => "writing the configuration failed",
            Self::DeserializationFailed => "the request could not be decoded",
            Self::SerializationFailed => "the answer could not be encoded",
            Self::InvalidKey => "no such field",
            Self::InvalidValue => "invalid value for this field",
            Self::DataTooLong => "value too long",
            Self::NotConfirmed => "not confirmed by a touch",
        }
    }
}

/// The configuration fields this project uses: the vendor admin tool's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    /// Mode: the keyboard interface (types the OTP on a press) is enabled.
    ModeKeyboard,
    /// Mode: the U2F/FIDO function is enabled.
    ModeU2f,
    /// Key Press: every OTP needs a touch of the key.
    OtpKeyPress,
}

impl Setting {
    /// Every setting, in display order.
    pub const ALL: [Setting; 3] = [
        Setting::ModeKeyboard,
        Setting::ModeU2f,
        Setting::OtpKeyPress,
    ];

    /// The admin-app field name.
    pub const fn field(self) -> &'static str {
        match self {
            Setting::ModeKeyboard => "mode.keyboard",
            Setting::ModeU2f => "mode.u2f",
            Setting::OtpKeyPress => "otp.key_press",
        }
    }

    /// The setting with this field name.
    pub fn from_field(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.field() == name)
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field())
    }
}

/// Encodes a boolean the way the admin app expects it.
pub fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// Decodes a boolean field value.
pub fn parse_bool(field: &str, text: &str) -> Result<bool, Error> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(Error::Protocol(format!(
            "field {field} has non-boolean value {other:?}"
        ))),
    }
}

/// The type of a configuration field, as LIST_AVAILABLE_FIELDS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `true` / `false`.
    Bool,
    /// 0..=255.
    U8,
    /// Text.
    String,
    /// 0..=65535.
    U16,
    /// 32-bit unsigned.
    U32,
    /// A type this crate does not know.
    Other(u8),
}

impl FieldType {
    /// The CBOR number of this type.
    pub fn code(self) -> u8 {
        match self {
            Self::Bool => 0,
            Self::U8 => 1,
            Self::String => 2,
            Self::U16 => 3,
            Self::U32 => 4,
            Self::Other(n) => n,
        }
    }

    /// The type with this CBOR number.
    pub fn from_code(n: u8) -> Self {
        match n {
            0 => Self::Bool,
            1 => Self::U8,
            2 => Self::String,
            3 => Self::U16,
            4 => Self::U32,
            n => Self::Other(n),
        }
    }
}

/// One field as LIST_AVAILABLE_FIELDS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigField {
    /// Field name, such as `otp.key_press`.
    pub name: String,
    /// Changing it needs a touch.
    pub needs_touch: bool,
    /// A change takes effect after a reboot (replug).
    pub needs_reboot: bool,
    /// A change destroys data.
    pub destructive: bool,
    /// Value type.
    pub ty: FieldType,
}

/// The CBOR shape of a LIST_AVAILABLE_FIELDS entry (short keys as the admin app sends them).
#[derive(Debug, Serialize, Deserialize)]
pub struct FieldEntry {
    /// Name.
    pub n: String,
    /// Needs touch.
    pub c: bool,
    /// Needs reboot.
    pub r: bool,
    /// Destructive.
    pub d: bool,
    /// Type code.
    pub t: u8,
}

impl From<&ConfigField> for FieldEntry {
    fn from(f: &ConfigField) -> Self {
        Self {
            n: f.name.clone(),
            c: f.needs_touch,
            r: f.needs_reboot,
            d: f.destructive,
            t: f.ty.code(),
        }
    }
}

impl From<FieldEntry> for ConfigField {
    fn from(e: FieldEntry) -> Self {
        Self {
            name: e.n,
            needs_touch: e.c,
            needs_reboot: e.r,
            destructive: e.d,
            ty: FieldType::from_code(e.t),
        }
    }
}

/// The CBOR map SET_CONFIG carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct SetConfigRequest {
    /// Field name.
    pub key: String,
    /// New value as text.
    pub value: String,
}

/// Encodes a CBOR value to bytes.
pub fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|e| Error::InvalidArgument(format!("CBOR encoding failed: {e}")))?;
    Ok(out)
}

/// The SET_CONFIG payload (subcommand byte included).
pub fn set_config_payload(field: &str, value: &str) -> Result<Vec<u8>, Error> {
    let mut payload = vec![command::SET_CONFIG];
    payload.extend(to_cbor(&SetConfigRequest {
        key: field.into(),
        value: value.into(),
    })?);
    Ok(payload)
}

/// Parses a LIST_AVAILABLE_FIELDS answer.
pub fn parse_fields(data: &[u8]) -> Result<Vec<ConfigField>, Error> {
    let entries: Vec<FieldEntry> = ciborium::from_reader(data)
        .map_err(|e| Error::Protocol(format!("LIST_AVAILABLE_FIELDS answer is not valid: {e}")))?;
    Ok(entries.into_iter().map(ConfigField::from).collect())
}

/// What STATUS reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminStatus {
    /// Init error bits; 0 means healthy.
    pub init_status: u8,
    /// Hardware variant (0 USB/IP simulation, 1 LPC55, 2 nRF52), when reported.
    pub variant: Option<u8>,
}

/// Parses a STATUS answer.
pub fn parse_status(data: &[u8]) -> Result<AdminStatus, Error> {
    match data {
        [] => Err(Error::Protocol("empty STATUS answer".into())),
        [init, rest @ ..] => Ok(AdminStatus {
            init_status: *init,
            variant: rest.get(3).copied(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_names_round_trip() {
        for s in Setting::ALL {
            assert_eq!(Setting::from_field(s.field()), Some(s));
        }
        assert_eq!(Setting::from_field("fido.disable_skip_up_timeout"), None);
        assert_eq!(Setting::OtpKeyPress.to_string(), "otp.key_press");
    }

    #[test]
    fn set_config_payload_is_a_cbor_map_with_key_and_value() {
        let payload = set_config_payload("otp.key_press", "true").expect("encodes");
        assert_eq!(payload[0], command::SET_CONFIG);
        // Map of two entries, then the text "key".
        assert_eq!(&payload[1..6], &[0xA2, 0x63, b'k', b'e', b'y']);
        let back: SetConfigRequest = ciborium::from_reader(&payload[1..]).expect("decodes");
        assert_eq!(
            (back.key.as_str(), back.value.as_str()),
            ("otp.key_press", "true")
        );
    }

    #[test]
    fn fields_round_trip_through_cbor() {
        let fields = vec![ConfigField {
            name: "mode.u2f".into(),
            needs_touch: true,
            needs_reboot: true,
            destructive: false,
            ty: FieldType::Bool,
        }];
        let entries: Vec<FieldEntry> = fields.iter().map(FieldEntry::from).collect();
        let bytes = to_cbor(&entries).expect("encodes");
        assert_eq!(parse_fields(&bytes).expect("decodes"), fields);
        assert!(matches!(
            parse_fields(&[0xFF, 0x00]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn status_and_bools() {
        assert_eq!(
            parse_status(&[0, 1, 0, 2, 0, 0, 0]).expect("valid"),
            AdminStatus {
                init_status: 0,
                variant: Some(0)
            }
        );
        assert_eq!(parse_status(&[4]).expect("valid").variant, None);
        assert!(parse_status(&[]).is_err());
        assert!(parse_bool("f", "true").expect("bool"));
        assert!(parse_bool("f", "TRUE").is_err());
        assert_eq!(ConfigStatus::from_byte(5), Some(ConfigStatus::InvalidKey));
        assert_eq!(ConfigStatus::from_byte(9), None);
    }
}
