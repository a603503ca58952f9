//! One test per rule per target, with the exact reason and, where the rule can be broken in a
//! file, the line that read() reports.

use oathkey_seedfile::{
    AZURE_HEADER, Algorithm, Format, Kind, Parsed, Secret, Target, TokenRecord, read, validate,
};

use crate::common::{shown, totp};

fn parse_rows(format: Format, header: Option<&str>, rows: &[&str]) -> Parsed {
    let mut text = String::new();
    if let Some(header) = header {
        text.push_str(header);
        text.push('\n');
    }
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    read(format, text.as_bytes())
}

mod azure {
    use super::*;

    const GOOD: &str = "alice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,virtual key";

    /// The problems when `row` is line 3, after a header and a good row.
    fn third_line(row: &str) -> Vec<String> {
        shown(&parse_rows(
            Format::AzureCsv,
            Some(AZURE_HEADER),
            &[GOOD, row],
        ))
    }

    fn record_problems(edit: impl FnOnce(&mut TokenRecord)) -> Vec<String> {
        let mut r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
        edit(&mut r);
        validate(Target::Azure, &[r])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_file_has_no_problems() {
        let parsed = parse_rows(Format::AzureCsv, Some(AZURE_HEADER), &[GOOD]);
        assert!(parsed.is_clean(), "{:?}", shown(&parsed));
        assert_eq!(parsed.records.len(), 1);
    }

    #[test]
    fn secret_must_be_base32() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DP1EHPK3PX,30,oathkey,k"),
            ["line 3 (serial 0012346): secret key is not Base32"]
        );
    }

    #[test]
    fn secret_must_not_be_padded() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP====,30,oathkey,k"),
            ["line 3 (serial 0012346): secret key has '=' padding; Azure does not accept it"]
        );
    }

    #[test]
    fn secret_must_have_no_spaces() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSW Y3DP-EHPK3PXP,30,oathkey,k"),
            ["line 3 (serial 0012346): secret key has spaces or '-'; Azure takes only A-Z and 2-7"]
        );
    }

    #[test]
    fn lower_case_secrets_are_accepted() {
        let parsed = parse_rows(
            Format::AzureCsv,
            Some(AZURE_HEADER),
            &["bob@contoso.com,0012346,jbswy3dpehpk3pxp,30,oathkey,k"],
        );
        assert!(parsed.is_clean(), "{:?}", shown(&parsed));
        assert_eq!(
            parsed.records[0].1.secret.base32().as_str(),
            "JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn secret_at_most_128_characters() {
        let ok = format!("bob@contoso.com,0012346,{},30,oathkey,k", "A".repeat(128));
        assert!(third_line(&ok).is_empty());
        let long = format!("bob@contoso.com,0012346,{},30,oathkey,k", "A".repeat(130));
        assert_eq!(
            third_line(&long),
            [
                "line 3 (serial 0012346): secret key is 81 bytes (130 Base32 characters); Azure accepts at most 128 characters (80 bytes)"
            ]
        );
        // 206 characters hold 128 bytes and 6 bits that belong to no byte: all valid Base32,
        // too long, and said with the numbers (it was "not Base32" at the key).
        let long = format!(
            "bob@contoso.com,0012346,{},30,oathkey,k",
            "JBSWY3DPEHPK3PXP".repeat(13).get(..206).expect("206")
        );
        assert_eq!(
            third_line(&long),
            [
                "line 3 (serial 0012346): secret key is 128 bytes (205 Base32 characters); Azure accepts at most 128 characters (80 bytes)"
            ]
        );
        // 129 characters decode to the same 80 bytes as 128: the text is still too long.
        let leftover = format!("bob@contoso.com,0012346,{},30,oathkey,k", "A".repeat(129));
        assert_eq!(
            third_line(&leftover),
            ["line 3 (serial 0012346): secret key is 129 characters; Azure accepts at most 128"]
        );
    }

    #[test]
    fn secret_must_not_be_empty() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,,30,oathkey,k"),
            ["line 3 (serial 0012346): secret key is empty"]
        );
    }

    #[test]
    fn one_character_is_too_short_not_empty() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,A,30,oathkey,k"),
            [
                "line 3 (serial 0012346): secret key is too short (one Base32 character holds no whole byte)"
            ]
        );
    }

    #[test]
    fn secret_at_least_80_bits() {
        // 16 Base32 characters are 80 bits: the floor. 15 are 75 bits: 9 whole bytes.
        assert!(third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey,k").is_empty());
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PX,30,oathkey,k"),
            [
                "line 3 (serial 0012346): secret key is too short: 72 bits; at least 80 bits (16 Base32 characters) are needed, and RFC 4226 asks for 128"
            ]
        );
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DP,30,oathkey,k"),
            [
                "line 3 (serial 0012346): secret key is too short: 40 bits; at least 80 bits (16 Base32 characters) are needed, and RFC 4226 asks for 128"
            ]
        );
    }

    #[test]
    fn serial_not_in_scientific_notation() {
        for serial in ["1.23457E+06", "1E+15", "1,5e-3", "12345E+2"] {
            assert_eq!(
                third_line(&format!(
                    "bob@contoso.com,\"{serial}\",JBSWY3DPEHPK3PXP,30,oathkey,k"
                )),
                [format!(
                    "line 3 (serial {serial}): serial number \"{serial}\" is in scientific notation (a spreadsheet turned it into a number); its digits are lost: take the serial from the original file or the key"
                )],
                "{serial}"
            );
        }
        // Serials that merely have an E in them are serials.
        for serial in ["12E45", "E+06", "1.2E", "0012399", "SN-1E+06", "1.2.3E+4"] {
            assert!(
                third_line(&format!(
                    "bob@contoso.com,{serial},JBSWY3DPEHPK3PXP,30,oathkey,k"
                ))
                .is_empty(),
                "{serial}"
            );
        }
    }

    #[test]
    fn a_header_without_rows_is_no_tokens() {
        let parsed = parse_rows(Format::AzureCsv, Some(AZURE_HEADER), &[]);
        assert_eq!(shown(&parsed), ["no tokens: the file has no rows"]);
        assert_eq!(
            shown(&parse_rows(
                Format::AzureCsv,
                Some(AZURE_HEADER),
                &["", " "]
            )),
            ["no tokens: the file has no rows"],
            "blank lines are no rows"
        );
        // A file whose rows are all unreadable says why instead.
        assert_eq!(
            third_line_only("bob@contoso.com,0012346"),
            [format!(
                "line 2: expected 6 fields ({AZURE_HEADER}), found 2"
            )]
        );
    }

    /// The problems when `row` is the only row, on line 2.
    fn third_line_only(row: &str) -> Vec<String> {
        shown(&parse_rows(Format::AzureCsv, Some(AZURE_HEADER), &[row]))
    }

    #[test]
    fn period_30_or_60() {
        assert!(third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,60,oathkey,k").is_empty());
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,45,oathkey,k"),
            ["line 3 (serial 0012346): time interval 45 is not supported; use 30 or 60 seconds"]
        );
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30s,oathkey,k"),
            ["line 3 (serial 0012346): time interval \"30s\" is not a whole number of seconds"]
        );
    }

    #[test]
    fn upn_shape() {
        for upn in [
            "bob",
            "bob@contoso",
            "bob smith@contoso.com",
            "@contoso.com",
            "bob@.com",
            "bob@contoso..com",
        ] {
            assert_eq!(
                third_line(&format!("{upn},0012346,JBSWY3DPEHPK3PXP,30,oathkey,k")),
                [format!(
                    "line 3 (serial 0012346): upn \"{upn}\" is not a user principal name (name@domain.tld, no spaces)"
                )],
                "{upn}"
            );
        }
    }

    #[test]
    fn no_guests() {
        assert_eq!(
            third_line(
                "bob_gmail.com#EXT#@contoso.onmicrosoft.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey,k"
            ),
            [
                "line 3 (serial 0012346): upn \"bob_gmail.com#EXT#@contoso.onmicrosoft.com\" is a guest account; Azure does not give OATH tokens to guests"
            ]
        );
    }

    /// Spreadsheet programs run a cell starting with `=`, `+`, `-` or `@` (or a tab or carriage
    /// return) as a formula: `=HYPERLINK(...)` in a file admins open in Excel is CSV injection.
    /// Azure must receive the exact values, so a leading `'` is no way out: such a cell is a
    /// problem with its line, and is never written, forced or not.
    #[test]
    fn no_formula_cells() {
        let cases = [
            (
                r#"bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,"=HYPERLINK(""http://x"",""y"")",k"#,
                r#"manufacturer "=HYPERLINK(\"http://x\",\"y\")" starts with '=', which spreadsheet programs run as a formula (CSV injection); change it"#,
            ),
            (
                "bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey,+1",
                r#"model "+1" starts with '+', which spreadsheet programs run as a formula (CSV injection); change it"#,
            ),
            (
                "bob@contoso.com,@SUM(A1),JBSWY3DPEHPK3PXP,30,oathkey,k",
                r#"serial number "@SUM(A1)" starts with '@', which spreadsheet programs run as a formula (CSV injection); change it"#,
            ),
            // A user starting with '-' is no UPN either; that problem says it.
            (
                "-bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey,k",
                r#"upn "-bob@contoso.com" is not a user principal name: the name cannot start with '-'"#,
            ),
            (
                "bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey,\" =1\"",
                r#"model "=1" starts with '=', which spreadsheet programs run as a formula (CSV injection); change it"#,
            ),
        ];
        for (row, reason) in cases {
            let problems = third_line(row);
            assert_eq!(problems.len(), 1, "{row}: {problems:?}");
            assert!(
                problems[0].starts_with("line 3 (serial ") && problems[0].ends_with(reason),
                "{row}: {problems:?}"
            );
        }
        // Never written, even forced; a tab or carriage return first counts too.
        for (edit, field) in [
            (
                (|r: &mut TokenRecord| r.manufacturer = "=1+1".into()) as fn(&mut TokenRecord),
                "manufacturer",
            ),
            (|r| r.model = "\t=1+1".into(), "model"),
            (|r| r.model = "\r-2".into(), "model"),
            (|r| r.serial = "+12".into(), "serial number"),
            (|r| r.user = "-bob@contoso.com".into(), "user"),
        ] {
            let mut r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
            edit(&mut r);
            match oathkey_seedfile::render(Format::AzureCsv, &[r], true) {
                Err(oathkey_seedfile::RenderError::Other(reason)) => assert!(
                    reason.contains(&format!("Azure CSV cannot carry a {field} starting with")),
                    "{reason}"
                ),
                other => panic!("{field}: {other:?}"),
            }
        }
        // A '-' or '=' inside a value is no formula.
        assert!(third_line("bob-x@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,a=b,k-1").is_empty());
    }

    #[test]
    fn serial_must_not_be_empty() {
        assert_eq!(
            third_line("bob@contoso.com,,JBSWY3DPEHPK3PXP,30,oathkey,k"),
            ["line 3: serial number is empty"]
        );
    }

    #[test]
    fn one_user_per_token() {
        assert_eq!(
            third_line("bob@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,k"),
            ["line 3 (serial 0012345): duplicate serial number (first on line 2)"]
        );
    }

    #[test]
    fn at_most_five_tokens_per_user() {
        let rows: Vec<String> = (0..7)
            .map(|i| format!("Alice@Contoso.com,00{i},JBSWY3DPEHPK3PXP,30,oathkey,k"))
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let parsed = parse_rows(Format::AzureCsv, Some(AZURE_HEADER), &rows);
        assert_eq!(
            shown(&parsed),
            [
                "line 7 (serial 005): user \"Alice@Contoso.com\" has more than 5 tokens; Azure allows 5 per user",
                "line 8 (serial 006): user \"Alice@Contoso.com\" has more than 5 tokens; Azure allows 5 per user",
            ]
        );
    }

    #[test]
    fn six_columns() {
        assert_eq!(
            third_line("bob@contoso.com,0012346,JBSWY3DPEHPK3PXP,30,oathkey"),
            [format!(
                "line 3: expected 6 fields ({AZURE_HEADER}), found 5"
            )]
        );
    }

    #[test]
    fn header_required_exactly() {
        let parsed = parse_rows(
            Format::AzureCsv,
            Some("upn,serial,secret key,time interval,manufacturer,model"),
            &[GOOD],
        );
        assert_eq!(
            shown(&parsed),
            [format!(
                "line 1: wrong header; the first line must be `{AZURE_HEADER}`"
            )]
        );
        assert_eq!(parsed.records.len(), 1, "the rows are still read");

        let parsed = parse_rows(Format::AzureCsv, None, &[GOOD]);
        assert_eq!(
            shown(&parsed),
            [format!(
                "line 1: missing header row; the first line must be `{AZURE_HEADER}`"
            )]
        );
        assert_eq!(parsed.records.len(), 1, "the first row is data");

        // Seed-formats: "exactly these six columns in this order". Another letter case or
        // spaces around the names are still read as the header (the rows are read), but
        // reported with the exact header to use.
        for header in [
            " UPN , Serial Number,SECRET KEY,time interval,Manufacturer,model ",
            "UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model",
            "upn, serial number, secret key, time interval, manufacturer, model",
        ] {
            let parsed = parse_rows(Format::AzureCsv, Some(header), &[GOOD]);
            assert_eq!(
                shown(&parsed),
                [format!(
                    "line 1: header is {header:?}, not exactly `{AZURE_HEADER}`; Azure requires this header exactly (lower case, no spaces around the names)"
                )]
            );
            assert_eq!(parsed.records.len(), 1, "the rows are still read");
        }
        // The exact header with CRLF line endings and a UTF-8 byte order mark is exact.
        let parsed = read(
            Format::AzureCsv,
            format!("\u{FEFF}{AZURE_HEADER}\r\n{GOOD}\r\n").as_bytes(),
        );
        assert!(parsed.is_clean(), "{:?}", shown(&parsed));

        let parsed = read(Format::AzureCsv, b"");
        assert_eq!(
            shown(&parsed),
            [format!(
                "line 1: file is empty; the header row `{AZURE_HEADER}` is missing"
            )]
        );
    }

    #[test]
    fn totp_only() {
        assert_eq!(
            record_problems(|r| r.kind = Kind::Hotp),
            ["serial 0012346: HOTP is not supported; Azure takes TOTP tokens only"]
        );
    }

    #[test]
    fn sha1_only() {
        assert_eq!(
            record_problems(|r| r.algorithm = Algorithm::Sha256),
            [
                "serial 0012346: hash SHA-256 is not supported; Azure CSV takes SHA-1 only (SHA-256 needs the Graph API)"
            ]
        );
    }

    #[test]
    fn six_digits_only() {
        assert_eq!(
            record_problems(|r| r.digits = 8),
            ["serial 0012346: 8-digit codes are not supported; Azure takes 6 digits only"]
        );
    }

    #[test]
    fn duplicates_without_lines_name_the_record() {
        let a = totp("7", "a@contoso.com", b"1234567890");
        let b = totp("7", "b@contoso.com", b"1234567890");
        let problems: Vec<_> = validate(Target::Azure, &[a, b])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            ["serial 7: duplicate serial number (first in record 1)"]
        );
    }

    #[test]
    fn control_characters() {
        assert_eq!(
            record_problems(|r| r.serial = "00\n12".into()),
            ["serial 00\\n12: serial number has a control character U+000A"]
        );
    }

    #[test]
    fn reading_yields_the_fixed_parameters() {
        let parsed = parse_rows(Format::AzureCsv, Some(AZURE_HEADER), &[GOOD]);
        let r = &parsed.records[0].1;
        assert_eq!(
            (r.kind, r.algorithm, r.digits, r.counter),
            (Kind::Totp, Algorithm::Sha1, 6, 0)
        );
    }
}

