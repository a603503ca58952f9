//! Malformed input: every reader reports problems with lines and never panics.

use oathkey_seedfile::{
    AZURE_HEADER, Algorithm, Format, Kind, MAX_INPUT, Target, detect, guess, read, read_as, render,
};
use proptest::prelude::*;

use crate::common::{as_carried, records_for, shown};

/// A one-token PSKC document with prefixed names whose `KeyPackage` is on line 3, with the
/// given `AlgorithmParameters` content and `Secret` content.
pub fn pskc_with(parameters: &str, secret: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer Version="1.0" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
  <pskc:KeyPackage>
    <pskc:DeviceInfo><pskc:SerialNo>0012346</pskc:SerialNo></pskc:DeviceInfo>
    <pskc:Key Id="other" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <pskc:AlgorithmParameters>{parameters}</pskc:AlgorithmParameters>
      <pskc:Data>
        <pskc:Secret>{secret}</pskc:Secret>
      </pskc:Data>
    </pskc:Key>
  </pskc:KeyPackage>
</pskc:KeyContainer>
"#
    )
}

/// Deterministic bytes that look like nothing.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn bom_and_crlf_are_tolerated_by_every_reader() {
    for format in Format::ALL {
        let records = records_for(format);
        let text = render(format, &records, false).expect("renders");
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
        let parsed = read(format, &bytes);
        assert!(parsed.is_clean(), "{format}: {:?}", shown(&parsed));
        let expected: Vec<_> = records.iter().map(|r| as_carried(format, r)).collect();
        assert_eq!(parsed.into_records(), expected, "{format}");
    }
}

/// What a spreadsheet makes of a good Azure CSV, each of which `detect` alone cannot place
/// without the header being right: `;` between fields (a regional list separator), a trailing
/// `,` on every line, a column lost. Each is still an Azure CSV, with its problems line by
/// line.
#[test]
fn spreadsheet_damage_is_reported_row_by_row() {
    let good = "alice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,k";
    let semicolons = format!(
        "{}\n{}\n",
        AZURE_HEADER.replace(',', ";"),
        good.replace(',', ";")
    );
    let trailing = format!("{AZURE_HEADER},\n{good},\n");
    let five = "upn,serial number,secret key,time interval,manufacturer\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey\n".to_string();
    let tabs = format!(
        "{}\n{}\n",
        AZURE_HEADER.replace(',', "\t"),
        good.replace(',', "\t")
    );
    let cases = [
        (
            semicolons,
            vec![
                format!(
                    "line 1: wrong header: the fields are separated by ';', not ','; the first line must be `{AZURE_HEADER}`"
                ),
                format!(
                    "line 2: expected 6 fields ({AZURE_HEADER}), found 1: the fields are separated by ';'; Azure's CSV needs ',' (save as \"CSV UTF-8 (comma delimited)\")"
                ),
            ],
        ),
        (
            trailing,
            vec![
                format!(
                    "line 1: wrong header: a trailing ',' adds an empty seventh column; the first line must be `{AZURE_HEADER}`"
                ),
                format!(
                    "line 2: expected 6 fields ({AZURE_HEADER}), found 7: a trailing ',' adds an empty seventh field"
                ),
            ],
        ),
        (
            five,
            vec![
                format!("line 1: wrong header; the first line must be `{AZURE_HEADER}`"),
                format!("line 2: expected 6 fields ({AZURE_HEADER}), found 5"),
            ],
        ),
        (
            tabs,
            vec![
                format!(
                    "line 1: wrong header: the fields are separated by tabs, not ','; the first line must be `{AZURE_HEADER}`"
                ),
                format!(
                    "line 2: expected 6 fields ({AZURE_HEADER}), found 1: the fields are separated by tabs; Azure's CSV needs ',' (save as \"CSV UTF-8 (comma delimited)\")"
                ),
            ],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            detect(text.as_bytes()),
            Some(Format::AzureCsv),
            "an Azure header gone wrong is still Azure: {text:?}"
        );
        assert_eq!(
            shown(&read(Format::AzureCsv, text.as_bytes())),
            expected,
            "{text:?}"
        );
    }
}

