//! A mock of Microsoft Graph's beta hardware OATH API and of the identity platform's v2.0
//! token endpoints, on 127.0.0.1, implementing the documented contract: paths, bodies,
//! statuses (201 on create with `secretKey` null, 204 on activate), Graph error bodies,
//! paging with `@odata.nextLink`, 429 with `Retry-After`, five methods per user, and
//! activation codes checked against the seed with totp-rs (RFC 6238), independent of the
//! code under test. Shared by `oathkey-entra`'s tests (in-process, on a manual clock) and the
//! CLI's `oathkey entra` tests (a real process: [`State::live_clock`] checks codes at the
//! real time, as a key shows them).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use tiny_http::{Header, Response, Server};

/// The bearer token the mock accepts.
pub const GOOD_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJub25jZSI6Im1vY2stYWNjZXNzLXRva2VuLTEi";
/// A bearer token the mock treats as expired.
pub const EXPIRED_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJub25jZSI6ImV4cGlyZWQtdG9rZW4tMDAwMSJ9";
/// The tenant and app the login mock knows.
pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "client~secret~value~Zq8Q~abcdefghijklmnop";
pub const DEVICE_CODE: &str = "DAQABAAEAAAD-mock-device-code-secret-value-xyz";
pub const REFRESH_TOKEN: &str = "0.AAAA-mock-refresh-token-secret-value-0001";
pub const FRESH_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJub25jZSI6InJlZnJlc2hlZC10b2tlbi0yIn0";

/// `x5t#S256` of oathkey-entra's tests/entra/fixtures/app-cert.pem, computed with OpenSSL.
pub const CERT_THUMBPRINT: &str = "zJUsg451Ngz_Aujt3YhIJ76tHafaOOWcIZGjbYT08yQ";
/// oathkey-entra's tests/entra/fixtures/app-key.pem's public key (PKCS#1 DER), exported
/// with OpenSSL.
const APP_PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/entra-app-pub-pkcs1.der");

/// A token in the mock's inventory.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub serial: String,
    pub secret: Vec<u8>,
    pub period: u64,
    pub sha256: bool,
    pub status: &'static str,
    pub assigned_to: Option<String>,
    pub manufacturer: String,
    pub model: String,
    pub display_name: Option<String>,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// The mock's state, open to tests.
#[derive(Debug, Default)]
pub struct State {
    /// Users by object id, with their UPN.
    pub users: BTreeMap<String, String>,
    pub devices: BTreeMap<String, Device>,
    pub next_id: u32,
    /// Items per page in list answers.
    pub page_size: usize,
    /// Statuses to answer before handling the next requests: (status, Retry-After).
    pub throttle: VecDeque<(u16, Option<&'static str>)>,
    /// Answer every Graph call with 403.
    pub forbidden: bool,
    /// The Unix time the mock checks activation codes at (unless `live_clock`).
    pub totp_time: u64,
    /// Check activation codes at the real time instead of `totp_time`: for a test whose codes
    /// come from a key in another process, which reads its own clock.
    pub live_clock: bool,
    /// Device-code polls to answer `authorization_pending` before success.
    pub pending_polls: u32,
    /// Answer one poll with `slow_down` after the pending ones.
    pub slow_down: bool,
    /// Answer device-code polls with this error instead (declined, expired).
    pub poll_error: Option<&'static str>,
    /// A nextLink to a foreign host, to check the client refuses it.
    pub foreign_next_link: bool,
    pub seen: Vec<Seen>,
    /// Decoded header and claims of each client assertion that verified.
    pub assertions: Vec<(Value, Value)>,
}

impl State {
    fn user(&self, key: &str) -> Option<String> {
        self.users
            .iter()
            .find(|(id, upn)| id.as_str() == key || upn.eq_ignore_ascii_case(key))
            .map(|(id, _)| id.clone())
    }