mod graph {
    use super::*;

    const GOOD: &str = r#"{"serialNumber": "0012345", "manufacturer": "oathkey", "model": "k", "secretKey": "JBSWY3DPEHPK3PXP", "timeIntervalInSeconds": 30, "hashFunction": "hmacsha1", "displayName": "alice@contoso.com"},"#;

    /// The problems when the entry `entry` is line 3.
    fn third_line(entry: &str) -> Vec<String> {
        let text = format!("{{\"@context\": \"#$delta\", \"value\": [\n{GOOD}\n{entry}\n]}}\n");
        shown(&read(Format::GraphJson, text.as_bytes()))
    }

    fn entry(secret: &str, period: &str, hash: &str) -> String {
        format!(
            r#"{{"serialNumber": "0012346", "manufacturer": "oathkey", "model": "k", "secretKey": {secret}, "timeIntervalInSeconds": {period}, "hashFunction": {hash}, "displayName": "bob@contoso.com"}}"#
        )
    }

    fn record_problems(edit: impl FnOnce(&mut TokenRecord)) -> Vec<String> {
        let mut r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
        edit(&mut r);
        validate(Target::Graph, &[r])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_file_has_no_problems() {
        assert!(third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "60", "\"hmacsha256\"")).is_empty());
    }

    #[test]
    fn secret_must_be_base32() {
        assert_eq!(
            third_line(&entry(
                "\"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=\"",
                "30",
                "\"hmacsha1\""
            )),
            ["line 3 (serial 0012346): secret key is not Base32"]
        );
        assert_eq!(
            third_line(&entry("12345", "30", "\"hmacsha1\"")),
            ["line 3 (serial 0012346): secretKey must be a string"]
        );
    }

    #[test]
    fn secret_plain_base32() {
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP====\"", "30", "\"hmacsha1\"")),
            ["line 3 (serial 0012346): secret key has '=' padding; Graph does not accept it"]
        );
        assert_eq!(
            third_line(&entry("\"jbsw-y3dp-ehpk-3pxp\"", "30", "\"hmacsha1\"")),
            ["line 3 (serial 0012346): secret key has spaces or '-'; Graph takes only A-Z and 2-7"]
        );
    }

    #[test]
    fn secret_at_most_128_characters() {
        let long = format!("\"{}\"", "B".repeat(136));
        assert_eq!(
            third_line(&entry(&long, "30", "\"hmacsha1\"")),
            [
                "line 3 (serial 0012346): secret key is 85 bytes (136 Base32 characters); Graph accepts at most 128 characters (80 bytes)"
            ]
        );
    }

    #[test]
    fn period_30_or_60() {
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "90", "\"hmacsha1\"")),
            ["line 3 (serial 0012346): time interval 90 is not supported; use 30 or 60 seconds"]
        );
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "\"30\"", "\"hmacsha1\"")),
            ["line 3 (serial 0012346): timeIntervalInSeconds must be a whole number of seconds"]
        );
    }

    #[test]
    fn sha1_or_sha256() {
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "30", "\"hmacsha512\"")),
            [
                "line 3 (serial 0012346): hash SHA-512 is not supported; Graph takes SHA-1 or SHA-256"
            ]
        );
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "30", "\"md5\"")),
            ["line 3 (serial 0012346): hashFunction \"md5\" is not hmacsha1 or hmacsha256"]
        );
    }

    #[test]
    fn serial_must_be_a_string() {
        assert_eq!(
            third_line(
                r#"{"serialNumber": 12346, "secretKey": "JBSWY3DPEHPK3PXP", "timeIntervalInSeconds": 30}"#
            ),
            ["line 3: serialNumber must be a string (a number loses leading zeros)"]
        );
        assert_eq!(
            third_line(r#"{"secretKey": "JBSWY3DPEHPK3PXP", "timeIntervalInSeconds": 30}"#),
            ["line 3: serialNumber is missing"]
        );
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            third_line(
                r#"{"serialNumber": "0012346", "manufacturer": "m", "model": "k", "timeIntervalInSeconds": 30}"#
            ),
            ["line 3 (serial 0012346): secretKey is missing"]
        );
        assert_eq!(
            third_line(
                r#"{"serialNumber": "0012346", "manufacturer": "m", "model": "k", "secretKey": "JBSWY3DPEHPK3PXP"}"#
            ),
            ["line 3 (serial 0012346): timeIntervalInSeconds is missing"]
        );
        assert_eq!(
            third_line(
                r#"{"serialNumber": "0012346", "secretKey": "JBSWY3DPEHPK3PXP", "timeIntervalInSeconds": 30}"#
            ),
            [
                "line 3 (serial 0012346): manufacturer is empty; Graph requires it",
                "line 3 (serial 0012346): model is empty; Graph requires it",
            ]
        );
    }

    #[test]
    fn serials_unique() {
        assert_eq!(
            third_line(&entry("\"JBSWY3DPEHPK3PXP\"", "30", "null").replace("0012346", "0012345")),
            ["line 3 (serial 0012345): duplicate serial number (first on line 2)"]
        );
    }

    #[test]
    fn totp_only() {
        assert_eq!(
            record_problems(|r| {
                r.kind = Kind::Hotp;
                r.manufacturer = "m".into();
            }),
            ["serial 0012346: HOTP is not supported; Graph takes TOTP tokens only"]
        );
    }

    #[test]
    fn six_digits_only() {
        assert_eq!(
            record_problems(|r| r.digits = 8),
            ["serial 0012346: 8-digit codes are not supported; Graph takes 6 digits only"]
        );
    }

    #[test]
    fn body_shape() {
        assert_eq!(
            shown(&read(Format::GraphJson, b"[1, 2]")),
            ["line 1: the body must be an object with a \"value\" array"]
        );
        assert_eq!(
            shown(&read(Format::GraphJson, b"{\"@context\": \"#$delta\"}")),
            [
                "line 1: no \"value\" array; the body must be {\"@context\": \"#$delta\", \"value\": [...]}"
            ]
        );
        assert_eq!(
            shown(&read(
                Format::GraphJson,
                b"{\"value\": [\n{\"serialNumber\": \"1\",\n"
            )),
            ["line 3: JSON is truncated"]
        );
        assert_eq!(
            shown(&read(Format::GraphJson, b"{\"value\": [\n]]")),
            ["line 2: not valid JSON"]
        );
        assert_eq!(
            shown(&read(Format::GraphJson, b"{\"value\": [\n 7\n]}")),
            ["line 2: entry is not a JSON object"]
        );
    }
}