/// UTF-16, as Excel's "Unicode text" and Notepad's "Unicode" save it, in either byte order: the
/// rows are read (with their own problems), and the encoding is one problem more, since the
/// upload wants UTF-8 and rows appended to it would be UTF-8.
#[test]
fn utf16_is_read_and_is_one_problem_that_says_what_to_do() {
    let text = format!(
        "{AZURE_HEADER}\r\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,m,k\r\nbob@contoso.com,0012346,JBSWY3DPEHPK3PXP,45,m,k\r\n"
    );
    let encoding = "line 1: file is saved as UTF-16; its rows were read, but save it as UTF-8 to upload or append to it (in Excel: \"CSV UTF-8 (comma delimited)\")";
    let mut le = vec![0xFF, 0xFE];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    for bytes in [le, be] {
        assert_eq!(detect(&bytes), Some(Format::AzureCsv));
        let parsed = read(Format::AzureCsv, &bytes);
        assert_eq!(
            shown(&parsed),
            [
                encoding,
                "line 3 (serial 0012346): time interval 45 is not supported; use 30 or 60 seconds"
            ]
        );
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[1].1.user, "bob@contoso.com");
        assert_eq!(
            oathkey_seedfile::unreadable(Format::AzureCsv, &bytes)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [encoding],
            "appending to it is refused"
        );
    }
    // Every format reads UTF-16.
    for format in Format::ALL {
        let records = records_for(format);
        let text = render(format, &records, false).expect("renders");
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let parsed = read(format, &bytes);
        assert_eq!(shown(&parsed), [encoding], "{format}");
        let expected: Vec<_> = records.iter().map(|r| as_carried(format, r)).collect();
        assert_eq!(parsed.into_records(), expected, "{format}");
    }
}

/// A file of another format than the one it is read as is one problem that says what it is,
/// not a problem per line; a file bearing its own format's mark is read as that format.
#[test]
fn a_file_of_another_format_is_one_problem() {
    for format in Format::ALL {
        let text = render(format, &records_for(format), false).expect("renders");
        for other in Format::ALL.into_iter().filter(|f| *f != format) {
            let parsed = read(other, text.as_bytes());
            assert_eq!(
                shown(&parsed),
                [format!(
                    "line 1: this is {} {} seed file, not {} {} file: its format is {format}",
                    format.article(),
                    format.title(),
                    other.article(),
                    other.title()
                )],
                "{format} read as {other}"
            );
            assert!(parsed.records.is_empty());
        }
    }
    for (text, what) in [
        ("<html><body>tokens</body></html>", "an XML file"),
        ("[{\"serial\": 1}]", "a JSON file"),
    ] {
        assert_eq!(
            shown(&read(Format::AzureCsv, text.as_bytes())),
            [format!("line 1: this is {what}, not an Azure CSV file")]
        );
    }
    // Broken JSON read as Graph JSON, a damaged Azure CSV, a privacyIDEA serial that looks
    // like markup: each read as asked, with its own problems.
    assert_eq!(
        shown(&read(Format::GraphJson, b"{\"value\": [\n")),
        ["line 2: JSON is truncated"]
    );
    let semicolons = format!("{}\n", AZURE_HEADER.replace(',', ";"));
    assert!(!shown(&read(Format::AzureCsv, semicolons.as_bytes()))[0].contains("this is"));
    let markup = b"<KeyContainer>, 3132333435363738393031323334353637383930, totp, 6, 30\n";
    assert_eq!(read(Format::PrivacyIdeaCsv, markup).records.len(), 1);
}

