//! The admin app (vendor command 0x72), device side: STATUS and the configuration fields.
//!
//! The oathkey profile carries the vendor admin tool's settings as fields; the Nitrokey 3
//! profile has none of them, so hosts see "invalid key" as on a stock Nitrokey 3.

use oathkey_device::admin::{
    ConfigField, ConfigStatus, FieldEntry, FieldType, SetConfigRequest, Setting, bool_text, command,
};
use oathkey_device::ctaphid::wire::err;

use crate::config::Profile;
use crate::state::{KeyState, Settings};

/// Where the admin app stands after a request.
#[derive(Debug)]
pub enum Step {
    /// Raw answer bytes (the admin app has no status word).
    Answer(Vec<u8>),
    /// A CTAPHID error instead of an answer.
    CtapError(u8),
    /// A change waiting for a touch; finish it with [`resume`].
    NeedsTouch(Change),
}

/// A configuration change waiting for a touch.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    setting: Setting,
    value: bool,
}

/// The fields this profile offers.
pub fn fields(profile: Profile) -> Vec<ConfigField> {
    match profile {
        Profile::Nitrokey3 => Vec::new(),
        Profile::Oathkey => Setting::ALL
            .into_iter()
            .map(|s| ConfigField {
                name: s.field().into(),
                needs_touch: true,
                // Interfaces are enumerated at plug-in; Key Press applies at once.
                needs_reboot: s != Setting::OtpKeyPress,
                destructive: false,
                ty: FieldType::Bool,
            })
            .collect(),
    }
}

fn value(settings: &Settings, setting: Setting) -> bool {
    match setting {
        Setting::ModeKeyboard => settings.keyboard,
        Setting::ModeU2f => settings.u2f,
        Setting::OtpKeyPress => settings.key_press,
    }
}

fn status(s: ConfigStatus) -> Step {
    Step::Answer(vec![s as u8])
}

/// Handles one admin request payload.
pub fn handle(state: &KeyState, profile: Profile, payload: &[u8]) -> Step {
    let Some((&sub, data)) = payload.split_first() else {
        return Step::CtapError(err::INVALID_LEN);
    };
    let lookup = |name: &[u8]| {
        std::str::from_utf8(name)
            .ok()
            .and_then(Setting::from_field)
            .filter(|_| profile == Profile::Oathkey)
    };
    match sub {
        command::STATUS => {
            // Init status OK, 0 internal / 0 external blocks free (not modelled), variant 0
            // (the USB/IP simulation), model 0 (Nitrokey 3 family), revision 0.
            Step::Answer(vec![0, 0, 0, 0, 0, 0, 0])
        }
        command::GET_CONFIG => match lookup(data) {
            Some(setting) => {
                let mut out = vec![ConfigStatus::Success as u8];
                out.extend_from_slice(bool_text(value(&state.settings, setting)).as_bytes());
                Step::Answer(out)
            }
            None => status(ConfigStatus::InvalidKey),
        },
        command::SET_CONFIG => {
            let Ok(request) = ciborium::from_reader::<SetConfigRequest, _>(data) else {
                return status(ConfigStatus::DeserializationFailed);
            };
            let Some(setting) = lookup(request.key.as_bytes()) else {
                return status(ConfigStatus::InvalidKey);
            };
            let value = match request.value.as_str() {
                "true" => true,
                "false" => false,
                _ => return status(ConfigStatus::InvalidValue),
            };
            let mut next = state.settings;
            apply(&mut next, setting, value);
            // A key with neither interface could never be reached again.
            if !next.keyboard && !next.u2f {
                return status(ConfigStatus::InvalidValue);
            }
            Step::NeedsTouch(Change { setting, value })
        }
        command::LIST_AVAILABLE_FIELDS => {
            let entries: Vec<FieldEntry> = fields(profile).iter().map(FieldEntry::from).collect();
            let mut out = Vec::new();
            match ciborium::into_writer(&entries, &mut out) {
                Ok(()) => Step::Answer(out),
                Err(_) => Step::CtapError(err::OTHER),
            }
        }
        _ => Step::CtapError(err::INVALID_CMD),
    }
}