mod privacyidea {
    use super::*;

    const GOOD: &str = "0012345, 3132333435363738393031323334353637383930, totp, 6, 30";

    fn second_line(row: &str) -> Vec<String> {
        shown(&parse_rows(Format::PrivacyIdeaCsv, None, &[GOOD, row]))
    }

    fn record_problems(edit: impl FnOnce(&mut TokenRecord)) -> Vec<String> {
        let mut r = totp("0012346", "", b"12345678901234567890");
        edit(&mut r);
        validate(Target::PrivacyIdea, &[r])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_rows_and_tolerance() {
        let parsed = parse_rows(
            Format::PrivacyIdeaCsv,
            None,
            &[
                GOOD,
                "0012346,3132333435363738393031323334353637383930,HOTP,8",
                "  0012347 ,  31 32 33 34 35 36 37 38 39 30 ,  totp  ,  8  ,  60  ",
                "0012348, 3132333435363738393031323334353637383930",
            ],
        );
        assert!(parsed.is_clean(), "{:?}", shown(&parsed));
        let summary: Vec<_> = parsed
            .records
            .iter()
            .map(|(line, r)| {
                (
                    *line,
                    r.serial.as_str(),
                    r.kind,
                    r.digits,
                    r.period,
                    r.secret.expose().len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "0012345", Kind::Totp, 6, 30, 20),
                (2, "0012346", Kind::Hotp, 8, 30, 20),
                (3, "0012347", Kind::Totp, 8, 60, 10),
                (4, "0012348", Kind::Hotp, 6, 30, 20),
            ]
        );
    }

    #[test]
    fn key_must_be_hex() {
        assert_eq!(
            second_line("0012346, JBSWY3DPEHPK3PXP, totp, 6, 30"),
            ["line 2 (serial 0012346): secret key is not hex (an even number of 0-9, a-f)"]
        );
        assert_eq!(
            second_line("0012346, , totp, 6, 30"),
            ["line 2 (serial 0012346): secret key is empty"]
        );
    }

    #[test]
    fn type_hotp_or_totp() {
        assert_eq!(
            second_line("0012346, 3132333435363738393031323334353637383930, motp, 6, 30"),
            ["line 2 (serial 0012346): type \"motp\" is not hotp or totp"]
        );
    }

    #[test]
    fn digits_6_or_8() {
        assert_eq!(
            second_line("0012346, 3132333435363738393031323334353637383930, totp, 7, 30"),
            [
                "line 2 (serial 0012346): 7-digit codes are not supported; privacyIDEA takes 6 or 8 digits"
            ]
        );
        assert_eq!(
            second_line("0012346, 3132333435363738393031323334353637383930, totp, six, 30"),
            ["line 2 (serial 0012346): digits \"six\" is not a number"]
        );
    }

    #[test]
    fn period_30_or_60() {
        assert_eq!(
            second_line("0012346, 3132333435363738393031323334353637383930, totp, 6, 45"),
            ["line 2 (serial 0012346): time interval 45 is not supported; use 30 or 60 seconds"]
        );
        assert!(
            second_line("0012346, 3132333435363738393031323334353637383930, hotp, 6, 45")
                .is_empty(),
            "HOTP has no period"
        );
    }

    #[test]
    fn serials_unique() {
        assert_eq!(
            second_line("0012345, 3132333435363738393031323334353637383930, totp, 6, 30"),
            ["line 2 (serial 0012345): duplicate serial number (first on line 1)"]
        );
    }

    #[test]
    fn too_few_fields() {
        assert_eq!(
            second_line("0012346"),
            ["line 2: expected serial, key, type, digits and time step; found 1 field"]
        );
    }

    #[test]
    fn sha1_only() {
        assert_eq!(
            record_problems(|r| r.algorithm = Algorithm::Sha512),
            [
                "serial 0012346: hash SHA-512 is not supported; privacyIDEA CSV has no hash column (SHA-1 only)"
            ]
        );
    }

    #[test]
    fn hotp_starts_at_zero() {
        assert_eq!(
            record_problems(|r| {
                r.kind = Kind::Hotp;
                r.counter = 5;
            }),
            [
                "serial 0012346: HOTP counter 5 cannot be carried; privacyIDEA CSV starts every token at 0"
            ]
        );
    }

    #[test]
    fn serial_without_commas() {
        assert_eq!(
            record_problems(|r| r.serial = "00,12".into()),
            ["serial 00,12: serial number has a comma, which privacyIDEA CSV cannot carry"]
        );
    }

    /// The only free text a privacyIDEA CSV carries is the serial; see `azure::no_formula_cells`.
    #[test]
    fn no_formula_serials() {
        assert_eq!(
            second_line("=1+1, 3132333435363738393031323334353637383930, totp, 6, 30"),
            [
                "line 2 (serial =1+1): serial number \"=1+1\" starts with '=', which spreadsheet programs run as a formula (CSV injection); change it"
            ]
        );
        let r = totp("-12", "", b"12345678901234567890");
        assert!(matches!(
            oathkey_seedfile::render(Format::PrivacyIdeaCsv, &[r], true),
            Err(oathkey_seedfile::RenderError::Other(reason))
                if reason.contains("privacyIDEA CSV cannot carry a serial number starting with '-'")
        ));
    }

    /// privacyIDEA splits lines at every `,` and skips lines starting with `#`; it knows no
    /// quoting. A quoted serial starting with `#` or holding a `"` was read clean here, and
    /// then could not be written (the writer refused the `#`) or was written so that it read
    /// back as nothing (the `"` opened a quoted field).
    #[test]
    fn serial_without_a_hash_first_or_quotes() {
        let key = "3132333435363738393031323334353637383930";
        assert_eq!(
            second_line(&format!("\"#12\", {key}, totp, 6, 30")),
            [
                "line 2 (serial #12): serial number starts with '#', which privacyIDEA takes for a comment line"
            ]
        );
        assert_eq!(
            second_line(&format!("\"\"\"12\", {key}, totp, 6, 30")),
            [
                "line 2 (serial \"12): serial number has a '\"', which privacyIDEA CSV cannot carry (privacyIDEA does not read quoted fields)"
            ]
        );
        for serial in ["#12", "1\"2"] {
            let r = totp(serial, "", b"12345678901234567890");
            assert!(
                matches!(
                    oathkey_seedfile::render(Format::PrivacyIdeaCsv, &[r], true),
                    Err(oathkey_seedfile::RenderError::Other(_))
                ),
                "{serial} is never written"
            );
        }
    }

    #[test]
    fn serial_must_not_be_empty() {
        assert_eq!(
            record_problems(|r| r.serial.clear()),
            ["serial number is empty"]
        );
    }
}

mod any {
    use super::*;

