//! write_file: permissions, modes, atomic replacement, refusals.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oathkey_seedfile::{
    AZURE_HEADER, FileError, Format, RenderError, Target, WriteMode, read, read_path, read_path_as,
    render_checked, write_file,
};

use crate::common::{common_records, shown, totp};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// The names in `dir`, sorted: temporary files would show up here.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn create_new_writes_0600_and_refuses_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    write_file(
        &path,
        Format::AzureCsv,
        &common_records(),
        WriteMode::CreateNew,
        false,
    )
    .expect("created");
    assert_eq!(mode_of(&path), 0o600);
    let first = fs::read(&path).expect("read");
    assert!(first.starts_with(AZURE_HEADER.as_bytes()));

    let err = write_file(
        &path,
        Format::AzureCsv,
        &common_records()[..1],
        WriteMode::CreateNew,
        false,
    )
    .expect_err("exists");
    assert!(
        matches!(&err, FileError::Exists { path: p } if p == &path),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(fs::read(&path).expect("read"), first, "untouched");
    assert_eq!(entries(dir.path()), ["tokens.csv"]);
}

#[test]
fn replace_replaces_and_tightens_permissions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.json");
    fs::write(&path, "old content").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let records = common_records();
    write_file(
        &path,
        Format::GraphJson,
        &records[1..2],
        WriteMode::Replace,
        false,
    )
    .expect("replaced");
    assert_eq!(mode_of(&path), 0o600);
    let parsed = read(Format::GraphJson, &fs::read(&path).expect("read"));
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    assert_eq!(parsed.into_records(), records[1..2]);
    assert_eq!(entries(dir.path()), ["tokens.json"]);
}

#[test]
fn append_keeps_existing_text_and_adds_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    // Written by another tool: upper-case header, CRLF, quoted fields.
    let existing = "UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model\r\n\"alice@contoso.com\",\"0000001\",\"jbswy3dpehpk3pxp\",30,Vendor,\"K, 1\"\r\n";
    fs::write(&path, existing).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let records = common_records();
    write_file(&path, Format::AzureCsv, &records, WriteMode::Append, false).expect("appended");
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.starts_with(existing), "{text}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "new rows use the file's CRLF"
    );
    assert_eq!(mode_of(&path), 0o600);
    let parsed = read(Format::AzureCsv, text.as_bytes());
    // The other tool's header is kept as it was (appending never rewrites existing text), and
    // is still reported: Azure wants it exactly.
    assert_eq!(
        shown(&parsed),
        [format!(
            "line 1: header is \"UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model\", not exactly `{AZURE_HEADER}`; Azure requires this header exactly (lower case, no spaces around the names)"
        )]
    );
    let serials: Vec<_> = parsed
        .records
        .iter()
        .map(|(_, r)| r.serial.as_str())
        .collect();
    assert_eq!(serials, ["0000001", "0012345", "0012346", "000789"]);
    assert_eq!(entries(dir.path()), ["tokens.csv"]);
}

#[test]
fn append_to_documents_rerenders_them_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    for format in [Format::GraphJson, Format::Pskc] {
        let path = dir.path().join(format!("tokens.{}", format.extension()));
        let records = common_records();
        write_file(&path, format, &records[..1], WriteMode::CreateNew, false).expect("created");
        write_file(&path, format, &records[1..], WriteMode::Append, false).expect("appended");
        let parsed = read(format, &fs::read(&path).expect("read"));
        assert!(parsed.is_clean(), "{format}: {:?}", shown(&parsed));
        assert_eq!(parsed.into_records(), records, "{format}");
    }
}

#[test]
fn append_keeps_otpauth_comments_and_creates_missing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.txt");
    let records = common_records();
    write_file(
        &path,
        Format::Otpauth,
        &records[..1],
        WriteMode::Append,
        false,
    )
    .expect("created by append");
    assert_eq!(mode_of(&path), 0o600);
    let mut text = fs::read_to_string(&path).expect("read");
    text.insert_str(0, "# batch 1\n");
    text.push_str("# no newline at the end");
    fs::write(&path, &text).expect("write");
    write_file(
        &path,
        Format::Otpauth,
        &records[1..],
        WriteMode::Append,
        false,
    )
    .expect("appended");
    let after = fs::read_to_string(&path).expect("read");
    assert!(after.starts_with(&text), "{after}");
    assert_eq!(read(Format::Otpauth, after.as_bytes()).records.len(), 3);
}

