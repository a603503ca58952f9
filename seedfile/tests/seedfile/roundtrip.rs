//! render → read gives the same records, for every format.

use oathkey_seedfile::{Format, detect, read, render};

use crate::common::{as_carried, records_for, shown};

#[test]
fn every_format_round_trips() {
    for format in Format::ALL {
        let records = records_for(format);
        let text = render(format, &records, false).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(detect(text.as_bytes()), Some(format), "{format}");
        let parsed = read(format, text.as_bytes());
        assert!(parsed.is_clean(), "{format}: {:?}", shown(&parsed));
        let back: Vec<_> = parsed.records.iter().map(|(_, r)| r.clone()).collect();
        let expected: Vec<_> = records.iter().map(|r| as_carried(format, r)).collect();
        assert_eq!(back, expected, "{format}");
        // Secrets compared explicitly, since Secret's Debug hides them in a failure message.
        for (b, e) in back.iter().zip(&expected) {
            assert_eq!(
                b.secret.expose(),
                e.secret.expose(),
                "{format} {}",
                e.serial
            );
        }
    }
}

#[test]
fn leading_zeros_survive_everywhere() {
    for format in Format::ALL {
        let text = render(format, &records_for(format), false).expect("renders");
        let parsed = read(format, text.as_bytes());
        let serials: Vec<_> = parsed
            .records
            .iter()
            .map(|(_, r)| r.serial.as_str())
            .collect();
        assert_eq!(&serials[..3], ["0012345", "0012346", "000789"], "{format}");
    }
}

#[test]
fn records_carry_their_lines() {
    let text = render(Format::AzureCsv, &records_for(Format::AzureCsv), false).expect("renders");
    let lines: Vec<_> = read(Format::AzureCsv, text.as_bytes())
        .records
        .iter()
        .map(|(line, _)| *line)
        .collect();
    assert_eq!(lines, [2, 3, 4]);
    let text = render(Format::GraphJson, &records_for(Format::GraphJson), false).expect("renders");
    let lines: Vec<_> = read(Format::GraphJson, text.as_bytes())
        .records
        .iter()
        .map(|(line, _)| *line)
        .collect();
    // Each pretty-printed entry takes 9 lines, after 3 lines of preamble.
    assert_eq!(lines, [4, 13, 22, 31]);
}