    fn record_problems(edit: impl FnOnce(&mut TokenRecord)) -> Vec<String> {
        let mut r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
        edit(&mut r);
        validate(Target::Any, &[r])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn otpauth_digits_6_to_8() {
        let parsed = parse_rows(
            Format::Otpauth,
            None,
            &[
                "# comment",
                "otpauth://totp/a:b@c.de?secret=JBSWY3DPEHPK3PXP&digits=8",
                "otpauth://totp/a:b@c.de?secret=JBSWY3DPEHPK3PXP&digits=9&serial=0012346",
            ],
        );
        assert_eq!(
            shown(&parsed),
            ["line 3 (serial 0012346): 9-digit codes are not supported; use 6 to 8 digits"]
        );
    }

    #[test]
    fn otpauth_period_positive() {
        let parsed = parse_rows(
            Format::Otpauth,
            None,
            &[
                "",
                "",
                "otpauth://totp/a:b@c.de?secret=JBSWY3DPEHPK3PXP&period=0&serial=0012346",
            ],
        );
        assert_eq!(
            shown(&parsed),
            ["line 3 (serial 0012346): time interval must be more than 0 seconds"]
        );
    }

    #[test]
    fn pskc_digits_6_to_8() {
        let text = crate::malformed::pskc_with(
            r#"<ResponseFormat Length="4" Encoding="DECIMAL"/>"#,
            "<PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue>",
        );
        assert_eq!(
            shown(&read(Format::Pskc, text.as_bytes())),
            ["line 3 (serial 0012346): 4-digit codes are not supported; use 6 to 8 digits"]
        );
    }

    #[test]
    fn secret_must_not_be_empty() {
        assert_eq!(
            record_problems(|r| r.secret = Secret::new(Vec::new())),
            ["serial 0012346: secret key is empty"]
        );
    }

    #[test]
    fn every_target_wants_80_bits() {
        let reason = "serial 0012346: secret key is too short: 72 bits; at least 80 bits (16 Base32 characters) are needed, and RFC 4226 asks for 128";
        for target in [
            Target::Azure,
            Target::Graph,
            Target::PrivacyIdea,
            Target::Any,
        ] {
            let mut r = totp("0012346", "bob@contoso.com", b"123456789");
            assert_eq!(
                validate(target, std::slice::from_ref(&r))
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                [reason],
                "{target:?}"
            );
            r.secret = Secret::new(b"1234567890".to_vec());
            assert!(validate(target, &[r]).is_empty(), "{target:?}: 80 bits");
        }
    }

    #[test]
    fn files_without_tokens() {
        for (format, text) in [
            (
                Format::GraphJson,
                "{\"@context\": \"#$delta\", \"value\": []}",
            ),
            (Format::Otpauth, "# nothing yet\n\n"),
            (Format::PrivacyIdeaCsv, "\n"),
            (
                Format::Pskc,
                "<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\"/>",
            ),
        ] {
            assert_eq!(
                shown(&read(format, text.as_bytes())),
                ["no tokens: the file has no rows"],
                "{format}"
            );
        }
    }

    #[test]
    fn no_control_characters() {
        assert_eq!(
            record_problems(|r| r.user = "bob\u{7}".into()),
            ["serial 0012346: user has a control character U+0007"]
        );
    }

    /// Characters that show as nothing (or as a plain space) make a value that looks right
    /// and matches nothing: a byte order mark Notepad left in a UPN, a zero-width space pasted
    /// from a web page, a no-break space from a spreadsheet. Every field, every target.
    #[test]
    fn no_invisible_characters_in_any_field() {
        type Edit = fn(&mut TokenRecord);
        let cases: [(Edit, &str); 6] = [
            (
                |r| r.user = "\u{feff}bob@contoso.com".into(),
                "user has an invisible character U+FEFF (byte order mark)",
            ),
            (
                |r| r.user = "bob@contoso.com\u{200b}".into(),
                "user has an invisible character U+200B (zero width space)",
            ),
            (
                |r| r.serial = "0012\u{a0}346".into(),
                "serial number has an invisible character U+00A0 (no-break space)",
            ),
            (
                |r| r.manufacturer = "oath\u{ad}key".into(),
                "manufacturer has an invisible character U+00AD (soft hyphen)",
            ),
            (
                |r| r.model = "key\u{202e}".into(),
                "model has an invisible character U+202E (bidirectional text control)",
            ),
            (
                |r| r.model = "key\u{e0041}".into(),
                "model has an invisible character U+E0041",
            ),
        ];
        for target in [
            Target::Any,
            Target::Azure,
            Target::Graph,
            Target::PrivacyIdea,
        ] {
            for (edit, reason) in cases {
                let mut r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
                edit(&mut r);
                let problems: Vec<String> = validate(target, &[r])
                    .iter()
                    .map(|p| p.reason.clone())
                    .collect();
                // privacyIDEA's CSV carries the serial alone.
                if target == Target::PrivacyIdea && !reason.starts_with("serial") {
                    assert!(problems.is_empty(), "{problems:?}");
                } else {
                    assert_eq!(problems, [reason], "{target:?}");
                }
            }
        }
        // Visible characters beyond ASCII are not invisible.
        let r = totp("0012346", "bob@contoso.com", b"12345678901234567890");
        let mut r2 = r.clone();
        r2.manufacturer = "Ünïcödé Ltd. \u{1F511}".into();
        assert!(validate(Target::Any, &[r, r2]).is_empty());
    }

    #[test]
    fn no_duplicate_or_shape_rules() {
        let a = totp("", "not a upn", b"1234567890");
        let b = totp("", "not a upn", b"1234567890");
        assert!(validate(Target::Any, &[a, b]).is_empty());
    }
}

/// The one UPN rule (`upn_problem`), which provision's users-file check, the Azure target's
/// rules and `token new`'s warning all use.
mod upn {
    use super::*;
    use oathkey_seedfile::{RenderError, export_refusals, probe_record, upn_problem};

