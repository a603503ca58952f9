//! Golden files: the exact bytes each format renders from a fixed set of records.
//!
//! The files in `tests/golden/` were rendered by this crate and checked by eye against the
//! format descriptions. To render them again after an intended change, run the tests with
//! `SEEDFILE_UPDATE_GOLDEN=1` and review the diff.

use std::path::PathBuf;

use oathkey_seedfile::{Format, read, render};

use crate::common::{as_carried, records_for, shown};

fn golden_path(format: Format) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("sample.{format}.{}", format.extension()))
}

#[test]
fn rendering_matches_the_golden_files() {
    for format in Format::ALL {
        let records = records_for(format);
        let rendered = render(format, &records, false).expect("renders");
        let path = golden_path(format);
        if std::env::var_os("SEEDFILE_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, rendered.as_bytes()).expect("write golden file");
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            String::from_utf8_lossy(&golden),
            rendered.as_str(),
            "{format} differs from {}",
            path.display()
        );
    }
}

#[test]
fn golden_files_read_back_to_the_records() {
    for format in Format::ALL {
        let golden = std::fs::read(golden_path(format)).expect("golden file");
        let parsed = read(format, &golden);
        assert!(parsed.is_clean(), "{format}: {:?}", shown(&parsed));
        let expected: Vec<_> = records_for(format)
            .iter()
            .map(|r| as_carried(format, r))
            .collect();
        assert_eq!(parsed.into_records(), expected, "{format}");
    }
}
