//! Checks of the admin form's fields: pure functions, so every rule has a unit test and the
//! form shows the same message the tests expect, next to the field it is about.
//!
//! The rules are the daemon's own (`tokens.create`) and Azure's seed-file rules where they are
//! stricter and cheap to tell early; the daemon checks again and its answer is shown too.

use std::path::{Path, PathBuf};

use data_encoding::BASE32_NOPAD;
use oathkey_otp::Base32Error;
use oathkey_seedfile::WriteMode;
use zeroize::Zeroizing;

// The key's limits are the device crate's (`oathkey_device::oath::MAX_NAME_LEN` and
// `MAX_SECRET_LEN`), repeated here because clients talk to keys only through the daemon and do
// not link the device layer; the daemon checks them again with the originals.

/// The longest token name a key stores (`[period/]serial:account`), in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// The longest secret a key stores, in bytes.
pub const MAX_SECRET_LEN: usize = 128;

/// A user principal name: `local@domain.tld`, no spaces, one `@`, a dotted domain whose last
/// label is at least two letters. Spaces around it are ignored (the daemon trims them too).
pub fn upn(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the user's UPN, such as alice@contoso.com".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("A UPN has no spaces".into());
    }
    let Some((local, domain)) = text.split_once('@') else {
        return Err("A UPN looks like alice@contoso.com (no @ found)".into());
    };
    if domain.contains('@') {
        return Err("A UPN has exactly one @".into());
    }
    if local.is_empty() {
        return Err("The part before @ is empty".into());
    }
    if local.contains(':') {
        // The key's token name is `serial:account`; a colon would be ambiguous on other tools.
        return Err("A UPN has no ':'".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err("The domain needs a dot, such as contoso.com".into());
    }
    let ok_label = |l: &&str| {
        l.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.iter().all(ok_label) {
        return Err("The domain may hold only letters, digits, '-' and dots".into());
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().count() < 2 || !tld.chars().all(char::is_alphabetic) {
        return Err("The domain must end in a name such as .com".into());
    }
    Ok(())
}

/// A token serial: 1 to 32 characters of `A-Z a-z 0-9 . _ -` (leading zeros are kept).
pub fn serial(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("Generate a serial, or enter one".into());
    }
    if text.chars().count() > 32 {
        return Err("A serial has at most 32 characters".into());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "A serial may hold only letters, digits, '.', '_' and '-' (not {bad:?})"
        ));
    }
    Ok(())
}

/// A Base32 seed as people type it (any case; spaces, `-` and trailing `=` ignored), decoding to
/// 1 to 128 bytes. Returns the normalised text (upper case, no padding) to send to the daemon.
/// The messages never quote the seed.
///
/// The decoding is the shared one (`oathkey-otp`, as in the daemon and the CLI), but the form is
/// stricter on purpose: it takes only text an encoder writes (decoding and encoding again gives
/// it back), because a character too many or too few in a seed being typed is more likely a
/// typo than a seed from elsewhere; the CLI and the daemon take such text, bits past the last
/// whole byte dropped.
pub fn seed(text: &str) -> Result<Zeroizing<String>, String> {
    const NOT_WHOLE: &str = "This is not a whole Base32 seed (a character missing or extra?)";
    let bytes = oathkey_otp::decode_base32(text).map_err(|e| match e {
        Base32Error::Empty => "Generate a seed, or enter one in Base32",
        Base32Error::NotBase32 => "A Base32 seed holds only the letters A-Z and the digits 2-7",
        Base32Error::NoWholeByte => NOT_WHOLE,
    })?;
    if bytes.len() > MAX_SECRET_LEN {
        return Err(format!(
            "A seed has at most {MAX_SECRET_LEN} bytes ({} Base32 characters)",
            BASE32_NOPAD.encode_len(MAX_SECRET_LEN)
        ));
    }
    // Decoding succeeded, so the alphanumeric characters are exactly the Base32 ones.
    let typed: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let canonical = Zeroizing::new(BASE32_NOPAD.encode(&bytes));
    if *canonical != *typed {
        return Err(NOT_WHOLE.into());
    }
    Ok(canonical)
}

/// The name the token gets on the key, `[period/]serial:account`, must fit the key.
pub fn name_length(serial: &str, account: &str, period: u32) -> Result<(), String> {
    let prefix = if period == 30 {
        0
    } else {
        period.to_string().len() + 1
    };
    let len = prefix + serial.len() + 1 + account.trim().len();
    if len > MAX_NAME_LEN {
        return Err(format!(
            "Serial and UPN together are too long for the key ({len} of {MAX_NAME_LEN} bytes)"
        ));
    }
    Ok(())
}

/// What is at a path, as far as the export cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing.
    Missing,
    /// A file (or anything that is not a directory).
    File,
    /// A directory.
    Directory,
}

/// What is at `path` on this machine.
pub fn probe_fs(path: &Path) -> PathKind {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => PathKind::Directory,
        Ok(_) => PathKind::File,
        Err(_) => PathKind::Missing,
    }
}