#[test]
fn guess_uses_the_target_and_the_name_when_the_content_does_not_tell() {
    let headerless_garbage = b"alice;0012345\n";
    assert_eq!(detect(headerless_garbage), None);
    assert_eq!(guess(headerless_garbage, None, None), None);
    assert_eq!(
        guess(headerless_garbage, None, Some(Target::Azure)),
        Some(Format::AzureCsv)
    );
    assert_eq!(
        guess(headerless_garbage, Some("tseed.CSV"), None),
        Some(Format::AzureCsv)
    );
    assert_eq!(
        guess(
            headerless_garbage,
            Some("tseed.csv"),
            Some(Target::PrivacyIdea)
        ),
        Some(Format::PrivacyIdeaCsv),
        "the target wins over the name"
    );
    assert_eq!(
        guess(headerless_garbage, Some("body.json"), None),
        Some(Format::GraphJson)
    );
    assert_eq!(guess(headerless_garbage, Some("notes.txt"), None), None);
    assert_eq!(
        guess(headerless_garbage, Some("notes.txt"), Some(Target::Any)),
        None
    );
    // The content wins over both.
    let otpauth = b"otpauth://totp/a:b@c.de?secret=JBSWY3DPEHPK3PXP\n";
    assert_eq!(
        guess(otpauth, Some("x.csv"), Some(Target::Azure)),
        Some(Format::Otpauth)
    );
    // Read as Azure, the file gets row-level problems.
    let parsed = read_as(Format::AzureCsv, headerless_garbage, Target::Azure);
    assert_eq!(
        shown(&parsed),
        [format!(
            "line 1: wrong header; the first line must be `{AZURE_HEADER}`"
        )]
    );
}

#[test]
fn quoted_csv_fields_with_commas_and_quotes() {
    let text = format!(
        "\u{FEFF}{AZURE_HEADER}\r\n\"alice@contoso.com\",\"0012345\",\"JBSWY3DPEHPK3PXP\",\"30\",\"Contoso, Ltd.\",\"Key \"\"A\"\"\"\r\n\r\nbob@contoso.com,  0000001 ,JBSWY3DPEHPK3PXP,60,x,y\r\n"
    );
    let parsed = read(Format::AzureCsv, text.as_bytes());
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    let rows: Vec<_> = parsed
        .records
        .iter()
        .map(|(line, r)| {
            (
                *line,
                r.serial.as_str(),
                r.manufacturer.as_str(),
                r.model.as_str(),
                r.period,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (2, "0012345", "Contoso, Ltd.", "Key \"A\"", 30),
            (4, "0000001", "x", "y", 60),
        ]
    );
}

#[test]
fn invalid_utf8_is_a_problem_on_its_line() {
    let cases: [(Format, &[u8], &str); 5] = [
        (
            Format::AzureCsv,
            b"upn,serial number,secret key,time interval,manufacturer,model\na@b.cd,1,JBSWY3DP,30,m,k\na@b.cd,2,JBSWY3DP,30,m\xff,k\n",
            "line 3: byte 23 is not UTF-8 (0xFF); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")",
        ),
        (
            Format::PrivacyIdeaCsv,
            b"1, 3132, totp, 6, 30\n\n2\xc3, 3132, totp, 6, 30\n",
            "line 3: byte 2 is not UTF-8 (0xC3); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")",
        ),
        (
            Format::Otpauth,
            b"otpauth://totp/a?secret=JBSWY3DP\notpauth://totp/\xe2\x82?secret=JBSWY3DP\n",
            "line 2: byte 16 is not UTF-8 (0xE2); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")",
        ),
        (
            Format::Pskc,
            b"<?xml version=\"1.0\"?>\n<KeyContainer Version=\"1.0\">\n<!-- \xfe -->\n</KeyContainer>\n",
            "line 3: byte 6 is not UTF-8 (0xFE); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")",
        ),
        (
            Format::GraphJson,
            b"{\"value\": [\n{\"serialNumber\": \"\xff\"}\n]}",
            "line 2: byte 19 is not UTF-8 (0xFF); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")",
        ),
    ];
    for (format, bytes, problem) in cases {
        let parsed = read(format, bytes);
        assert!(
            shown(&parsed).iter().any(|p| p == problem),
            "{format}: {:?}",
            shown(&parsed)
        );
    }
    // The good rows around a bad one are still read.
    assert_eq!(read(Format::AzureCsv, cases[0].1).records.len(), 1);
    assert_eq!(read(Format::PrivacyIdeaCsv, cases[1].1).records.len(), 1);
    assert_eq!(read(Format::Otpauth, cases[2].1).records.len(), 1);
}