    fn methods_of(&self, user: &str) -> usize {
        self.devices
            .values()
            .filter(|d| d.assigned_to.as_deref() == Some(user))
            .count()
    }
}

/// The running mock; stops when dropped.
pub struct Mock {
    pub base: String,
    state: Arc<Mutex<State>>,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

impl Mock {
    pub fn start() -> Mock {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let base = format!("http://127.0.0.1:{port}");
        let mut st = State {
            page_size: 100,
            totp_time: 1_700_000_000,
            ..State::default()
        };
        st.users.insert("u-ann".into(), "ann@contoso.com".into());
        st.users.insert("u-bob".into(), "bob@contoso.com".into());
        let state = Arc::new(Mutex::new(st));
        let (s2, st2, b2) = (server.clone(), state.clone(), base.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s2.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let bearer = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_owned());
                let method = req.method().as_str().to_owned();
                let url = req.url().to_owned();
                let (status, reply, extra) = {
                    let mut st = st2.lock().unwrap_or_else(|e| e.into_inner());
                    st.seen.push(Seen {
                        method: method.clone(),
                        path: url.clone(),
                        body: body.clone(),
                    });
                    handle(&mut st, &b2, &method, &url, bearer.as_deref(), &body)
                };
                let json = Header::from_bytes("Content-Type", "application/json").expect("h");
                let mut resp = match reply {
                    Some(v) => Response::from_string(v.to_string()).with_header(json),
                    None => Response::from_string(String::new()),
                }
                .with_status_code(status)
                .with_header(Header::from_bytes("request-id", "mock-request-id-42").expect("h"));
                if let Some(v) = extra {
                    resp = resp.with_header(Header::from_bytes("Retry-After", v).expect("h"));
                }
                let _ = req.respond(resp);
            }
        });
        Mock {
            base,
            state,
            server,
            thread: Some(thread),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Reply = (u16, Option<Value>, Option<&'static str>);

fn graph_error(status: u16, code: &str, message: &str) -> Reply {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-01-01T00:00:00", "request-id": "inner-request-id-7",
        "client-request-id": "c-1"}}});
    (status, Some(body), None)
}

fn oauth_error(code: &str) -> Reply {
    (
        400,
        Some(json!({"error": code, "error_description": format!("AADSTS: {code}")})),
        None,
    )
}

fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id, "serialNumber": d.serial, "manufacturer": d.manufacturer, "model": d.model,
        "secretKey": null, "timeIntervalInSeconds": d.period,
        "hashFunction": if d.sha256 { "hmacsha256" } else { "hmacsha1" },
        "status": d.status, "displayName": d.display_name,
        "assignedTo": d.assigned_to.as_ref().map(|u| json!({"id": u, "displayName": u})),
    })
}

/// RFC 6238 by totp-rs: the reference the mock checks codes with.
pub fn reference_code(secret: &[u8], period: u64, sha256: bool, time: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(if sha256 {
            totp_rs::Algorithm::SHA256
        } else {
            totp_rs::Algorithm::SHA1
        })
        .with_digits(6)
        .with_step_duration(period)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(time)
        .to_string()
}

