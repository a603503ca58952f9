//! The inputs the replay tests run: every file under `fuzz/corpus/<target>/` (seeds, and what
//! fuzzing added) and `fuzz/regressions/<target>/` (crashes found, kept after the fix).
//!
//! Included by the `fuzz_replay` tests of the workspace crates, which run each input through
//! the same check as the fuzz target, on the stable toolchain.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fuzz project's directory (every including crate sits beside it).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// One input: where it came from and its bytes.
#[derive(Debug)]
pub struct Input {
    /// File name, which says what to expect (`ok-*` accepted, `bad-*` refused, `any-*` or any
    /// other name either), in the corpus and in the regressions alike.
    pub name: String,
    /// `corpus` or `regressions`.
    pub kind: &'static str,
    pub bytes: Vec<u8>,
}

impl Input {
    /// Whether the input must be accepted. Regressions named `ok-*` count too: a finding
    /// kept after its fix says by its name what the fix made of it.
    pub fn is_ok_seed(&self) -> bool {
        self.name.starts_with("ok-")
    }

    /// Whether the input must be refused (as for [`Input::is_ok_seed`], in both directories).
    pub fn is_bad_seed(&self) -> bool {
        self.name.starts_with("bad-")
    }
}

/// Every input of `target`, in name order. Panics if the target has no seed corpus.
pub fn inputs(target: &str) -> Vec<Input> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert_ne!(kind, "corpus", "no seed corpus at {}", dir.display());
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name")
                .to_string();
            let bytes = std::fs::read(&path).expect("a readable input");
            out.push(Input { name, kind, bytes });
        }
    }
    let in_corpus = |i: &&Input| i.kind == "corpus";
    assert!(
        out.iter().filter(in_corpus).any(Input::is_ok_seed),
        "{target}: no ok-* seed in the corpus"
    );
    assert!(
        out.iter().filter(in_corpus).any(Input::is_bad_seed),
        "{target}: no bad-* seed in the corpus"
    );
    out
}
