//! The seed-file readers (`oathkey_seedfile::read`) of every format, fed arbitrary bytes.
//!
//! Shared by the `seed_*` targets in `fuzz/fuzz_targets/` and
//! `seedfile/tests/seedfile/fuzz_replay.rs`.
//!
//! Properties: no panic; every problem has a reason and a line inside the file; problems come
//! in line order and records in file order; and whatever records were read render again in the
//! same format (forced, so that target rules do not stop it) and read back as the same records,
//! secrets included, in a file `detect` recognises. A file read without a problem renders
//! without forcing and reads back without a problem.
#![allow(dead_code)]

use oathkey_seedfile::{Format, RenderError, Target, TokenRecord, detect, read, read_as, render};

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Records read.
    pub records: usize,
    /// Problems found.
    pub problems: usize,
    /// What `detect` made of the bytes.
    pub detected: Option<Format>,
}

/// The format each fuzz target reads, by target name.
pub fn format_of(target: &str) -> Format {
    match target {
        "seed_azure_csv" => Format::AzureCsv,
        "seed_otpauth" => Format::Otpauth,
        "seed_pskc" => Format::Pskc,
        "seed_graph_json" => Format::GraphJson,
        "seed_privacyidea_csv" => Format::PrivacyIdeaCsv,
        other => panic!("no seed-file target {other}"),
    }
}

fn same_records(format: Format, first: &[TokenRecord], again: &[TokenRecord]) {
    assert_eq!(
        first.len(),
        again.len(),
        "{format}: {} records read back as {}",
        first.len(),
        again.len()
    );
    for (i, (a, b)) in first.iter().zip(again).enumerate() {
        assert_eq!(a, b, "{format}: record {i} changed in the round trip");
        // Secret's Debug hides the bytes; compare them explicitly.
        assert_eq!(a.secret.expose(), b.secret.expose(), "{format}: secret {i}");
    }
}

/// Runs one input through `format`'s reader; panics if a property breaks.
pub fn check(format: Format, bytes: &[u8]) -> Outcome {
    let detected = detect(bytes);
    let parsed = read(format, bytes);
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    for p in &parsed.problems {
        assert!(!p.reason.is_empty(), "{format}: a problem without a reason");
        if let Some(line) = p.line {
            assert!(
                (1..=lines).contains(&line),
                "{format}: problem on line {line}"
            );
        }
        assert!(!p.to_string().is_empty());
    }
    let order: Vec<usize> = parsed
        .problems
        .iter()
        .map(|p| p.line.unwrap_or(usize::MAX))
        .collect();
    assert!(order.is_sorted(), "{format}: problems out of line order");
    let record_lines: Vec<usize> = parsed.records.iter().map(|(line, _)| *line).collect();
    assert!(
        record_lines.is_sorted(),
        "{format}: records out of file order"
    );
    for line in &record_lines {
        assert!(
            (1..=lines).contains(line),
            "{format}: record on line {line}"
        );
    }
    // Other targets' rules on the same bytes: no panic, and the same records.
    for target in [
        Target::Azure,
        Target::Graph,
        Target::PrivacyIdea,
        Target::Any,
    ] {
        let other = read_as(format, bytes, target);
        assert_eq!(other.records.len(), parsed.records.len());
    }

    let records: Vec<TokenRecord> = parsed.records.iter().map(|(_, r)| r.clone()).collect();
    if !records.is_empty() {
        match render(format, &records, true) {
            Ok(text) => {
                let again = read(format, text.as_bytes());
                let back: Vec<TokenRecord> = again.records.iter().map(|(_, r)| r.clone()).collect();
                same_records(format, &records, &back);
                // Detection goes by content; `{` first is JSON whatever follows (a privacyIDEA
                // serial starting with `{` is taken for Graph JSON, as documented).
                if !text.starts_with('{') || format == Format::GraphJson {
                    assert_eq!(
                        detect(text.as_bytes()),
                        Some(format),
                        "{format}: a rendered file is not recognised"
                    );
                }
                if parsed.is_clean() {
                    let problems: Vec<String> =
                        again.problems.iter().map(ToString::to_string).collect();
                    assert!(
                        problems.is_empty(),
                        "{format}: a clean file renders with problems: {problems:?}"
                    );
                }
            }
            Err(RenderError::Other(reason)) => {
                // Records the format cannot describe come only from files with problems.
                assert!(
                    !parsed.is_clean(),
                    "{format}: records of a clean file do not render: {reason}"
                );
            }
            Err(e @ RenderError::Rejected(_)) => panic!("{format}: forced render rejected: {e}"),
        }
        if parsed.is_clean() {
            render(format, &records, false)
                .unwrap_or_else(|e| panic!("{format}: a clean file's records are refused: {e}"));
        }
    }
    Outcome {
        records: parsed.records.len(),
        problems: parsed.problems.len(),
        detected,
    }
}