fn handle(
    st: &mut State,
    base: &str,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: &str,
) -> Reply {
    if let Some((status, after)) = st.throttle.pop_front() {
        let (s, b, _) = graph_error(status, "TooManyRequests", "Too many requests");
        return (s, b, after);
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path.contains("/oauth2/v2.0/") {
        return login(st, base, path, body);
    }
    match bearer {
        Some(b) if b == format!("Bearer {GOOD_TOKEN}") || b == format!("Bearer {FRESH_TOKEN}") => {}
        Some(b) if b == format!("Bearer {EXPIRED_TOKEN}") => {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            );
        }
        _ => return graph_error(401, "InvalidAuthenticationToken", "Access token is empty."),
    }
    if st.forbidden {
        return graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (
            "POST",
            [
                "beta",
                "directory",
                "authenticationMethodDevices",
                "hardwareOathDevices",
            ],
        ) => match create(st, &body) {
            Ok(d) => (201, Some(device_json(&d)), None),
            Err(e) => e,
        },
        (
            "PATCH",
            [
                "beta",
                "directory",
                "authenticationMethodDevices",
                "hardwareOathDevices",
            ],
        ) => {
            if body["@context"] != "#$delta" {
                return graph_error(400, "BadRequest", "expected @context #$delta");
            }
            let mut out = Vec::new();
            for item in body["value"].as_array().cloned().unwrap_or_default() {
                if item["@contentId"].as_str().is_none() {
                    return graph_error(400, "BadRequest", "missing @contentId");
                }
                match create(st, &item) {
                    Ok(d) => out.push(device_json(&d)),
                    Err(e) => return e,
                }
            }
            (200, Some(json!({"value": out})), None)
        }
        (
            "GET",
            [
                "beta",
                "directory",
                "authenticationMethodDevices",
                "hardwareOathDevices",
            ],
        ) => {
            let skip: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("$skiptoken="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let all: Vec<Value> = st.devices.values().map(device_json).collect();
            let page: Vec<Value> = all.iter().skip(skip).take(st.page_size).cloned().collect();
            let mut reply = json!({"@odata.context": "mock", "value": page});
            if skip + st.page_size < all.len() {
                let host = if st.foreign_next_link {
                    "https://evil.example"
                } else {
                    base
                };
                reply["@odata.nextLink"] = json!(format!(
                    "{host}/beta/directory/authenticationMethodDevices/hardwareOathDevices?$skiptoken={}",
                    skip + st.page_size
                ));
            }
            (200, Some(reply), None)
        }
        (
            "GET",
            [
                "beta",
                "directory",
                "authenticationMethodDevices",
                "hardwareOathDevices",
                id,
            ],
        ) => match st.devices.get(*id) {
            Some(d) => (200, Some(device_json(d)), None),
            None => graph_error(404, "Request_ResourceNotFound", "Resource not found."),
        },
        (
            "DELETE",
            [
                "beta",
                "directory",
                "authenticationMethodDevices",
                "hardwareOathDevices",
                id,
            ],
        ) => match st.devices.get(*id) {
            None => graph_error(404, "Request_ResourceNotFound", "Resource not found."),
            Some(d) if d.assigned_to.is_some() => {
                graph_error(400, "BadRequest", "Token is assigned; unassign it first.")
            }
            Some(_) => {
                st.devices.remove(*id);
                (204, None, None)
            }
        },
        (
            _,
            [
                "beta",
                "users",
                user,
                "authentication",
                "hardwareOathMethods",
                rest @ ..,
            ],
        ) => {
            let user = url_decode(user);
            let Some(uid) = st.user(&user) else {
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    &format!("User '{user}' does not exist."),
                );
            };
            user_methods(st, method, &uid, rest, &body)
        }
        _ => graph_error(400, "BadRequest", &format!("no such route {method} {path}")),
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn create(st: &mut State, body: &Value) -> Result<Device, Reply> {
    let serial = body["serialNumber"].as_str().unwrap_or_default().to_owned();
    let secret_text = body["secretKey"].as_str().unwrap_or_default();
    let Ok(secret) = data_encoding::BASE32_NOPAD.decode(secret_text.as_bytes()) else {
        return Err(graph_error(400, "BadRequest", "secretKey is not Base32."));
    };
    let period = match &body["timeIntervalInSeconds"] {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    };
    if serial.is_empty() || !(period == 30 || period == 60) {
        return Err(graph_error(
            400,
            "BadRequest",
            "serialNumber and timeIntervalInSeconds (30 or 60) are required.",
        ));
    }
    if st.devices.values().any(|d| d.serial == serial) {
        return Err(graph_error(
            409,
            "Conflict",
            &format!("A token with serial number {serial} already exists."),
        ));
    }
    let assigned_to = match body["assignTo"]["id"].as_str() {
        None => None,
        Some(u) => match st.user(u) {
            Some(id) if st.methods_of(&id) >= 5 => {
                return Err(graph_error(
                    400,
                    "BadRequest",
                    "The user already has 5 hardware OATH methods.",
                ));
            }
            Some(id) => Some(id),
            None => {
                return Err(graph_error(
                    404,
                    "Request_ResourceNotFound",
                    "User does not exist.",
                ));
            }
        },
    };
    st.next_id += 1;
    let d = Device {
        id: format!("dev-{:04}", st.next_id),
        serial,
        secret,
        period,
        sha256: body["hashFunction"] == "hmacsha256",
        status: if assigned_to.is_some() {
            "assigned"
        } else {
            "available"
        },
        assigned_to,
        manufacturer: body["manufacturer"].as_str().unwrap_or_default().into(),
        model: body["model"].as_str().unwrap_or_default().into(),
        display_name: body["displayName"].as_str().map(str::to_owned),
    };
    st.devices.insert(d.id.clone(), d.clone());
    Ok(d)
}

/// Accepts the code for the mock's time, one step before or after (Entra allows about a
/// minute of slack for 30-second tokens).
fn check_code(st: &State, d: &Device, code: &str) -> bool {
    let now = if st.live_clock {
        crate::totp::unix_now()
    } else {
        st.totp_time
    };
    [0i64, -1, 1].iter().any(|k| {
        let t = (now as i64 + k * d.period as i64) as u64;
        reference_code(&d.secret, d.period, d.sha256, t) == code
    })
}

fn activate(st: &mut State, uid: &str, device: &str, code: &str) -> Reply {
    let Some(d) = st.devices.get(device).cloned() else {
        return graph_error(404, "Request_ResourceNotFound", "Token not found.");
    };
    if d.assigned_to.as_deref() != Some(uid) {
        return graph_error(400, "BadRequest", "Token is not assigned to this user.");
    }
    if !check_code(st, &d, code) {
        if let Some(dm) = st.devices.get_mut(device) {
            dm.status = "failedActivation";
        }
        // Echoes the code, as a careless server might: the client must scrub it.
        return graph_error(
            400,
            "BadRequest",
            &format!("Verification code {code} is invalid."),
        );
    }
    if let Some(dm) = st.devices.get_mut(device) {
        dm.status = "activated";
    }
    (204, None, None)
}

fn assign(st: &mut State, uid: &str, device: &str) -> Result<(), Reply> {
    let Some(d) = st.devices.get(device) else {
        return Err(graph_error(
            404,
            "Request_ResourceNotFound",
            "Token not found.",
        ));
    };
    if d.assigned_to.as_deref() == Some(uid) {
        return Ok(());
    }
    if d.assigned_to.is_some() {
        return Err(graph_error(
            409,
            "Conflict",
            "Token is assigned to another user.",
        ));
    }
    if st.methods_of(uid) >= 5 {
        return Err(graph_error(
            400,
            "BadRequest",
            "The user already has 5 hardware OATH methods.",
        ));
    }
    if let Some(d) = st.devices.get_mut(device) {
        d.assigned_to = Some(uid.to_owned());
        d.status = "assigned";
    }
    Ok(())
}

fn user_methods(st: &mut State, method: &str, uid: &str, rest: &[&str], body: &Value) -> Reply {
    let code = body["verificationCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match (method, rest) {
        ("GET", []) => {
            let value: Vec<Value> = st
                .devices
                .values()
                .filter(|d| d.assigned_to.as_deref() == Some(uid))
                .map(|d| json!({"id": d.id, "displayName": d.display_name, "device": device_json(d)}))
                .collect();
            (200, Some(json!({"value": value})), None)
        }
        ("POST", []) => {
            let Some(device) = body["device"]["id"].as_str() else {
                return graph_error(400, "BadRequest", "device.id is required.");
            };
            match assign(st, uid, device) {
                Ok(()) => (201, Some(json!({"id": device})), None),
                Err(e) => e,
            }
        }
        ("POST", ["assignAndActivate"]) => {
            let device = body["device"]["id"].as_str().unwrap_or_default().to_owned();
            if let Err(e) = assign(st, uid, &device) {
                return e;
            }
            activate(st, uid, &device, &code)
        }
        ("POST", ["assignAndActivateBySerialNumber"]) => {
            let serial = body["serialNumber"].as_str().unwrap_or_default();
            let Some(device) = st
                .devices
                .values()
                .find(|d| d.serial == serial)
                .map(|d| d.id.clone())
            else {
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    "No token with that serial number.",
                );
            };
            if let Err(e) = assign(st, uid, &device) {
                return e;
            }
            activate(st, uid, &device, &code)
        }
        ("POST", [id, "activate"]) => activate(st, uid, id, &code),
        ("DELETE", [id]) => match st.devices.get_mut(*id) {
            Some(d) if d.assigned_to.as_deref() == Some(uid) => {
                d.assigned_to = None;
                d.status = "available";
                (204, None, None)
            }
            _ => graph_error(404, "Request_ResourceNotFound", "Method not found."),
        },
        _ => graph_error(400, "BadRequest", "no such route"),
    }
}

fn form(body: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn token_reply(access: &str, refresh: bool) -> Reply {
    let mut v = json!({"token_type": "Bearer", "expires_in": 3599, "access_token": access,
        "scope": "https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod"});
    if refresh {
        v["refresh_token"] = json!(REFRESH_TOKEN);
    }
    (200, Some(v), None)
}

fn login(st: &mut State, base: &str, path: &str, body: &str) -> Reply {
    let f = form(body);
    let tenant_ok = path.contains(&format!("/{TENANT}/oauth2/v2.0/"));
    if !tenant_ok || f.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error("invalid_client");
    }
    if path.ends_with("/devicecode") {
        if f.get("scope").is_none_or(|s| !s.contains("offline_access")) {
            return oauth_error("invalid_scope");
        }
        return (
            200,
            Some(json!({"user_code": "ABCD-EFGH", "device_code": DEVICE_CODE,
            "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900,
            "interval": 5, "message": "To sign in, enter the code ABCD-EFGH."})),
            None,
        );
    }
    match f.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            if f.get("device_code").map(String::as_str) != Some(DEVICE_CODE) {
                return oauth_error("bad_verification_code");
            }
            if let Some(e) = st.poll_error {
                return oauth_error(e);
            }
            if st.pending_polls > 0 {
                st.pending_polls -= 1;
                return oauth_error("authorization_pending");
            }
            if st.slow_down {
                st.slow_down = false;
                return oauth_error("slow_down");
            }
            token_reply(GOOD_TOKEN, true)
        }
        Some("client_credentials") if f.contains_key("client_assertion") => {
            let aud = format!("{base}/login/{TENANT}/oauth2/v2.0/token");
            match check_assertion(&f, &aud) {
                Ok(pair) => {
                    st.assertions.push(pair);
                    token_reply(GOOD_TOKEN, false)
                }
                Err(why) => (
                    401,
                    Some(json!({"error": "invalid_client", "error_description": why})),
                    None,
                ),
            }
        }
        Some("client_credentials") => {
            if f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
                || f.get("scope").map(String::as_str)
                    != Some("https://graph.microsoft.com/.default")
            {
                return (
                    401,
                    Some(
                        json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
                    ),
                    None,
                );
            }
            token_reply(GOOD_TOKEN, false)
        }
        Some("refresh_token") => {
            if f.get("refresh_token").map(String::as_str) != Some(REFRESH_TOKEN) {
                return oauth_error("invalid_grant");
            }
            token_reply(FRESH_TOKEN, true)
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

/// Checks a client assertion as Microsoft's certificate-credentials page describes it: PS256
/// over header.claims with the app's public key, `x5t#S256` of the registered certificate,
/// `aud` the token endpoint, `iss` = `sub` = client id, a `jti`, and a short lifetime.
fn check_assertion(f: &BTreeMap<String, String>, aud: &str) -> Result<(Value, Value), String> {
    use data_encoding::BASE64URL_NOPAD;
    if f.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        || f.get("scope").map(String::as_str) != Some("https://graph.microsoft.com/.default")
    {
        return Err("wrong client_assertion_type or scope".into());
    }
    let jwt = f.get("client_assertion").ok_or("no assertion")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = BASE64URL_NOPAD
            .decode(p.as_bytes())
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let (header, claims) = (decode(h)?, decode(c)?);
    let signature = BASE64URL_NOPAD
        .decode(sig.as_bytes())
        .map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PSS_2048_8192_SHA256,
        APP_PUBLIC_KEY,
    )
    .verify(format!("{h}.{c}").as_bytes(), &signature)
    .map_err(|_| "AADSTS700027: signature verification failed".to_string())?;
    let ok = header["alg"] == "PS256"
        && header["typ"] == "JWT"
        && header["x5t#S256"] == CERT_THUMBPRINT
        && claims["aud"] == aud
        && claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && claims["jti"].as_str().is_some_and(|j| j.len() == 36)
        && claims["iat"] == claims["nbf"]
        && claims["exp"]
            .as_u64()
            .zip(claims["nbf"].as_u64())
            .is_some_and(|(e, n)| e > n && e - n <= 600);
    if !ok {
        return Err(format!(
            "assertion header or claims refused: {header} {claims}"
        ));
    }
    Ok((header, claims))
}