#[test]
fn append_refuses_serials_already_in_the_file_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    let records = common_records();
    write_file(
        &path,
        Format::AzureCsv,
        &records,
        WriteMode::CreateNew,
        false,
    )
    .expect("created");
    let before = fs::read(&path).expect("read");
    let again = totp("0012346", "zoe@contoso.com", b"another secret");
    let err = write_file(
        &path,
        Format::AzureCsv,
        std::slice::from_ref(&again),
        WriteMode::Append,
        false,
    )
    .expect_err("duplicate");
    let problems: Vec<_> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        ["serial 0012346: duplicate serial number (first on line 3)"]
    );
    assert_eq!(fs::read(&path).expect("read"), before, "untouched");

    write_file(&path, Format::AzureCsv, &[again], WriteMode::Append, true).expect("forced");
    let parsed = read(Format::AzureCsv, &fs::read(&path).expect("read"));
    assert_eq!(parsed.records.len(), 4);
    assert_eq!(
        shown(&parsed),
        ["line 5 (serial 0012346): duplicate serial number (first on line 3)"]
    );
    assert_eq!(entries(dir.path()), ["tokens.csv"]);
}

#[test]
fn append_refuses_a_file_that_does_not_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    // No header: appending would keep a file Azure refuses.
    let existing = "alice@contoso.com,0000001,JBSWY3DPEHPK3PXP,30,m,k\n";
    fs::write(&path, existing).expect("write");
    let err = write_file(
        &path,
        Format::AzureCsv,
        &common_records(),
        WriteMode::Append,
        false,
    )
    .expect_err("invalid existing file");
    match &err {
        FileError::ExistingInvalid {
            format, problems, ..
        } => {
            assert_eq!(*format, Format::AzureCsv);
            assert_eq!(
                problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
                [format!(
                    "line 1: missing header row; the first line must be `{AZURE_HEADER}`"
                )]
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("is not a valid azure-csv file"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).expect("read"), existing);

    // Another format's file is not appended to either.
    let json = dir.path().join("tokens.json");
    fs::write(&json, "upn,serial number\n").expect("write");
    let err = write_file(
        &json,
        Format::GraphJson,
        &common_records(),
        WriteMode::Append,
        false,
    )
    .expect_err("not JSON");
    assert!(matches!(err, FileError::ExistingInvalid { .. }), "{err}");
    assert_eq!(entries(dir.path()), ["tokens.csv", "tokens.json"]);
}

#[test]
fn rejected_rows_are_refused_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    let mut bad = totp("0012345", "alice@contoso.com", b"12345678901234567890");
    bad.period = 45;
    for mode in [WriteMode::CreateNew, WriteMode::Replace, WriteMode::Append] {
        let err = write_file(&path, Format::AzureCsv, &[bad.clone()], mode, false)
            .expect_err("period 45");
        assert!(
            matches!(&err, FileError::Render { source: RenderError::Rejected(p), .. } if p.len() == 1),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "nothing written to {}: 1 problem: serial 0012345: time interval 45 is not supported; use 30 or 60 seconds",
                path.display()
            )
        );
        assert!(!path.exists());
    }
    write_file(&path, Format::AzureCsv, &[bad], WriteMode::CreateNew, true).expect("forced");
    assert!(fs::read_to_string(&path).expect("read").contains(",45,"));

    let mut hotp = totp("0012399", "alice@contoso.com", b"12345678901234567890");
    hotp.kind = oathkey_seedfile::Kind::Hotp;
    let err = write_file(&path, Format::AzureCsv, &[hotp], WriteMode::Replace, true)
        .expect_err("HOTP cannot be written as Azure CSV");
    assert!(
        matches!(
            err,
            FileError::Render {
                source: RenderError::Other(_),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(entries(dir.path()), ["tokens.csv"]);
}

#[test]
fn read_path_detects_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    for format in Format::ALL {
        let path = dir.path().join(format!("t-{format}"));
        let records = crate::common::records_for(format);
        write_file(&path, format, &records, WriteMode::CreateNew, false).expect("written");
        let (found, parsed) = read_path(&path, None).expect("read");
        assert_eq!(found, format);
        assert_eq!(parsed.records.len(), records.len(), "{format}");
    }
    let unknown = dir.path().join("notes.txt");
    fs::write(&unknown, "hello").expect("write");
    assert!(matches!(
        read_path(&unknown, None),
        Err(FileError::UnknownFormat { .. })
    ));
    assert!(matches!(
        read_path(&dir.path().join("missing"), None),
        Err(FileError::Io { .. })
    ));
}

/// Forcing is never silent: every problem written anyway comes back with the line its row is
/// on in the file, for the caller to warn about.
#[test]
fn forced_rows_come_back_with_their_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    let mut records = common_records();
    records[1].period = 45;
    records[2].user = "carol@contoso..com".into();
    let refused = write_file(
        &path,
        Format::AzureCsv,
        &records,
        WriteMode::CreateNew,
        false,
    )
    .expect_err("refused without force");
    assert_eq!(refused.problems().len(), 2);
    assert!(!path.exists());
    let forced = write_file(
        &path,
        Format::AzureCsv,
        &records,
        WriteMode::CreateNew,
        true,
    )
    .expect("forced");
    let forced: Vec<String> = forced.iter().map(ToString::to_string).collect();
    assert_eq!(
        forced,
        [
            "line 3 (serial 0012346): time interval 45 is not supported; use 30 or 60 seconds",
            "line 4 (serial 000789): upn \"carol@contoso..com\" is not a user principal name (name@domain.tld, no spaces)",
        ]
    );
    // The lines are the file's: reading it gives the same problems.
    let again: Vec<String> = read(Format::AzureCsv, &fs::read(&path).expect("read"))
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(again, forced);

    // Appending: only the new rows' problems, on the lines they land on.
    let mut more = totp("0012400", "dave@contoso.com", b"12345678901234567890");
    more.period = 90;
    let good = totp("0012401", "erin@contoso.com", b"12345678901234567890");
    let dup = totp("0012345", "frank@contoso.com", b"12345678901234567890");
    let forced = write_file(
        &path,
        Format::AzureCsv,
        &[good.clone(), more, dup],
        WriteMode::Append,
        true,
    )
    .expect("forced");
    let forced: Vec<String> = forced.iter().map(ToString::to_string).collect();
    assert_eq!(
        forced,
        [
            "line 6 (serial 0012400): time interval 90 is not supported; use 30 or 60 seconds",
            "line 7 (serial 0012345): duplicate serial number (first on line 2)",
        ]
    );
    // Nothing to force: nothing to warn about.
    let clean = dir.path().join("clean.json");
    let none = write_file(
        &clean,
        Format::GraphJson,
        &[good],
        WriteMode::CreateNew,
        false,
    )
    .expect("clean");
    assert!(none.is_empty());
    // One document formats get the lines too.
    let mut bad = totp("0099", "x@contoso.com", b"12345678901234567890");
    bad.period = 45;
    let rendered = render_checked(
        Format::GraphJson,
        &[totp("0098", "y@contoso.com", b"12345678901234567890"), bad],
        true,
    )
    .expect("forced");
    let forced: Vec<String> = rendered.forced.iter().map(ToString::to_string).collect();
    assert_eq!(
        forced,
        ["line 13 (serial 0099): time interval 45 is not supported; use 30 or 60 seconds"]
    );
    assert!(
        !format!("{rendered:?}").contains("GEZDGNBV"),
        "Debug shows no secret"
    );
}