#[test]
fn binary_garbage_gives_problems_not_panics() {
    for format in Format::ALL {
        for seed in 0..8 {
            let bytes = garbage(64 * 1024, seed);
            let parsed = read(format, &bytes);
            assert!(!parsed.problems.is_empty(), "{format} seed {seed}");
            assert!(parsed.records.is_empty(), "{format} seed {seed}");
            for p in &parsed.problems {
                assert!(!p.reason.is_empty());
                assert!(p.reason.len() < 400, "{format}: {}", p.reason);
            }
        }
    }
}

#[test]
fn ten_megabyte_files() {
    // A valid Azure file of about 10 MB: every row read, none refused.
    let mut text = format!("{AZURE_HEADER}\n");
    let mut rows = 0;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!(
            "user{rows}@contoso.com,{rows:010},GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,oathkey,virtual key\n"
        ));
        rows += 1;
    }
    let parsed = read(Format::AzureCsv, text.as_bytes());
    assert!(
        parsed.is_clean(),
        "{:?}",
        &shown(&parsed)[..3.min(parsed.problems.len())]
    );
    assert_eq!(parsed.records.len(), rows);
    assert_eq!(parsed.records.last().map(|(line, _)| *line), Some(rows + 1));

    // One 10 MB field in each format: a problem with a short reason, and no panic.
    let huge = "A".repeat(10 * 1024 * 1024);
    let inputs = [
        (
            Format::AzureCsv,
            format!("{AZURE_HEADER}\na@x.com,1,{huge},30,m,k\n{huge} x@x.com,2,JBSWY3DP,30,m,k\n"),
        ),
        (
            Format::Otpauth,
            format!("otpauth://totp/a?secret={huge}1\n"),
        ),
        (
            Format::Pskc,
            pskc_with("", &format!("<PlainValue>{huge}!</PlainValue>")),
        ),
        (
            Format::GraphJson,
            format!(
                "{{\"value\": [{{\"serialNumber\": \"1\", \"secretKey\": \"{huge}\", \"timeIntervalInSeconds\": 30}}]}}"
            ),
        ),
        (Format::PrivacyIdeaCsv, format!("1, {huge}Z, totp, 6, 30\n")),
    ];
    for (format, input) in inputs {
        let parsed = read(format, input.as_bytes());
        assert!(!parsed.problems.is_empty(), "{format}");
        for p in &parsed.problems {
            assert!(
                p.to_string().len() < 400,
                "{format}: {}",
                &p.to_string()[..400]
            );
        }
    }
}

#[test]
fn input_over_the_limit_is_refused_whole() {
    let big = vec![b'\n'; MAX_INPUT + 1];
    for format in Format::ALL {
        let parsed = read(format, &big);
        assert_eq!(
            shown(&parsed),
            [format!(
                "file too large ({} bytes; a seed file is at most 64 MiB)",
                MAX_INPUT + 1
            )],
            "{format}"
        );
    }
}

#[test]
fn truncated_xml_keeps_the_keys_before_the_cut() {
    let records = records_for(Format::Pskc);
    let text = render(Format::Pskc, &records, false).expect("renders");
    // Cut inside the third KeyPackage's Data.
    let third = text
        .match_indices("<KeyPackage>")
        .nth(2)
        .expect("3 packages")
        .0;
    let cut = &text[..third + 400];
    let parsed = read(Format::Pskc, cut.as_bytes());
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.problems.len(), 1, "{:?}", shown(&parsed));
    let problem = &parsed.problems[0];
    assert!(
        problem.reason.starts_with("XML is truncated")
            || problem.reason.starts_with("XML is not well-formed"),
        "{problem}"
    );
    assert!(problem.line.is_some());
    // Cut between elements: the open elements are named.
    let parsed = read(Format::Pskc, &text.as_bytes()[..third]);
    assert_eq!(
        shown(&parsed),
        ["line 2: XML is truncated: <KeyContainer> is never closed"]
    );
}

