//! `oathkey entra` against the mock Graph and sign-in servers (`oathkey_testkit::mock`, on
//! 127.0.0.1) and a real daemon with a virtual key: sign-in with a client secret file, upload
//! with activation by codes read from the key (the mock checks them against the seed with
//! totp-rs at the real time), reruns, dry runs, an unknown user, status and sign-out. The
//! cache and config directories are the test's own.

use std::path::{Path, PathBuf};
use std::process::Output;

use oathkey_testkit::mock::{self, Device, Mock};
use oathkey_testkit::needles::{Needles, assert_no_secret};
use oathkey_testkit::{Daemon, Ran, assert_exit, stderr, stdout};
use serde_json::Value;
use tempfile::TempDir;

/// A daemon with a virtual key, a mock tenant, and private XDG directories with an
/// `entra.toml` naming the mock's tenant and app.
struct Setup {
    d: Daemon,
    mock: Mock,
    home: TempDir,
    /// Every seed the test made, as the sweep looks for it.
    secrets: Vec<Needles>,
}

impl Setup {
    fn new() -> Setup {
        let d = Daemon::builder()
            .admin_self()
            .args(["--emulate", "1"])
            .start();
        let mock = Mock::start();
        {
            let mut st = mock.state();
            st.live_clock = true;
            st.users
                .insert("u-carol".into(), "carol@contoso.com".into());
        }
        let home = tempfile::tempdir().expect("tempdir");
        let config = home.path().join("config/oathkey");
        std::fs::create_dir_all(&config).expect("config dir");
        std::fs::write(
            config.join("entra.toml"),
            format!(
                "tenant = \"{}\"\nclient_id = \"{}\"\n",
                mock::TENANT,
                mock::CLIENT_ID
            ),
        )
        .expect("entra.toml");
        std::fs::write(
            home.path().join("secret"),
            format!("{}\n", mock::CLIENT_SECRET),
        )
        .expect("secret file");
        let secrets = vec![
            Needles::text("access token", mock::GOOD_TOKEN),
            Needles::text("client secret", mock::CLIENT_SECRET),
        ];
        Setup {
            d,
            mock,
            home,
            secrets,
        }
    }

    fn cache_file(&self) -> PathBuf {
        self.home.path().join("cache/oathkey/entra-token.json")
    }

    fn path(&self, name: &str) -> String {
        self.home.path().join(name).display().to_string()
    }

    /// `oathkey entra ARGS` against the daemon and the mock.
    fn entra(&self, args: &[&str]) -> Ran {
        let mut all = vec!["entra"];
        all.extend_from_slice(args);
        let mut cmd = self.d.cli_command(&all);
        cmd.env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("OATHKEY_GRAPH_URL", &self.mock.base)
            .env("OATHKEY_LOGIN_URL", format!("{}/login", self.mock.base))
            .env("RUST_LOG", "trace")
            .stdin(std::process::Stdio::null());
        Ran::run(&mut cmd)
    }

    fn login(&self) {
        let out = self.entra(&["login", "--client-secret-file", &self.path("secret")]);
        assert_exit(&out, 0);
        self.sweep("login", &out);
        assert!(self.cache_file().exists());
    }

