//! oathkey-entra against a mock Graph and login server on 127.0.0.1 (nothing here touches the
//! internet). Time is a `ManualClock`: retries, polling and the activation limiter wait on it,
//! so no test sleeps for real or asserts wall-clock times.

mod graph;
mod limits;
mod secrets;
mod signin;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use oathkey_entra::{
    AccessToken, Endpoints, GraphClient, Http, Login, ManualClock, NewToken, RetryPolicy,
    SecretKey, VerificationCode,
};

use oathkey_testkit::mock::{self, Mock};

/// Seeds the tests create tokens with (Base32; 160 bits).
pub const SEED_A: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const SEED_B: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// Every log line of every test in this binary (a global subscriber: a thread-local one
/// misses callsites that another test's thread registered first).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    });
}

pub fn captured_logs() -> String {
    let buf = LOGS
        .get()
        .expect("capture installed")
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&buf).into_owned()
}

#[derive(Debug)]
pub struct Env {
    pub mock: Mock,
    pub clock: Arc<ManualClock>,
    pub endpoints: Endpoints,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        capture_logs();
        let mock = Mock::start();
        let endpoints = Endpoints::new(&mock.base, &format!("{}/login", mock.base)).expect("ok");
        Env {
            mock,
            clock: Arc::new(ManualClock::new(1_700_000_000)),
            endpoints,
        }
    }

    pub fn http(&self) -> Http {
        Http::new(self.clock.clone(), RetryPolicy::default())
    }

    pub fn graph(&self) -> GraphClient {
        self.graph_with(mock::GOOD_TOKEN)
    }

    pub fn graph_with(&self, token: &str) -> GraphClient {
        GraphClient::new(self.endpoints.clone(), self.http(), AccessToken::new(token))
    }

    pub fn login(&self) -> Login {
        Login::new(
            self.endpoints.clone(),
            self.http(),
            mock::TENANT,
            mock::CLIENT_ID,
        )
    }

    /// The code a key holding `seed` shows at the mock's time (totp-rs, RFC 6238).
    pub fn code(&self, seed: &str) -> VerificationCode {
        let secret = data_encoding::BASE32_NOPAD
            .decode(seed.as_bytes())
            .expect("base32");
        let time = self.mock.state().totp_time;
        VerificationCode::new(mock::reference_code(&secret, 30, false, time))
    }
}

pub fn new_token(serial: &str, seed: &str, user: Option<&str>) -> NewToken {
    NewToken {
        serial_number: serial.into(),
        manufacturer: "Nitrokey".into(),
        model: "NK3".into(),
        secret_key: SecretKey::new(seed),
        time_interval_in_seconds: 30,
        hash_function: None,
        display_name: Some(format!("Token {serial}")),
        assign_to: user.map(str::to_owned),
    }
}