#[test]
fn encrypted_pskc_is_refused_clearly() {
    let text = pskc_with(
        "",
        r#"<pskc:EncryptedValue><xenc:EncryptionMethod xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><xenc:CipherData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:CipherValue>AAECAwQFBgcICQoLDA0ODw==</xenc:CipherValue></xenc:CipherData></pskc:EncryptedValue>"#,
    );
    let parsed = read(Format::Pskc, text.as_bytes());
    assert_eq!(
        shown(&parsed),
        ["line 3 (serial 0012346): encrypted PSKC is not supported"]
    );
    assert!(parsed.records.is_empty());
}

#[test]
fn pskc_prefixes_whitespace_and_missing_optional_elements() {
    let text = pskc_with(
        "",
        "\n   <pskc:PlainValue>\n     MTIzNDU2Nzg5\n     MDEyMzQ1Njc4OTA=\n   </pskc:PlainValue>\n",
    );
    let parsed = read(Format::Pskc, text.as_bytes());
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    let (line, r) = &parsed.records[0];
    assert_eq!(*line, 3);
    assert_eq!(r.serial, "0012346", "SerialNo wins over the Key Id");
    assert_eq!(r.secret.expose(), b"12345678901234567890");
    assert_eq!(
        (r.kind, r.algorithm, r.digits, r.period, r.counter),
        (Kind::Totp, Algorithm::Sha1, 6, 30, 0)
    );
    assert_eq!(
        (r.user.as_str(), r.manufacturer.as_str(), r.model.as_str()),
        ("", "", "")
    );

    // A bare key: serial from the Id, user from DeviceInfo, hash from Suite.
    let text = r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage>
<DeviceInfo><UserId>alice@contoso.com</UserId></DeviceInfo>
<Key Id="0077" Algorithm="http://www.ietf.org/keyprov/pskc#hotp"><Issuer>Vendor &amp; Co</Issuer>
<AlgorithmParameters><Suite>hmac-sha256</Suite><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
<Data><Secret><PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA</PlainValue></Secret><Counter><PlainValue> 9 </PlainValue></Counter></Data>
</Key></KeyPackage></KeyContainer>"#;
    let parsed = read(Format::Pskc, text.as_bytes());
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    let r = &parsed.records[0].1;
    assert_eq!(
        (r.serial.as_str(), r.user.as_str(), r.manufacturer.as_str()),
        ("0077", "alice@contoso.com", "Vendor & Co")
    );
    assert_eq!(
        (r.kind, r.algorithm, r.digits, r.counter),
        (Kind::Hotp, Algorithm::Sha256, 8, 9)
    );
}

#[test]
fn pskc_problems_name_the_key() {
    let cases = [
        (
            pskc_with(
                "<Suite>HMAC-MD5</Suite>",
                "<PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue>",
            ),
            "line 3 (serial 0012346): Suite \"HMAC-MD5\" is not HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512",
        ),
        (
            pskc_with(
                r#"<ResponseFormat Length="6" Encoding="ALPHANUMERIC"/>"#,
                "<PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue>",
            ),
            "line 3 (serial 0012346): response encoding \"ALPHANUMERIC\" is not supported (DECIMAL only)",
        ),
        (
            pskc_with("", "<PlainValue>not base64!</PlainValue>"),
            "line 3 (serial 0012346): secret key is not Base64",
        ),
        (
            pskc_with("", ""),
            "line 3 (serial 0012346): key has no Secret/PlainValue",
        ),
        (
            pskc_with("", "<PlainValue>&bogus;</PlainValue>"),
            "line 8: unknown XML entity &bogus;",
        ),
        (
            "<Tokens><KeyPackage/></Tokens>".to_string(),
            "line 1: not a PSKC document (the root element is <Tokens>, not <KeyContainer>)",
        ),
        (
            "<KeyContainer Version=\"1.0\">\n<KeyPackage/>\n</KeyContainer>".to_string(),
            "line 2: KeyPackage has no Key",
        ),
        (
            format!("<KeyContainer Version=\"1.0\">{}", "<a>".repeat(100)),
            "line 1: XML is nested too deeply",
        ),
        (
            "just text".to_string(),
            "line 1: not a PSKC document (no XML elements)",
        ),
    ];
    for (text, problem) in cases {
        let parsed = read(Format::Pskc, text.as_bytes());
        assert_eq!(shown(&parsed), [problem], "{text}");
    }
    // A container that is read, but holds no key: both are said.
    assert_eq!(
        shown(&read(Format::Pskc, b"<KeyContainer Version=\"2.0\"/>")),
        [
            "line 1: KeyContainer Version is \"2.0\"; importers expect 1.0",
            "no tokens: the file has no rows"
        ]
    );
}

