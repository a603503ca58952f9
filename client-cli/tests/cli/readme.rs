//! The README, run: the tour's commands against a private daemon with two virtual keys, as
//! written, and the demo's output against what the README shows. Docs that drift from the
//! program fail here.

use std::process::Command;

use oathkey_testkit::{Daemon, assert_exit, stderr, stdout};

const README: &str = include_str!("../../../README.md");

/// The text of the ```sh blocks in the README section headed `heading` (up to the next
/// heading), in order.
fn sh_blocks(heading: &str) -> String {
    let start = README
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let section = &README[start + heading.len() + 2..];
    let section = &section[..section.find("\n#").unwrap_or(section.len())];
    let mut blocks = String::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line.trim_end()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, l) => {
                blocks.push_str(l);
                blocks.push('\n');
            }
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "no sh block under {heading:?}");
    blocks
}

/// Runs `script` with `sh -e`, `oathkey` from this build first on PATH and talking to `d`.
fn run_sh(d: &Daemon, dir: &std::path::Path, script: &str) -> std::process::Output {
    let bin_dir = oathkey_testkit::bin("oathkey")
        .parent()
        .expect("a directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-e", "-x", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("OATHKEY_SOCKET", &d.socket)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh runs")
}

/// The README's tour, after "Run the daemon" with two virtual keys: every command as
/// written, in order, in one shell (its variables carry over), each ending with status 0.
/// It used to fail with "2 keys are present" for want of `--key`.
#[test]
fn the_readme_tour_runs_as_written() {
    // `oathkeyd --user --no-hid --emulate 2`, as the tour starts it (its socket and state in
    // a private directory).
    assert!(README.contains("oathkeyd --user --no-hid --emulate 2"));
    let d = Daemon::start(&["--emulate", "2"]);
    let dir = d.dir.path();
    std::fs::write(dir.join("users.txt"), "bob@contoso.com\n").expect("written");
    let script = [
        sh_blocks("### The admin tool's job, from the command line"),
        sh_blocks("### Codes for people and scripts"),
    ]
    .concat();
    let run = run_sh(&d, dir, &script);
    assert_exit(&run, 0);
    // What the tour made: alice's token from `token new`, bob's from provision, both
    // exported, then purged from the ledger; the codes printed are six digits.
    let check = std::fs::read_to_string(dir.join("tseed.csv")).expect("provision wrote it");
    assert!(check.contains("bob@contoso.com"), "{check}");
    assert!(dir.join("seeds.xml").exists());
    let codes = stdout(&run)
        .lines()
        .filter(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .count();
    assert!(codes >= 2, "{}", stdout(&run));
    assert!(
        stderr(&run).contains("Purged 2 exported seed(s)"),
        "{}",
        stderr(&run)
    );
}

fn code_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

/// The demo said "2 periods" and showed three codes. `--periods N` shows N codes, one per
/// period, and says so; the README shows the same as the program prints.
#[test]
fn the_demo_shows_as_many_codes_as_it_says_and_the_readme_shows_it() {
    let demo = |args: &[&str]| {
        Command::new(oathkey_testkit::bin("oathkey"))
            .arg("demo")
            .args(args)
            .env_remove("OATHKEY_SOCKET")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs")
    };
    let run = demo(&["--periods", "1"]);
    assert_exit(&run, 0);
    let text = stdout(&run);
    assert_eq!(code_lines(&text), 1, "{text}");
    let live: String = text
        .lines()
        .find(|l| l.starts_with("Live codes"))
        .expect("the live line")
        .into();
    assert!(live.contains("1 in all"), "{live}");

    // The README's demo output: its "Live codes" line is the program's for its count, and
    // that many codes follow; the other lines are the program's.
    let start = README
        .find("Started a private oathkeyd")
        .expect("demo output");
    let block = &README[start
        ..README[start..]
            .find("```")
            .map_or(README.len(), |e| start + e)];
    let readme_live = block
        .lines()
        .find(|l| l.starts_with("Live codes"))
        .expect("README shows the live line");
    let shown = code_lines(block);
    assert_eq!(
        readme_live,
        live.replace("1 in all", &format!("{shown} in all")),
        "README:\n{block}"
    );
    for line in text.lines().filter(|l| !l.starts_with("  ")) {
        if line.starts_with("Started") || line.starts_with("Live") {
            continue;
        }
        assert!(block.contains(line), "README lacks {line:?}:\n{block}");
    }

    // JSON: the codes are in it.
    let run = demo(&["--json", "--periods", "1"]);
    assert_exit(&run, 0);
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(v["codes"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(v["codes"][0]["code"].as_str().is_some_and(|c| c.len() == 6));

    let none = demo(&["--periods", "0"]);
    assert_exit(&none, 2);
}