fn apply(settings: &mut Settings, setting: Setting, value: bool) {
    match setting {
        Setting::ModeKeyboard => settings.keyboard = value,
        Setting::ModeU2f => settings.u2f = value,
        Setting::OtpKeyPress => settings.key_press = value,
    }
}

/// Finishes a change after the touch came (or did not). Returns the answer and whether the
/// state changed.
pub fn resume(state: &mut KeyState, change: Change, touched: bool) -> (Vec<u8>, bool) {
    if !touched {
        return (vec![ConfigStatus::NotConfirmed as u8], false);
    }
    apply(&mut state.settings, change.setting, change.value);
    (vec![ConfigStatus::Success as u8], true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oathkey_device::admin::{parse_fields, set_config_payload};

    fn answer(step: Step) -> Vec<u8> {
        match step {
            Step::Answer(a) => a,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn get_and_set_the_vendor_settings() {
        let mut state = KeyState::new(Some(1));
        let get = |state: &KeyState, name: &str| {
            let mut p = vec![command::GET_CONFIG];
            p.extend_from_slice(name.as_bytes());
            answer(handle(state, Profile::Oathkey, &p))
        };
        assert_eq!(get(&state, "otp.key_press"), b"\x00false");
        let payload = set_config_payload("otp.key_press", "true").expect("encodes");
        let Step::NeedsTouch(change) = handle(&state, Profile::Oathkey, &payload) else {
            panic!("a settings change needs a touch");
        };
        assert_eq!(resume(&mut state, change, false), (vec![8], false));
        assert_eq!(get(&state, "otp.key_press"), b"\x00false");
        assert_eq!(resume(&mut state, change, true), (vec![0], true));
        assert_eq!(get(&state, "otp.key_press"), b"\x00true");
    }

    #[test]
    fn refuses_bad_changes_with_config_status() {
        let mut state = KeyState::new(Some(1));
        let set = |state: &KeyState, k: &str, v: &str| {
            handle(
                state,
                Profile::Oathkey,
                &set_config_payload(k, v).expect("encodes"),
            )
        };
        assert_eq!(answer(set(&state, "no.such", "true")), vec![5]);
        assert_eq!(answer(set(&state, "mode.u2f", "yes")), vec![6]);
        state.settings.keyboard = false;
        assert_eq!(answer(set(&state, "mode.u2f", "false")), vec![6]);
        let garbage = [command::SET_CONFIG, 0xFF, 0x13];
        assert_eq!(answer(handle(&state, Profile::Oathkey, &garbage)), vec![3]);
    }

    #[test]
    fn nitrokey3_profile_has_no_such_fields() {
        let state = KeyState::new(Some(1));
        let mut p = vec![command::GET_CONFIG];
        p.extend_from_slice(b"mode.u2f");
        assert_eq!(answer(handle(&state, Profile::Nitrokey3, &p)), vec![5]);
        let listed = answer(handle(
            &state,
            Profile::Nitrokey3,
            &[command::LIST_AVAILABLE_FIELDS],
        ));
        assert!(parse_fields(&listed).expect("valid CBOR").is_empty());
        let listed = answer(handle(
            &state,
            Profile::Oathkey,
            &[command::LIST_AVAILABLE_FIELDS],
        ));
        let names: Vec<_> = parse_fields(&listed)
            .expect("valid")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["mode.keyboard", "mode.u2f", "otp.key_press"]);
    }

    #[test]
    fn malformed_requests_get_ctaphid_errors() {
        let state = KeyState::new(Some(1));
        assert!(matches!(
            handle(&state, Profile::Oathkey, &[]),
            Step::CtapError(err::INVALID_LEN)
        ));
        assert!(matches!(
            handle(&state, Profile::Oathkey, &[0x99]),
            Step::CtapError(err::INVALID_CMD)
        ));
    }
}