#[test]
fn otpauth_tolerance() {
    let text = "\u{FEFF}# exported\r\n\r\n   OTPAUTH://TOTP/Issuer%3Aalice@contoso.com?SECRET=jbsw%20y3dp%20ehpk%203pxp&ALGORITHM=sha256&Period=60   \r\n";
    let parsed = read(Format::Otpauth, text.as_bytes());
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    let (line, r) = &parsed.records[0];
    assert_eq!(*line, 3);
    assert_eq!(
        (r.serial.as_str(), r.user.as_str(), r.algorithm, r.period),
        ("Issuer", "alice@contoso.com", Algorithm::Sha256, 60)
    );
    let parsed = read(
        Format::Otpauth,
        b"otpauth://totp/a?secret=JBSWY3DP1\nhttps://example.com\n",
    );
    assert_eq!(
        shown(&parsed),
        [
            "line 1: secret key is not Base32",
            "line 2: not an otpauth:// URI"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for format in Format::ALL {
            let parsed = read(format, &bytes);
            for p in &parsed.problems {
                prop_assert!(!p.reason.is_empty(), "{format}: {p:?}");
            }
        }
        let _ = oathkey_seedfile::detect(&bytes);
    }

    #[test]
    fn arbitrary_text_near_each_format_never_panics(
        format_index in 0..5usize,
        cut in 0..4000usize,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        at in 0..4000usize,
    ) {
        // Valid files with bytes spliced in and cut short reach deeper into the readers than
        // random bytes do.
        let format = Format::ALL[format_index];
        let text = render(format, &records_for(format), false).expect("renders");
        let mut bytes = text.as_bytes().to_vec();
        let at = at.min(bytes.len());
        bytes.splice(at..at, noise);
        bytes.truncate(cut.min(bytes.len()));
        let parsed = read(format, &bytes);
        for p in &parsed.problems {
            prop_assert!(!p.reason.is_empty(), "{format}: {p:?}");
        }
    }
}

/// XML 1.0 allows tab, line breaks and the characters from U+0020 up, except U+FFFE and U+FFFF
/// (the `Char` production); a document with any other character is not well-formed, wherever
/// the character is, raw or as a character reference. Such a document was read, and the
/// record could then not be written back (fuzzing, seed_pskc).
#[test]
fn pskc_characters_outside_xml_1_0_are_refused_with_their_line() {
    let good = "<PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue>";
    let cases = [
        (
            pskc_with("<Suite>HMAC-SHA1\u{2}</Suite>", good),
            "line 6: character U+0002 is not allowed in XML 1.0; the file is damaged or is not XML",
        ),
        (
            pskc_with("", good).replace("<pskc:Data>", "<pskc:Data><!-- \u{1f} -->"),
            "line 7: character U+001F is not allowed in XML 1.0; the file is damaged or is not XML",
        ),
        (
            pskc_with("", good).replace("Id=\"other\"", "Id=\"ot\u{ffff}her\""),
            "line 5: character U+FFFF is not allowed in XML 1.0; the file is damaged or is not XML",
        ),
        (
            pskc_with("<Suite>HMAC-SHA1&#2;</Suite>", good),
            "line 6: character reference &#2; is U+0002, which XML 1.0 does not allow",
        ),
        (
            pskc_with("<Suite>HMAC-SHA1&#xFFFE;</Suite>", good),
            "line 6: character reference &#xFFFE; is U+FFFE, which XML 1.0 does not allow",
        ),
        (
            pskc_with("", good).replace("Id=\"other\"", "Id=\"a&#x1;b\""),
            "line 5: XML attribute Id has U+0001, which XML 1.0 does not allow",
        ),
    ];
    for (text, expected) in cases {
        let parsed = read(Format::Pskc, text.as_bytes());
        assert_eq!(shown(&parsed), [expected], "{text}");
        assert!(parsed.records.is_empty(), "{text}");
    }
    // What XML 1.0 allows is still read: astral characters, and tab and C1 controls, which
    // are then a problem of the field, not of the XML.
    let text = pskc_with("", good).replace(
        "<pskc:SerialNo>0012346</pskc:SerialNo>",
        "<pskc:SerialNo>0012346</pskc:SerialNo><pskc:Model>\u{1F511}</pskc:Model>",
    );
    let parsed = read(Format::Pskc, text.as_bytes());
    assert!(parsed.is_clean(), "{:?}", shown(&parsed));
    assert_eq!(parsed.records[0].1.model, "\u{1F511}");
    for (model, problem) in [("a&#9;b", "U+0009"), ("a\u{85}b", "U+0085")] {
        let text = pskc_with("", good).replace(
            "<pskc:SerialNo>0012346</pskc:SerialNo>",
            &format!("<pskc:SerialNo>0012346</pskc:SerialNo><pskc:Model>{model}</pskc:Model>"),
        );
        assert_eq!(
            shown(&read(Format::Pskc, text.as_bytes())),
            [format!(
                "line 3 (serial 0012346): model has a control character {problem}"
            )]
        );
    }
}

/// A byte order mark at the start of a file is an encoding mark and is dropped. One at the start
/// of a later line is what joining files (`cat a.csv b.csv`) leaves: the value is read without
/// it, but the target would read it as part of the line, so it is a problem on that line. One
/// inside a field is part of that field, and a problem of the field.
#[test]
fn a_byte_order_mark_inside_a_file_is_a_problem_on_its_line() {
    let bom = "\u{feff}";
    let cases = [
        (
            Format::AzureCsv,
            format!(
                "{bom}{AZURE_HEADER}\nalice@contoso.com,1,JBSWY3DPEHPK3PXP,30,m,k\n{bom}bob@contoso.com,2,JBSWY3DPEHPK3PXP,30,m,k\n"
            ),
        ),
        (
            Format::PrivacyIdeaCsv,
            format!(
                "{bom}1, 3132333435363738393031323334353637383930, totp, 6, 30\n\n{bom}2, 3132333435363738393031323334353637383930, totp, 6, 30\n"
            ),
        ),
        (
            Format::Otpauth,
            format!(
                "{bom}otpauth://totp/a:alice@contoso.com?secret=JBSWY3DPEHPK3PXP&serial=1\n{bom}otpauth://totp/a:bob@contoso.com?secret=JBSWY3DPEHPK3PXP&serial=2\n"
            ),
        ),
    ];
    for (format, text) in cases {
        let parsed = read(format, text.as_bytes());
        let line = parsed.records[1].0;
        assert_eq!(
            shown(&parsed),
            [format!(
                "line {line}: the line starts with a byte order mark (U+FEFF), as joined files leave it; the target reads it as part of the line: remove it"
            )],
            "{format}"
        );
        assert_eq!(parsed.records.len(), 2, "{format}");
        assert!(
            parsed
                .records
                .iter()
                .all(|(_, r)| !r.serial.contains(bom) && !r.user.contains(bom)),
            "{format}"
        );
    }
    // Inside a field: a problem of that field, whatever the format.
    let text = format!("{AZURE_HEADER}\nalice@contoso.com{bom},1,JBSWY3DPEHPK3PXP,30,m,k\n");
    assert_eq!(
        shown(&read(Format::AzureCsv, text.as_bytes())),
        ["line 2 (serial 1): user has an invisible character U+FEFF (byte order mark)"]
    );
    let text = "otpauth://totp/a:alice%EF%BB%BF@contoso.com?secret=JBSWY3DPEHPK3PXP&serial=1\n";
    assert_eq!(
        shown(&read(Format::Otpauth, text.as_bytes())),
        ["line 1 (serial 1): user has an invisible character U+FEFF (byte order mark)"]
    );
}