    /// Seeds a token on the virtual key for `user`; keeps its seed for the sweep.
    fn seed(&mut self, user: &str, serial: &str) {
        let out = self
            .d
            .cli(&["token", "new", "--user", user, "--serial", serial]);
        assert_exit(&out, 0);
        let secret = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("Secret:"))
            .map(|s| s.trim().to_owned())
            .expect("token new prints the secret");
        self.secrets.push(Needles::base32(serial, &secret));
    }

    /// No seed, access token or client secret in what a command printed.
    fn sweep(&self, what: &str, out: &Output) {
        assert_no_secret(&self.secrets, &format!("stdout of {what}"), &stdout(out));
        assert_no_secret(&self.secrets, &format!("stderr of {what}"), &stderr(out));
    }

    fn devices(&self) -> Vec<Device> {
        self.mock.state().devices.values().cloned().collect()
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn report(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("report")
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// Sign in with a secret file, upload three tokens with activation, rerun, status, sign out.
#[test]
fn upload_activates_with_codes_from_the_key_and_reruns_create_nothing() {
    let mut s = Setup::new();
    s.seed("ann@contoso.com", "E1");
    s.seed("bob@contoso.com", "E2");
    s.seed("carol@contoso.com", "E3");
    s.login();

    let report_path = s.home.path().join("report.csv");
    let out = s.entra(&["upload", "--activate", "--report", &s.path("report.csv")]);
    assert_exit(&out, 0);
    s.sweep("upload --activate", &out);
    let devices = s.devices();
    assert_eq!(devices.len(), 3, "{devices:?}");
    for (serial, user) in [("E1", "u-ann"), ("E2", "u-bob"), ("E3", "u-carol")] {
        let dev = devices
            .iter()
            .find(|d| d.serial == serial)
            .unwrap_or_else(|| panic!("{serial} in the mock"));
        assert_eq!(dev.assigned_to.as_deref(), Some(user), "{dev:?}");
        // The mock sets `activated` only for a code it checked against the seed.
        assert_eq!(dev.status, "activated", "{dev:?}");
    }
    let rows = report(&report_path);
    assert_eq!(rows[0], ["serial", "upn", "action", "result", "error"]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[2] == "create+assign+activate" && r[3] == "done"),
        "{rows:?}"
    );
    let text = std::fs::read_to_string(&report_path).expect("report");
    assert_no_secret(&s.secrets, "the report", &text);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&report_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A rerun: nothing new in the tenant.
    let creates_before = s
        .mock
        .state()
        .seen
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/hardwareOathDevices"))
        .count();
    let again = s.entra(&["upload", "--activate", "--json"]);
    assert_exit(&again, 0);
    s.sweep("upload rerun", &again);
    assert_eq!(s.devices().len(), 3);
    let creates_after = s
        .mock
        .state()
        .seen
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/hardwareOathDevices"))
        .count();
    assert_eq!(creates_before, creates_after);
    let v = json(&again);
    assert!(
        v["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["result"] == "unchanged"),
        "{v}"
    );

    // A token only Entra has, then status.
    {
        let mut st = s.mock.state();
        let mut other = st.devices.values().next().expect("a device").clone();
        other.id = "dev-foreign".into();
        other.serial = "X9".into();
        other.assigned_to = None;
        other.status = "available";
        st.devices.insert(other.id.clone(), other);
    }
    let status = s.entra(&["status", "--json"]);
    assert_exit(&status, 0);
    s.sweep("status", &status);
    let v = json(&status);
    let tokens = v["tokens"].as_array().expect("tokens");
    let e1 = tokens.iter().find(|t| t["serial"] == "E1").expect("E1");
    assert_eq!(e1["status"], "activated");
    assert_eq!(e1["in_entra"], true);
    assert_eq!(e1["advice"], "nothing to do");
    let x9 = tokens.iter().find(|t| t["serial"] == "X9").expect("X9");
    assert_eq!(x9["in_ledger"], false);
    assert!(
        x9["advice"]
            .as_str()
            .expect("advice")
            .contains("not in this ledger"),
        "{x9}"
    );
    let text = s.entra(&["status"]);
    assert_exit(&text, 0);
    assert!(stdout(&text).contains("X9"), "{}", stdout(&text));

    // The cache holds the token (that is its job); logout deletes it.
    assert!(s.cache_file().exists());
    let out = s.entra(&["logout"]);
    assert_exit(&out, 0);
    assert!(!s.cache_file().exists());
    let after = s.entra(&["status"]);
    assert_exit(&after, 6);
    assert!(
        stderr(&after).contains("oathkey entra login"),
        "{}",
        stderr(&after)
    );
}

/// `--dry-run` reads and plans, and changes nothing in the tenant.
#[test]
fn dry_run_changes_nothing() {
    let mut s = Setup::new();
    s.seed("ann@contoso.com", "D1");
    s.seed("bob@contoso.com", "D2");
    s.login();
    let out = s.entra(&["upload", "--activate", "--dry-run", "--json"]);
    assert_exit(&out, 0);
    s.sweep("upload --dry-run", &out);
    assert!(s.devices().is_empty());
    assert!(
        s.mock
            .state()
            .seen
            .iter()
            .filter(|r| !r.path.contains("/oauth2/"))
            .all(|r| r.method == "GET"),
        "a dry run only reads"
    );
    let v = json(&out);
    let tokens = v["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        assert_eq!(t["action"], "create+assign+activate", "{t}");
        assert_eq!(t["result"], "planned", "{t}");
    }
}

/// A user the tenant does not have: that token fails with the reason, the others are done, and
/// the exit code says some failed.
#[test]
fn an_unknown_user_fails_in_the_report_and_the_exit_code() {
    let mut s = Setup::new();
    s.seed("ann@contoso.com", "U1");
    s.seed("nobody@contoso.com", "U2");
    s.login();
    let report_path = s.home.path().join("r.csv");
    let out = s.entra(&["upload", "--report", &s.path("r.csv")]);
    assert_exit(&out, 12);
    s.sweep("upload with an unknown user", &out);
    assert!(
        stderr(&out).contains("1 of 2 token(s) failed"),
        "{}",
        stderr(&out)
    );
    let rows = report(&report_path);
    let u2 = rows.iter().find(|r| r[0] == "U2").expect("U2 row");
    assert_eq!(u2[1], "nobody@contoso.com");
    assert_eq!(u2[3], "failed");
    assert!(u2[4..].join(",").contains("not found"), "{u2:?}");
    let u1 = rows.iter().find(|r| r[0] == "U1").expect("U1 row");
    assert_eq!((u1[2].as_str(), u1[3].as_str()), ("create+assign", "done"));
    // Nothing was created for the unknown user.
    let devices = s.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].serial, "U1");
    assert_eq!(devices[0].assigned_to.as_deref(), Some("u-ann"));
    let text = std::fs::read_to_string(&report_path).expect("report");
    assert_no_secret(&s.secrets, "the report", &text);
}