    fn refusals(user: &str) -> Vec<(Format, RenderError)> {
        export_refusals(&probe_record(user))
    }

    #[test]
    fn member_and_guest_upns_are_upns() {
        for upn in [
            "alice@contoso.com",
            "bob.o'neil@contoso.com",
            "a_b-c!d#e^f~g@sub.contoso.co.uk",
            "_x_@contoso.com",
            "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com",
            "Alice@Contoso.COM",
        ] {
            assert_eq!(upn_problem(upn), None, "{upn}");
        }
    }

    #[test]
    fn what_is_no_upn_says_why() {
        let shape = |upn: &str| {
            format!("upn {upn:?} is not a user principal name (name@domain.tld, no spaces)")
        };
        for upn in [
            "eve",
            "x@y",
            "not a upn",
            "@contoso.com",
            "bob@",
            "bob@.com",
            "bob@contoso.",
            "bob@contoso..com",
            "a@b@contoso.com",
            "",
        ] {
            assert_eq!(upn_problem(upn), Some(shape(upn)), "{upn}");
        }
        let allowed = "Entra allows A-Z, a-z, 0-9 and ' . - _ ! # ^ ~ before the @";
        for (upn, why) in [
            (
                "=1+1@contoso.com",
                format!("'=' is not allowed ({allowed})"),
            ),
            (
                "bob+tag@contoso.com",
                format!("'+' is not allowed ({allowed})"),
            ),
            (
                "josé@contoso.com",
                format!("'é' is not allowed ({allowed})"),
            ),
            (
                "bob&co@contoso.com",
                format!("'&' is not allowed ({allowed})"),
            ),
            (
                "bob,x@contoso.com",
                format!("',' is not allowed ({allowed})"),
            ),
            (
                "bob.@contoso.com",
                "a '.' cannot come right before the @".into(),
            ),
            ("-bob@contoso.com", "the name cannot start with '-'".into()),
            (".bob@contoso.com", "the name cannot start with '.'".into()),
            (
                "bob-@contoso.com",
                "a '-' cannot come right before the @".into(),
            ),
            (
                "bob@con_toso.com",
                "'_' is not allowed in the domain (letters, digits, '-' and '.')".into(),
            ),
            (
                "bob@-contoso.com",
                "a part of the domain cannot start or end with '-'".into(),
            ),
        ] {
            assert_eq!(
                upn_problem(upn),
                Some(format!("upn {upn:?} is not a user principal name: {why}")),
                "{upn}"
            );
        }
        let long_local = format!("{}@contoso.com", "a".repeat(65));
        assert_eq!(
            upn_problem(&long_local),
            Some(format!(
                "upn {} is not a user principal name: 65 characters before the @; Entra allows at most 64",
                crate::common::quoted(&long_local)
            ))
        );
        let long = format!("{}@{}.com", "a".repeat(60), "b".repeat(50));
        assert_eq!(
            upn_problem(&long),
            Some(format!(
                "upn {} is not a user principal name: 115 characters; Entra allows at most 113",
                crate::common::quoted(&long)
            ))
        );
        assert_eq!(
            upn_problem("\u{feff}alice@contoso.com"),
            Some("upn has an invisible character U+FEFF (byte order mark)".into())
        );
    }

