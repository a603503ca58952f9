//! What a finished command did, and assertions that show all of it when they fail.

use std::io::BufRead;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A finished command: how it was run (for failure messages) and its output. Derefs to the
/// [`Output`], so `ran.status` and `ran.stdout` read as before.
#[derive(Debug)]
pub struct Ran {
    /// The program, its arguments and the environment it was given, as `Command`'s `Debug`
    /// shows them.
    pub command: String,
    /// Where it ran (`None`: the test's own working directory).
    pub cwd: Option<PathBuf>,
    /// What it did.
    pub output: Output,
}

impl Ran {
    /// Runs `cmd` to the end, its stdout and stderr captured.
    pub fn run(cmd: &mut Command) -> Self {
        let command = format!("{cmd:?}");
        let cwd = cmd.get_current_dir().map(PathBuf::from);
        let output = cmd
            .output()
            .unwrap_or_else(|e| panic!("{command} did not run: {e}"));
        Self {
            command,
            cwd,
            output,
        }
    }
}

impl Deref for Ran {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.output
    }
}

/// A command's output, with whatever is known of how it was run.
pub trait Outcome {
    /// The output.
    fn output(&self) -> &Output;
    /// The command and its working directory, if known.
    fn how(&self) -> Option<String>;
}

impl Outcome for Output {
    fn output(&self) -> &Output {
        self
    }

    fn how(&self) -> Option<String> {
        None
    }
}

impl Outcome for Ran {
    fn output(&self) -> &Output {
        &self.output
    }

    fn how(&self) -> Option<String> {
        let cwd = match &self.cwd {
            Some(dir) => dir.display().to_string(),
            None => std::env::current_dir()
                .map_or_else(|_| "?".into(), |d| format!("{} (the test's)", d.display())),
        };
        Some(format!("command: {}\ncwd: {cwd}\n", self.command))
    }
}

/// The output's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The output's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts an exit code, showing the command (when known), its working directory, stdout and
/// stderr on failure.
#[track_caller]
pub fn assert_exit(o: &impl Outcome, code: i32) {
    let out = o.output();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\n{}stdout:\n{}\nstderr:\n{}",
        o.how().unwrap_or_default(),
        stdout(out),
        stderr(out)
    );
}

/// Reads lines until one contains `needle`; returns it. Fails if the stream ends first.
pub fn wait_for_line(reader: &mut impl BufRead, needle: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("reads");
        assert!(n > 0, "stream ended before {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}
