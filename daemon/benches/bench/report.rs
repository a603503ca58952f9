//! The report: every figure of one run rendered into docs/benchmarks.md's markdown. Measures
//! nothing itself.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::Plan;
use crate::format::{bytes, dur, group, kib, rate, ratio};
use crate::measure::cli::CliResult;
use crate::measure::driver::DriverResult;
use crate::measure::load::{DaemonLoad, LoadResult, Mode};
use crate::measure::memory::{MemResult, Size};
use crate::measure::seeding::{SeedResult, SeedRun};

/// Issue 14's goals, printed beside the figures they judge.
const GOAL_CLI_RATIO: f64 = 1.25;
const GOAL_DAEMON_OVERHEAD: Duration = Duration::from_micros(40);
use crate::stats::Summary;
use crate::system::{Machine, Mem};

/// Everything one run measured.
pub struct Results {
    pub machine: Machine,
    pub load_end: String,
    pub run_time: Duration,
    pub cli: CliResult,
    pub driver_fast: DriverResult,
    pub driver_usb: DriverResult,
    pub load: DaemonLoad,
    pub mem: MemResult,
    pub sizes: Vec<Size>,
    pub seed: SeedResult,
    pub bin_dir: PathBuf,
}

pub fn find(results: &[LoadResult], clients: usize, mode: Mode) -> &LoadResult {
    results
        .iter()
        .find(|r| r.clients == clients && r.mode == mode)
        .expect("measured")
}

pub fn load_table(md: &mut String, results: &[LoadResult], limit: Option<f64>) {
    let extra = if limit.is_some() {
        " | of the key's limit"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "| clients | requests | requests/s | p50 | p99 | key exchanges/s | requests per exchange | daemon CPU per request{extra} |"
    );
    let _ = writeln!(
        md,
        "|---:|---|---:|---:|---:|---:|---:|---:|{}",
        if limit.is_some() { "---:|" } else { "" }
    );
    for r in results {
        let mode = match r.mode {
            Mode::Same => "same code",
            Mode::Distinct => "distinct steps",
        };
        let share = limit.map_or(String::new(), |l| {
            format!(" {:.0} % |", 100.0 * r.per_s / l)
        });
        let _ = writeln!(
            md,
            "| {} | {mode} | {} | {} | {} | {} | {:.2} | {} |{share}",
            r.clients,
            rate(r.per_s),
            dur(r.lat.p50),
            dur(r.lat.p99),
            rate(r.exchanges_per_s),
            r.per_s / r.exchanges_per_s.max(1e-9),
            dur(r.cpu_per_request),
        );
    }
}

/// A note under a load table: every failed request, or that there were none.
pub fn load_errors(md: &mut String, results: &[LoadResult]) {
    let failed: Vec<&LoadResult> = results.iter().filter(|r| r.errors > 0).collect();
    if failed.is_empty() {
        let _ = writeln!(
            md,
            "\nEvery request was answered, and every code checked (distinct steps) was right."
        );
        return;
    }
    for r in failed {
        let _ = writeln!(
            md,
            "\n**{} request(s) failed** with {} client(s), {}; the first: {}",
            r.errors,
            r.clients,
            match r.mode {
                Mode::Same => "same code",
                Mode::Distinct => "distinct steps",
            },
            r.first_error.as_deref().unwrap_or("?")
        );
    }
}

pub fn seed_row(md: &mut String, run: &SeedRun) {
    let per_key = run.total / run.keys.max(1) as u32;
    let (p50, p99) = run
        .per_key
        .map_or(("–".into(), "–".into()), |s| (dur(s.p50), dur(s.p99)));
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {p50} | {p99} |",
        run.what,
        group(run.keys as u64),
        dur(run.total),
        rate(run.keys as f64 / run.total.as_secs_f64()),
        dur(per_key),
    );
}