    /// Azure's target rules use the same rule, so provision and export refuse the same names.
    #[test]
    fn the_azure_target_uses_it() {
        for upn in [
            "=1+1@contoso.com",
            "bob+tag@contoso.com",
            "x@y",
            "josé@contoso.com",
        ] {
            let r = totp("0012346", upn, b"12345678901234567890");
            let reasons: Vec<String> = validate(Target::Azure, &[r])
                .into_iter()
                .map(|p| p.reason)
                .collect();
            assert_eq!(reasons, [upn_problem(upn).expect("no UPN")], "{upn}");
        }
    }

    /// What `token new` warns about: every export format that would refuse a token for the
    /// user, and whether `--force` writes it anyway.
    #[test]
    fn export_refusals_name_the_formats() {
        assert!(refusals("alice@contoso.com").is_empty());
        let eve = refusals("eve");
        assert_eq!(eve.len(), 1, "{eve:?}");
        assert_eq!(eve[0].0, Format::AzureCsv);
        assert!(
            matches!(&eve[0].1, RenderError::Rejected(p) if p[0].reason == upn_problem("eve").expect("no UPN")),
            "{eve:?}"
        );
        let guest = refusals("bob_gmail.com#EXT#@contoso.onmicrosoft.com");
        assert_eq!(guest.len(), 1, "{guest:?}");
        assert!(
            guest[0].1.to_string().contains("is a guest account"),
            "{guest:?}"
        );
        // Invisible characters: every format that carries the user refuses it (PSKC even
        // forced, for a control character); privacyIDEA CSV carries no user.
        let formats: Vec<Format> = refusals("alice@contoso.com\u{7}")
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            formats,
            [
                Format::AzureCsv,
                Format::Otpauth,
                Format::Pskc,
                Format::GraphJson
            ]
        );
        // A formula is never written to an Azure CSV, forced or not.
        let formula = refusals("-bob@contoso.com");
        assert_eq!(formula.len(), 1, "{formula:?}");
        assert!(
            matches!(&formula[0].1, RenderError::Other(reason) if reason.starts_with("Azure CSV cannot carry a user starting with '-'")),
            "{formula:?}"
        );
    }
}