/// The seed file to write: an absolute path (or `~/...`), in a folder that exists, and not an
/// existing file unless the mode says to append to it or replace it. `probe` tells what is on
/// disk (tests pass a fake).
pub fn export_path(
    text: &str,
    mode: WriteMode,
    home: Option<&Path>,
    probe: impl Fn(&Path) -> PathKind,
) -> Result<PathBuf, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the file to write, such as ~/tseed.csv".into());
    }
    let path = match (text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (Some(_), None) => return Err("~ cannot be used: HOME is not set".into()),
        (None, _) => PathBuf::from(text),
    };
    if !path.is_absolute() {
        return Err("Use a full path, starting with / or ~/".into());
    }
    if text.ends_with('/') || probe(&path) == PathKind::Directory {
        return Err("This is a folder; add a file name".into());
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    if probe(parent) != PathKind::Directory {
        return Err(format!("The folder {} does not exist", parent.display()));
    }
    if mode == WriteMode::CreateNew && probe(&path) == PathKind::File {
        return Err("The file exists: choose Append or Replace to write to it".into());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_accepts_the_usual_shapes() {
        for ok in [
            "alice@contoso.com",
            "  bob.smith@mail.contoso.co.uk ",
            "x@a-b.de",
            "jörg@beispiel.de",
        ] {
            assert_eq!(upn(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn upn_refuses_what_is_not_local_at_domain_dot_tld() {
        for (bad, why) in [
            ("", "Enter"),
            ("alice", "no @"),
            ("alice@contoso", "dot"),
            ("@contoso.com", "before @"),
            ("alice@@contoso.com", "one @"),
            ("al ice@contoso.com", "no spaces"),
            ("alice@contoso.c", "end in"),
            ("alice@contoso.123", "end in"),
            ("alice@.com", "dot"),
            ("alice@contoso..com", "dot"),
            ("alice@con_toso.com", "only letters"),
            ("a:b@contoso.com", "':'"),
        ] {
            let err = upn(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn serial_is_1_to_32_of_the_allowed_characters() {
        assert_eq!(serial("00012345"), Ok(()));
        assert_eq!(serial("A.b_c-9"), Ok(()));
        assert_eq!(serial(&"9".repeat(32)), Ok(()));
        assert!(serial("").expect_err("empty").contains("Generate"));
        assert!(serial(&"9".repeat(33)).expect_err("long").contains("32"));
        assert!(serial("12 34").expect_err("space").contains("' '"));
        assert!(serial("12:34").expect_err("colon").contains("':'"));
        assert!(serial("1234é").is_err());
    }

    #[test]
    fn seed_is_normalised_base32_of_1_to_128_bytes() {
        assert_eq!(
            seed("jbsw y3dp-ehpk 3pxp==").expect("ok").as_str(),
            "JBSWY3DPEHPK3PXP"
        );
        assert!(seed("").expect_err("empty").contains("Generate"));
        assert!(seed("JBSWY3DP1").expect_err("1").contains("A-Z"));
        assert!(seed("JBSWY3DPE").expect_err("odd length").contains("whole"));
        let long = BASE32_NOPAD.encode(&[7u8; 129]);
        assert!(seed(&long).expect_err("129 bytes").contains("128"));
        assert!(seed(&BASE32_NOPAD.encode(&[7u8; 128])).is_ok());
    }

    #[test]
    fn seed_errors_never_quote_the_seed() {
        for bad in ["JBSWY3DP!XYZ", "JBSWY3DPE"] {
            let err = seed(bad).expect_err(bad);
            assert!(!err.contains("JBSW"), "{err}");
        }
    }

    #[test]
    fn name_must_fit_the_key() {
        assert_eq!(name_length("12345678", "alice@contoso.com", 30), Ok(()));
        let account = format!("{}@contoso.com", "a".repeat(43)); // 55 bytes
        assert_eq!(name_length("12345678", &account, 30), Ok(())); // 8 + 1 + 55 = 64
        let err = name_length("12345678", &account, 60).expect_err("60/ prefix");
        assert!(err.contains("67 of 64"), "{err}");
    }

    fn fake_fs(path: &Path) -> PathKind {
        match path.to_str() {
            Some("/home/u" | "/tmp" | "/") => PathKind::Directory,
            Some("/tmp/tseed.csv") => PathKind::File,
            _ => PathKind::Missing,
        }
    }

    #[test]
    fn export_path_must_be_a_new_file_in_an_existing_folder() {
        let home = Some(Path::new("/home/u"));
        assert_eq!(
            export_path("~/tseed.csv", WriteMode::CreateNew, home, fake_fs),
            Ok(PathBuf::from("/home/u/tseed.csv"))
        );
        assert_eq!(
            export_path("/tmp/new.csv", WriteMode::CreateNew, home, fake_fs),
            Ok(PathBuf::from("/tmp/new.csv"))
        );
        for (bad, mode, why) in [
            ("", WriteMode::CreateNew, "Enter"),
            ("tseed.csv", WriteMode::CreateNew, "full path"),
            ("/tmp/", WriteMode::CreateNew, "folder"),
            ("/tmp", WriteMode::Replace, "folder"),
            ("/nowhere/tseed.csv", WriteMode::CreateNew, "does not exist"),
            ("/tmp/tseed.csv", WriteMode::CreateNew, "Append or Replace"),
        ] {
            let err = export_path(bad, mode, home, fake_fs).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(export_path("~/x.csv", WriteMode::CreateNew, None, fake_fs).is_err());
    }

    #[test]
    fn an_existing_file_may_be_appended_to_or_replaced() {
        for mode in [WriteMode::Append, WriteMode::Replace] {
            assert_eq!(
                export_path("/tmp/tseed.csv", mode, None, fake_fs),
                Ok(PathBuf::from("/tmp/tseed.csv"))
            );
        }
    }
}