#[test]
fn read_path_as_falls_back_on_the_target_and_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Three columns and no header a detector would know: read as Azure for --target azure.
    let five = dir.path().join("export.txt");
    fs::write(
        &five,
        "user,serial,secret\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP\n",
    )
    .expect("write");
    assert!(matches!(
        read_path(&five, None),
        Err(FileError::UnknownFormat { .. })
    ));
    let (format, parsed) = read_path_as(&five, None, Some(Target::Azure)).expect("read");
    assert_eq!(format, Format::AzureCsv);
    assert_eq!(
        shown(&parsed),
        [
            format!("line 1: wrong header; the first line must be `{AZURE_HEADER}`"),
            format!("line 2: expected 6 fields ({AZURE_HEADER}), found 3"),
        ]
    );
    // A .csv name is enough.
    let named = dir.path().join("tseed.csv");
    fs::copy(&five, &named).expect("copy");
    assert_eq!(read_path(&named, None).expect("read").0, Format::AzureCsv);
    // UTF-16 is decoded before the format is told: its header says Azure CSV, whatever the
    // name; the encoding is the file's problem.
    let utf16 = dir.path().join("tseed.txt");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(
        format!("{AZURE_HEADER}\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,m,k\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    fs::write(&utf16, &bytes).expect("write");
    let (format, parsed) = read_path(&utf16, None).expect("read");
    assert_eq!(format, Format::AzureCsv);
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(
        shown(&parsed),
        [
            "line 1: file is saved as UTF-16; its rows were read, but save it as UTF-8 to upload or append to it (in Excel: \"CSV UTF-8 (comma delimited)\")"
        ]
    );
    // UTF-16 that no format fits: no format, as for UTF-8.
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend("hello".encode_utf16().flat_map(u16::to_le_bytes));
    fs::write(&utf16, &bytes).expect("write");
    assert!(matches!(
        read_path(&utf16, None),
        Err(FileError::UnknownFormat { .. })
    ));
}
