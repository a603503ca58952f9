//! The machine the figures come from, and what the benchmark reads about processes: memory,
//! threads, CPU time of the daemon's threads, the load average.

use std::process::Command;
use std::time::Duration;

use crate::command_line;

/// VmRSS, VmHWM (KiB) and the thread count of a process.
#[derive(Clone, Copy, Default)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
}

pub fn proc_mem(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        threads: field("Threads:"),
    }
}

/// CPU time (user + system) used so far by this process's daemon threads: the tokio workers
/// (and blocking threads) and the key actors, which also run the in-process virtual key.
pub fn daemon_threads_cpu() -> Duration {
    let ticks_per_s: u64 = command_line("getconf", &["CLK_TCK"])
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ... utime stime ...": comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        if !(comm.starts_with("tokio-runtime") || comm.starts_with("key-")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_s.max(1) as f64)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub struct Machine {
    pub cpu: String,
    pub cores: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub date: String,
    pub commit: String,
    pub tmp_fs: String,
    pub load_start: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "?".into(), |(_, v)| v.trim().to_string());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let detect = |arg: &str| command_line("systemd-detect-virt", &[arg]).filter(|v| v != "none");
    let kernel = match (detect("--vm"), detect("--container")) {
        (Some(vm), Some(ct)) => {
            format!("Linux {kernel} (a {vm} virtual machine; in a {ct} container)")
        }
        (Some(vm), None) => format!("Linux {kernel} (a {vm} virtual machine)"),
        (None, Some(ct)) => format!("Linux {kernel} (in a {ct} container)"),
        (None, None) => format!("Linux {kernel}"),
    };
    let commit = match command_line("git", &["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) => {
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if dirty {
                format!("{hash} (with uncommitted changes)")
            } else {
                hash
            }
        }
        None => "? (not a git checkout)".into(),
    };
    let tmp = std::env::temp_dir();
    let tmp_text = tmp.to_string_lossy();
    let tmp_fs = command_line("findmnt", &["-n", "-o", "FSTYPE", "--target", &tmp_text])
        .or_else(|| command_line("stat", &["-f", "-c", "%T", &tmp_text]))
        .map_or_else(|| "?".into(), |fs| format!("{} ({fs})", tmp.display()));
    Machine {
        cpu,
        cores: format!("{logical} logical CPUs, {usable} usable by this process"),
        memory,
        kernel,
        rustc: command_line("rustc", &["-V"]).unwrap_or_else(|| "?".into()),
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "?".into()),
        commit,
        tmp_fs,
        load_start: loadavg(),
    }
}