pub fn render(r: &Results, plan: Plan) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let cli = &r.cli;
    let fast1 = find(&r.load.fast, 1, Mode::Distinct);
    let same1 = find(&r.load.fast, 1, Mode::Same);
    let fast16 = find(&r.load.fast, 16, Mode::Distinct);
    let fast256 = find(&r.load.fast, 256, Mode::Distinct);
    let same256 = find(&r.load.fast, 256, Mode::Same);
    let usb1 = find(&r.load.usb, 1, Mode::Distinct);
    let usb16 = find(&r.load.usb, 16, Mode::Distinct);
    let usb256 = find(&r.load.usb, 256, Mode::Distinct);
    let usb16same = find(&r.load.usb, 16, Mode::Same);
    let usb256same = find(&r.load.usb, 256, Mode::Same);
    let limit = r.driver_usb.per_s;
    let per_key_daemon = r.seed.daemon_disk.total / r.seed.daemon_disk.keys.max(1) as u32;
    let per_key_inproc = r.seed.in_process.total / r.seed.in_process.keys.max(1) as u32;
    let per_key_prov = r.seed.provision.total / r.seed.provision.keys.max(1) as u32;

    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `scripts/bench` on {} at commit {}: every figure below comes from that one \
         run, on the machine described under [Machine](#machine). Run `scripts/bench` again to \
         measure yours; expect different numbers.\n",
        m.date, m.commit
    );

    let _ = writeln!(md, "## What the numbers say\n");
    let _ = writeln!(
        md,
        "- **`oathkey code` takes {} from process start to printed code** (median; p99 {}, \
         fastest {}), through the daemon and a virtual key. {} A process that does nothing \
         (`true`) takes {} here (fastest {}): most of `oathtool`'s time is starting a process. \
         `oathkey` adds loading a larger binary, connecting to the socket, one round trip \
         (`hello`, `events.subscribe` and `codes.get` sent in one write, three answers read) \
         and the key's exchange: about {} over \
         `true` at the median, {} between the fastest runs. Neither is noticeable in a login \
         script; the medians move with the machine's load (see the caveats), the fastest runs \
         much less.",
        dur(cli.oathkey.p50),
        dur(cli.oathkey.p99),
        dur(cli.oathkey.min),
        cli.oathtool.map_or_else(
            || "(`oathtool` was not available.)".to_string(),
            |s| format!(
                "`oathtool --totp` computing the same code locally takes {} (p99 {}, fastest \
                 {}): the ratio `oathkey`/`oathtool` is {:.2} at the median and {:.2} at p99.",
                dur(s.p50),
                dur(s.p99),
                dur(s.min),
                ratio(cli.oathkey.p50, s.p50),
                ratio(cli.oathkey.p99, s.p99)
            )
        ),
        dur(cli.spawn_floor.p50),
        dur(cli.spawn_floor.min),
        dur(cli.oathkey.p50.saturating_sub(cli.spawn_floor.p50)),
        dur(cli.oathkey.min.saturating_sub(cli.spawn_floor.min)),
    );
    let (lo, hi) = if fast1.lat.p50 <= same1.lat.p50 {
        (fast1, same1)
    } else {
        (same1, fast1)
    };
    let _ = writeln!(
        md,
        "- **The daemon adds {} per request at the median** over calling the driver directly: \
         the two one-client rows of table 2, which do the same work (one exchange per request), \
         have p50s of {} and {}, and `Key::calculate` on the same in-process virtual key takes \
         {}. Most of that is waiting, not work: a request passes four thread hand-offs \
         (client, tokio worker, the key's actor thread, tokio worker, client), each waking a \
         sleeping thread, which is slow and erratic in a VM{}. The daemon's threads spend {} of \
         CPU per request with one client and {} with 16{}. \
         With no USB delay 16 clients get {} codes/s in all and 256 clients {}: two cores are \
         shared by the daemon, the virtual key and the client threads, so past a few clients \
         more of them only lengthen the queue (p99 with 256: {}).",
        if ratio(hi.lat.p50, lo.lat.p50) > 1.5 {
            format!(
                "{} to {}",
                dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
                dur(hi.lat.p50.saturating_sub(r.driver_fast.lat.p50))
            )
        } else {
            format!(
                "about {}",
                dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50))
            )
        },
        dur(lo.lat.p50),
        dur(hi.lat.p50),
        dur(r.driver_fast.lat.p50),
        if ratio(hi.lat.p50, lo.lat.p50) > 1.5 {
            "; that is also why the two one-client rows differ"
        } else {
            ""
        },
        dur(lo.cpu_per_request.min(hi.cpu_per_request)),
        dur(fast16.cpu_per_request),
        if fast16.cpu_per_request.as_secs_f64()
            < 0.8 * lo.cpu_per_request.min(hi.cpu_per_request).as_secs_f64()
        {
            " (fewer sleeps and wake-ups per request)"
        } else {
            ""
        },
        rate(fast16.per_s),
        rate(fast256.per_s),
        dur(fast256.lat.p99),
    );
    let _ = writeln!(
        md,
        "- **At USB timing the key is the limit, and the daemon gets {:.0} % of it** with 16 \
         clients asking for different codes ({:.0} % with 256): a direct driver manages {} \
         codes/s when each report takes 1 ms ({:.1} report out per code), the daemon serves \
         {} codes/s to 16 clients. Each of those requests is its own exchange and the key does \
         one at a time, so a request waits for about 16 exchanges (p50 {}). One client alone \
         gets {} codes/s ({:.0} %): it sends one request at a time, and the key idles while \
         each answer travels back and the next request comes in.",
        100.0 * usb16.per_s / limit,
        100.0 * usb256.per_s / limit,
        rate(limit),
        r.driver_usb.reports_out_per_call,
        rate(usb16.per_s),
        dur(usb16.lat.p50),
        rate(usb1.per_s),
        100.0 * usb1.per_s / limit,
    );
    let _ = writeln!(
        md,
        "- **Coalescing is why 16 clients asking for the same code get {} codes/s, {:.1}× the \
         key's limit, with a p50 of {} instead of {}**: the daemon answers concurrent reads of \
         the same token and time step with one exchange ({:.1} requests per exchange; with 256 \
         clients {:.1}, {} codes/s). The key is no faster; its answers are shared. That is the \
         common case (several programs showing the current code of the one token), but \
         coalescing does nothing for different tokens or time steps, nor for tokens that need \
         a touch (each read is a touch of its own). Without a USB delay an exchange is over \
         before others can join it: {:.2} requests per exchange with 256 clients.",
        rate(usb16same.per_s),
        usb16same.per_s / limit,
        dur(usb16same.lat.p50),
        dur(usb16.lat.p50),
        usb16same.per_s / usb16same.exchanges_per_s.max(1e-9),
        usb256same.per_s / usb256same.exchanges_per_s.max(1e-9),
        rate(usb256same.per_s),
        same256.per_s / same256.exchanges_per_s.max(1e-9),
    );
    let per_client =
        r.mem.busy.rss_kb.saturating_sub(r.mem.idle.rss_kb) as f64 / r.mem.clients.max(1) as f64;
    let _ = writeln!(
        md,
        "- **Memory**: the daemon with one key has {} resident when idle and {} with {} \
         clients connected (about {:.1} KiB per connection; peak {}); with {} virtual keys, one \
         actor thread each, {}.",
        kib(r.mem.idle.rss_kb),
        kib(r.mem.busy.rss_kb),
        group(r.mem.clients as u64),
        per_client,
        kib(r.mem.busy.hwm_kb),
        group(r.seed.daemon_disk.keys as u64),
        kib(r.seed.keys_idle.rss_kb),
    );
    let per = |run: &SeedRun| run.total / run.keys.max(1) as u32;
    let provision_software = match (&r.seed.provision_tmpfs, &r.seed.provision_tmpfs_small) {
        (Some(big), Some(small)) => {
            let grows = per(big).as_secs_f64() > 1.5 * per(small).as_secs_f64();
            format!(
                " On tmpfs it takes {} per key for {} keys and {} for {}: {}",
                dur(per(big)),
                group(big.keys as u64),
                dur(per(small)),
                group(small.keys as u64),
                if grows {
                    "its software cost per key grows with the number of keys, because for each \
                     key it re-reads the whole seed file it appends to (see section 5)."
                } else {
                    "its software cost per key hardly depends on the number of keys."
                }
            )
        }
        _ => String::new(),
    };
    let _ =
        writeln!(
        md,
        "- **Seeding {} keys**: {} per key in process (driver and virtual key alone), {} per key \
         through the daemon, which fsyncs the write-ahead seed ledger (and the virtual key its \
         state file) for every token{}. The admin's `oathkey provision --keys-present` takes {} \
         per key ({} keys/s), with more round trips, the seed file rewritten and fsynced after \
         every key and one more ledger write.{} A real key's USB and flash time come on top.\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(per_key_inproc),
        dur(per_key_daemon),
        r.seed.daemon_tmpfs.as_ref().map_or(String::new(), |t| format!(
            " ({} with the state on tmpfs, where fsync costs nothing: the rest is the disk)",
            dur(per(t))
        )),
        dur(per_key_prov),
        rate(r.seed.provision.keys as f64 / r.seed.provision.total.as_secs_f64()),
        provision_software,
    );

    let _ = writeln!(md, "### Caveats\n");
    let _ = writeln!(
        md,
        "- **A virtual key, not hardware.** The emulator computes codes in microseconds; with \
         `--emulate-report-us 1000` each report it sends takes 1 ms, like a full-speed USB \
         interrupt endpoint, but a real key's processing time, USB scheduling and flash writes \
         are not modelled. The driver, the daemon and the CLI are the real code."
    );
    let _ = writeln!(
        md,
        "- **A shared 2-core VM.** The two cores are shared with other engineers' builds, which \
         may have run during the benchmark (load average {} at the start, {} at the end), and \
         the clients, the daemon and the virtual key share them too. Expect tens of percent \
         between runs, more for p99 and for single-client latency: while this benchmark was \
         written, repeated runs put the one-client p50 of table 2 either near 30 µs or near \
         100 µs, depending on how fast sleeping threads woke. Compare the figures of one run \
         with each other rather than across runs.",
        m.load_start, r.load_end
    );
    let _ = writeln!(
        md,
        "- **No emulation layer.** Everything runs natively on the host: the QEMU guest (TCG) \
         of the hardware-in-the-loop tests is not involved, and nothing goes through uhid or \
         hidraw; the in-process transport replaces the kernel's HID path."
    );
    let _ = writeln!(
        md,
        "- **The load tests run the daemon's library in the benchmark process** (the same \
         `oathkeyd::start` the binary calls, on a multi-threaded tokio runtime, without the \
         binary's signal handling and logging) so that the virtual key's exchanges can be \
         counted; clients are threads with their own connections on the real Unix socket. The \
         CLI, memory and seeding figures use the release binaries.\n"
    );

    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu);
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(md, "| memory | {} |", m.memory);
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        md,
        "| build | release profile of the workspace (`lto = \"thin\"`, `codegen-units = 4`, \
         `strip = \"debuginfo\"`) |"
    );
    let _ = writeln!(md, "| temporary files | {} |", m.tmp_fs);
    let _ = writeln!(md, "| date | {} |", m.date);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | {} at the start, {} at the end |",
        m.load_start, r.load_end
    );
    let _ = writeln!(md, "| whole run | {} |\n", dur(r.run_time));

    let _ = writeln!(md, "## 1. `oathkey code` against `oathtool --totp`\n");
    let _ = writeln!(
        md,
        "From spawning the process to its exit with the code printed, {} runs each, \
         alternating which goes first (10 warm-up runs not counted). The daemon has one virtual \
         key holding one token (the RFC 6238 seed, SHA-1, 6 digits, 30 s); `oathtool --totp -b` \
         gets the same seed. {}\n",
        cli.oathkey.n,
        match &cli.oathtool_version {
            Some(v) => format!(
                "Both printed the same code in {} of {} runs within one time step ({} \
                 mismatches; runs that crossed a step boundary are not compared); every \
                 `oathkey` code was also checked against the daemon's own RFC 6238 \
                 computation. oathtool: {v}.",
                cli.compared - cli.mismatches,
                cli.compared,
                cli.mismatches
            ),
            None => "oathtool is not installed, so only `oathkey` was measured.".into(),
        }
    );
    let _ = writeln!(
        md,
        "| command | median | p99 | mean | min |\n|---|---:|---:|---:|---:|"
    );
    let row = |md: &mut String, name: &str, s: &Summary| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            dur(s.p50),
            dur(s.p99),
            dur(s.mean),
            dur(s.min)
        );
    };
    row(
        &mut md,
        "`oathkey code` (daemon, virtual key)",
        &cli.oathkey,
    );
    if let Some(ot) = &cli.oathtool {
        row(&mut md, "`oathtool --totp -b SEED`", ot);
    }
    row(&mut md, "`true` (process start alone)", &cli.spawn_floor);
    row(
        &mut md,
        "`oathkey code`, key at USB timing (1 ms per report)",
        &cli.oathkey_usb,
    );
    if let Some(ot) = &cli.oathtool {
        let _ = writeln!(
            md,
            "\nRatio `oathkey code` / `oathtool`: **{:.2}** at the median, **{:.2}** at p99. \
             Goal (issue 14): at most {GOAL_CLI_RATIO:.2} at the median: **{}**.\n",
            ratio(cli.oathkey.p50, ot.p50),
            ratio(cli.oathkey.p99, ot.p99),
            if ratio(cli.oathkey.p50, ot.p50) <= GOAL_CLI_RATIO {
                "met"
            } else {
                "not met"
            }
        );
    } else {
        md.push('\n');
    }

    let _ = writeln!(md, "## 2. Daemon throughput and latency (no USB delay)\n");
    let _ = writeln!(
        md,
        "`codes.get` on one key, each client a thread with its own connection sending one \
         request after another for {} (after {} of warm-up). *Distinct steps*: each client asks \
         for its own time step (`at`), so no two concurrent requests can share a key exchange; \
         *same code*: every client asks for the current code of the same token. Key exchanges \
         are counted on the virtual key.\n",
        dur(plan.load_measure),
        dur(plan.load_warm)
    );
    load_table(&mut md, &r.load.fast, None);
    load_errors(&mut md, &r.load.fast);
    let _ = writeln!(
        md,
        "\nThe driver alone, `Key::calculate` over the emulator's in-process transport in a \
         loop, same key and token: **{} calls/s**, p50 {}, p99 {} ({:.1} report in and {:.1} \
         out per call). Daemon overhead per request (median, one client, the two one-client \
         rows): **{}** and **{}**. Goal (issue 14): at most {} for the faster row: **{}**.\n",
        rate(r.driver_fast.per_s),
        dur(r.driver_fast.lat.p50),
        dur(r.driver_fast.lat.p99),
        r.driver_fast.reports_in_per_call,
        r.driver_fast.reports_out_per_call,
        dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
        dur(hi.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
        dur(GOAL_DAEMON_OVERHEAD),
        if lo.lat.p50.saturating_sub(r.driver_fast.lat.p50) <= GOAL_DAEMON_OVERHEAD {
            "met"
        } else {
            "not met"
        },
    );

    let _ = writeln!(md, "## 3. At USB timing: 1 ms per report\n");
    let _ = writeln!(
        md,
        "The same daemon and key with the key's report interval set to 1 ms \
         (`--emulate-report-us 1000`). The key's own limit is the direct driver's rate with the \
         same pacing: **{} codes/s** (p50 {}, p99 {}). \"Of the key's limit\" divides each row \
         by it; above 100 % is only possible by sharing answers.\n",
        rate(limit),
        dur(r.driver_usb.lat.p50),
        dur(r.driver_usb.lat.p99),
    );
    load_table(&mut md, &r.load.usb, Some(limit));
    load_errors(&mut md, &r.load.usb);
    let _ = writeln!(
        md,
        "\nHow coalescing works (daemon/src/keys/actor.rs): the first read of a TOTP token for a \
         time step sends one CALCULATE to the key's actor; reads of the same token and step that \
         arrive while it is queued or running wait for its answer instead of queueing their own. \
         So with *same code*, one exchange answers every request that arrived during the \
         previous one; with *distinct steps*, nothing is shared and the clients queue for the \
         key.\n"
    );

    let _ = writeln!(md, "## 4. Memory and binary sizes\n");
    let _ = writeln!(
        md,
        "The release `oathkeyd` with one virtual key, from `/proc/PID/status`.\n"
    );
    let _ = writeln!(
        md,
        "| state | VmRSS | VmHWM (peak) | threads |\n|---|---:|---:|---:|"
    );
    let mem_row = |md: &mut String, name: &str, x: &Mem| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            kib(x.rss_kb),
            kib(x.hwm_kb),
            x.threads
        );
    };
    mem_row(
        &mut md,
        "idle (a token created, one code read)",
        &r.mem.idle,
    );
    mem_row(
        &mut md,
        &format!(
            "{} clients connected, each read one code (connecting them all took {})",
            group(r.mem.clients as u64),
            dur(r.mem.connect_all)
        ),
        &r.mem.busy,
    );
    mem_row(&mut md, "after they disconnected", &r.mem.after);
    mem_row(
        &mut md,
        &format!(
            "{} virtual keys, idle after start",
            group(r.seed.daemon_disk.keys as u64)
        ),
        &r.seed.keys_idle,
    );
    mem_row(
        &mut md,
        &format!(
            "{} virtual keys, after seeding each",
            group(r.seed.daemon_disk.keys as u64)
        ),
        &r.seed.keys_seeded,
    );
    let _ = writeln!(
        md,
        "\nRelease binaries in `{}` (as built: the release profile strips debug info but keeps \
         the symbol table; stripped: `strip` on a copy).\n",
        r.bin_dir
            .strip_prefix(std::env::current_dir().unwrap_or_default())
            .unwrap_or(&r.bin_dir)
            .display()
    );
    let _ = writeln!(md, "| binary | as built | stripped |\n|---|---:|---:|");
    for s in &r.sizes {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} |",
            s.name,
            bytes(s.as_built),
            s.stripped.map_or_else(|| "(no `strip`)".into(), bytes)
        );
    }
    md.push('\n');

    let _ = writeln!(
        md,
        "## 5. Seeding {} virtual keys\n",
        group(plan.seed_keys as u64)
    );
    let _ = writeln!(
        md,
        "Each key gets one TOTP token (SHA-1, 6 digits, 30 s) and is verified by reading a code \
         back, one key after another. Software overhead only: the virtual keys answer at once \
         (no USB delay, no flash write time); their state files live in the daemon's state \
         directory and are written (with fsync) like the seed ledger, so the rows on disk depend \
         on the disk and on whoever else writes to it. The daemon with {} keys was ready {} \
         after it was started (it creates and fsyncs each new key's state file). Rows \"on tmpfs\" \
         keep the daemon's state (seed ledger, key state files) and the seed file in /dev/shm, \
         where fsync costs nothing: they show the software alone.\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(r.seed.startup)
    );
    let _ = writeln!(
        md,
        "| how | keys | total | keys/s | per key | p50 | p99 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    seed_row(&mut md, &r.seed.in_process);
    seed_row(&mut md, &r.seed.daemon_disk);
    if let Some(t) = &r.seed.daemon_tmpfs {
        seed_row(&mut md, t);
    }
    seed_row(&mut md, &r.seed.provision);
    for run in [&r.seed.provision_tmpfs, &r.seed.provision_tmpfs_small]
        .into_iter()
        .flatten()
    {
        seed_row(&mut md, run);
    }
    let _ = writeln!(
        md,
        "\n`oathkey provision` does more per key than `tokens.create`: it lists the keys to find \
         the next unseeded one (`keys.list` with {} keys takes {}), lists that key's tokens, \
         claims and releases the key, reads its info, appends the row to the Azure CSV (which \
         re-reads, checks and rewrites the whole file, fsynced) and marks the seed exported in \
         the ledger (fsynced).\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(r.seed.keys_list),
    );

    let _ = writeln!(md, "## How it was measured\n");
    let _ = writeln!(
        md,
        "`scripts/bench` installs oathtool if it is missing, builds the release binaries and \
         the benchmark program (`cargo bench -p oathkeyd --bench oathkey-bench`: \
         daemon/benches/bench/, a plain program without a benchmark framework: the measuring \
         in `measure/`, this report in `report.rs`) and runs it; \
         it writes this file. \"Daemon CPU per request\" is the user and system time of the \
         tokio and key-actor threads (`/proc/self/task`, 10 ms ticks) over the requests \
         answered; the actor threads also run the in-process virtual key. Percentiles are \
         nearest-rank over every sample of a run; \"median\" is p50. Latency is measured by the \
         client from sending the request to decoding the answer. Throughput counts the \
         requests answered inside the measurement window. Daemons run with `--user --no-hid \
         --dbus off` on a private socket and state directory under the temporary directory \
         (except the seeding rows \"on tmpfs\", under /dev/shm); the daemon's log level is its \
         default (`info`)."
    );
    md
}
