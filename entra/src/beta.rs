//! Graph's beta hardware OATH API: every path and body shape in one file, because the beta
//! may change. Paths and shapes follow Microsoft's pages for
//! `hardwareOathTokenAuthenticationMethodDevice` (the token in the directory's inventory) and
//! `hardwareOathAuthenticationMethod` (the token as a user's sign-in method).
//!
//! The life of a token: [`GraphClient::create_token`] (optionally assigned at once), then
//! [`GraphClient::assign`], [`GraphClient::activate`] with a code read from the key (or one of
//! the one-call variants), [`GraphClient::get_token`] to confirm `status: activated`; to remove
//! it, [`GraphClient::unassign`] then [`GraphClient::delete_token`].

use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::endpoints::Endpoints;
use crate::error::Error;
use crate::http::{Http, Request, Response};
use crate::limiter::ActivationLimiter;
use crate::secret::{AccessToken, SecretKey, VerificationCode};

/// The inventory collection.
const DEVICES: &str = "beta/directory/authenticationMethodDevices/hardwareOathDevices";
/// The most pages [`GraphClient::list_tokens`] follows: a loop guard, far above any tenant.
const MAX_PAGES: usize = 10_000;

/// The token's hash (`hardwareOathTokenHashFunction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HashFunction {
    /// HMAC-SHA-1, Graph's default.
    Hmacsha1,
    /// HMAC-SHA-256.
    Hmacsha256,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

/// A token's state in Entra (`hardwareOathTokenStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum TokenStatus {
    /// In the inventory, not assigned.
    Available,
    /// Assigned to a user, not yet activated.
    Assigned,
    /// Usable for sign-in.
    Activated,
    /// The last activation attempt failed.
    FailedActivation,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

/// A user reference (`identity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The user's object id.
    #[serde(default)]
    pub id: Option<String>,
    /// The user's display name, when Graph gives it.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A hardware OATH token as Graph returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareOathToken {
    /// Graph's id for the token (the `device.id` of the assign calls).
    #[serde(default)]
    pub id: Option<String>,
    /// The serial printed on (or stored in) the token.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Manufacturer name.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
    /// The seed (Base32). Graph always returns it as null; kept so a response that ever did
    /// carry it would still be held in a redacting type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretKey>,
    /// 30 or 60. Microsoft's examples send it as a string, the schema says Int32: both read.
    #[serde(default, deserialize_with = "int_or_string")]
    pub time_interval_in_seconds: Option<u32>,
    /// The hash.
    #[serde(default)]
    pub hash_function: Option<HashFunction>,
    /// Available, assigned, activated or failed activation.
    #[serde(default)]
    pub status: Option<TokenStatus>,
    /// Who the token is assigned to.
    #[serde(default)]
    pub assigned_to: Option<Identity>,
    /// A name for the token.
    #[serde(default)]
    pub display_name: Option<String>,
}

fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(u32),
        Text(String),
    }
    Ok(match Option::<IntOrString>::deserialize(d)? {
        None => None,
        Some(IntOrString::Int(n)) => Some(n),
        Some(IntOrString::Text(t)) => Some(t.trim().parse().map_err(serde::de::Error::custom)?),
    })
}

/// A token to create.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    /// The serial number (text: leading zeros matter).
    pub serial_number: String,
    /// Manufacturer name.
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// The seed, Base32.
    pub secret_key: SecretKey,
    /// 30 or 60.
    pub time_interval_in_seconds: u32,
    /// The hash; `None` leaves Graph's default (SHA-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_function: Option<HashFunction>,
    /// A name for the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Assign to this user (object id) in the same request.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "assign_to")]
    pub assign_to: Option<String>,
}

fn assign_to<S: serde::Serializer>(user: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match user {
        Some(id) => json!({ "id": id }).serialize(s),
        None => s.serialize_none(),
    }
}

/// A Graph collection page.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<HardwareOathToken>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// Graph, signed in, for hardware OATH tokens.
#[derive(Debug)]
pub struct GraphClient {
    endpoints: Endpoints,
    http: Http,
    token: AccessToken,
    limiter: Mutex<ActivationLimiter>,
}

impl GraphClient {
    /// A client that sends `token` to `endpoints.graph`.
    pub fn new(endpoints: Endpoints, http: Http, token: AccessToken) -> Self {
        GraphClient {
            endpoints,
            http,
            token,
            limiter: Mutex::new(ActivationLimiter::default()),
        }
    }

    /// Replaces the activation limiter (tests, or a tenant with its own limit).
    pub fn with_limiter(mut self, limiter: ActivationLimiter) -> Self {
        self.limiter = Mutex::new(limiter);
        self
    }

    /// Replaces the access token (after a refresh).
    pub fn set_token(&mut self, token: AccessToken) {
        self.token = token;
    }

    fn request(&self, method: &'static str, path: &str) -> Request<'_> {
        Request::new(method, self.endpoints.graph_url(path)).bearer(&self.token)
    }

    fn parse<T: serde::de::DeserializeOwned>(
        what: &'static str,
        resp: &Response,
    ) -> Result<T, Error> {
        serde_json::from_str(&resp.body).map_err(|e| Error::Decode {
            what,
            reason: e.to_string(),
        })
    }

    /// Waits for an activation slot (200 per 5 minutes).
    fn activation_slot(&self) {
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        limiter.acquire(self.http.clock().as_ref());
    }

    /// Turns the hardware OATH method on in the tenant's authentication methods policy
    /// (once per tenant; Microsoft says it can take up to an hour to apply).
    pub fn enable_hardware_oath(&self) -> Result<(), Error> {
        let path = "beta/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath";
        let body = json!({
            "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration",
            "state": "enabled",
        });
        self.http.send(&self.request("PATCH", path).json(&body)?)?;
        Ok(())
    }

    /// Creates one token (201), assigned to `token.assign_to` if set. The answer has the new
    /// `id` and `status`; its `secretKey` is null.
    pub fn create_token(&self, token: &NewToken) -> Result<HardwareOathToken, Error> {
        let req = self
            .request("POST", DEVICES)
            .json(token)?
            .secret(token.secret_key.expose());
        let resp = self.http.send(&req)?;
        Self::parse("create token", &resp)
    }

    /// Creates many tokens in one request (`PATCH` the collection with `@context: #$delta`),
    /// each with `@contentId` its 1-based position. Returns what Graph lists in its answer
    /// (may be empty: the documented answer is a bare success).
    pub fn create_tokens(&self, tokens: &[NewToken]) -> Result<Vec<HardwareOathToken>, Error> {
        let mut value = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            let mut item = serde_json::to_value(t).map_err(|e| Error::Decode {
                what: "bulk create",
                reason: e.to_string(),
            })?;
            if let Value::Object(map) = &mut item {
                map.insert("@contentId".into(), Value::String((i + 1).to_string()));
            }
            value.push(item);
        }
        let body = zeroize::Zeroizing::new(
            serde_json::to_string(&json!({ "@context": "#$delta", "value": value })).map_err(
                |e| Error::Decode {
                    what: "bulk create",
                    reason: e.to_string(),
                },
            )?,
        );
        drop(value);
        let mut req = self.request("PATCH", DEVICES);
        req.body = crate::http::Body::Json(body);
        for t in tokens {
            req = req.secret(t.secret_key.expose());
        }
        let resp = self.http.send(&req)?;
        if resp.body.trim().is_empty() {
            return Ok(Vec::new());
        }
        Ok(Self::parse::<Page>("bulk create", &resp)?.value)
    }

    /// Every token in the inventory, following `@odata.nextLink` page by page. A next link to
    /// any other origin than the Graph endpoint is refused: it would receive the token.
    pub fn list_tokens(&self) -> Result<Vec<HardwareOathToken>, Error> {
        let mut out = Vec::new();
        let mut url = self.endpoints.graph_url(DEVICES);
        for _ in 0..MAX_PAGES {
            let req = Request::new("GET", url).bearer(&self.token);
            let page: Page = Self::parse("list tokens", &self.http.send(&req)?)?;
            out.extend(page.value);
            match page.next_link {
                None => return Ok(out),
                Some(next) if self.endpoints.is_graph_origin(&next) => url = next,
                Some(next) => {
                    return Err(Error::Decode {
                        what: "list tokens",
                        reason: format!("@odata.nextLink leaves the Graph endpoint: {next}"),
                    });
                }
            }
        }
        Err(Error::Decode {
            what: "list tokens",
            reason: "too many pages".into(),
        })
    }

    /// One token, by Graph id (its status tells whether activation took).
    pub fn get_token(&self, id: &str) -> Result<HardwareOathToken, Error> {
        let resp = self
            .http
            .send(&self.request("GET", &format!("{DEVICES}/{}", seg(id))))?;
        Self::parse("get token", &resp)
    }

    /// Deletes a token from the inventory. Graph requires it to be unassigned first.
    pub fn delete_token(&self, id: &str) -> Result<(), Error> {
        self.http
            .send(&self.request("DELETE", &format!("{DEVICES}/{}", seg(id))))?;
        Ok(())
    }

    /// The hardware OATH methods of a user (object id or UPN).
    pub fn user_methods(&self, user: &str) -> Result<Vec<HardwareOathToken>, Error> {
        let resp = self.http.send(&self.request("GET", &methods(user)))?;
        let page: Value = Self::parse("list user methods", &resp)?;
        // A method is `{id, displayName, device: {...}}`; the device is what is listed.
        let mut out = Vec::new();
        for m in page
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let device = m.get("device").cloned().unwrap_or_else(|| m.clone());
            out.push(serde_json::from_value(device).map_err(|e| Error::Decode {
                what: "list user methods",
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Assigns a token to a user without activating it.
    pub fn assign(&self, user: &str, device_id: &str) -> Result<(), Error> {
        let body = json!({ "device": { "id": device_id } });
        self.http
            .send(&self.request("POST", &methods(user)).json(&body)?)?;
        Ok(())
    }

    /// Activates a token assigned to `user` with the code the token shows now (204).
    /// Waits for the activation limit first.
    pub fn activate(
        &self,
        user: &str,
        method_id: &str,
        code: &VerificationCode,
        display_name: Option<&str>,
    ) -> Result<(), Error> {
        let mut body = json!({ "verificationCode": code.expose() });
        if let Some(name) = display_name {
            body["displayName"] = Value::String(name.to_owned());
        }
        let path = format!("{}/{}/activate", methods(user), seg(method_id));
        self.send_activation(
            self.request("POST", &path)
                .json(&body)?
                .secret(code.expose()),
        )
    }

    /// Assigns and activates in one call, by the token's Graph id.
    pub fn assign_and_activate(
        &self,
        user: &str,
        device_id: &str,
        code: &VerificationCode,
        display_name: Option<&str>,
    ) -> Result<(), Error> {
        let mut body = json!({ "device": { "id": device_id }, "verificationCode": code.expose() });
        if let Some(name) = display_name {
            body["displayName"] = Value::String(name.to_owned());
        }
        let path = format!("{}/assignAndActivate", methods(user));
        self.send_activation(
            self.request("POST", &path)
                .json(&body)?
                .secret(code.expose()),
        )
    }

    /// Assigns and activates in one call, by the token's serial number.
    pub fn assign_and_activate_by_serial(
        &self,
        user: &str,
        serial_number: &str,
        code: &VerificationCode,
        display_name: Option<&str>,
    ) -> Result<(), Error> {
        let mut body = json!({ "serialNumber": serial_number, "verificationCode": code.expose() });
        if let Some(name) = display_name {
            body["displayName"] = Value::String(name.to_owned());
        }
        let path = format!("{}/assignAndActivateBySerialNumber", methods(user));
        self.send_activation(
            self.request("POST", &path)
                .json(&body)?
                .secret(code.expose()),
        )
    }

    fn send_activation(&self, req: Request<'_>) -> Result<(), Error> {
        self.activation_slot();
        self.http.send(&req)?;
        Ok(())
    }

    /// Removes a token from a user (it stays in the inventory, available).
    pub fn unassign(&self, user: &str, method_id: &str) -> Result<(), Error> {
        let path = format!("{}/{}", methods(user), seg(method_id));
        self.http.send(&self.request("DELETE", &path))?;
        Ok(())
    }
}

fn methods(user: &str) -> String {
    format!(
        "beta/users/{}/authentication/hardwareOathMethods",
        seg(user)
    )
}

/// One path segment, percent-encoded: ids and UPNs go into paths, and a UPN may hold `#`,
/// `?` or `/` that would change the URL's meaning.
fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@!$&'()*+,;=:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_token_serializes_as_documented() {
        let t = NewToken {
            serial_number: "0042".into(),
            manufacturer: "Contoso".into(),
            model: "M1".into(),
            secret_key: SecretKey::new("JBSWY3DPEHPK3PXP"),
            time_interval_in_seconds: 30,
            hash_function: Some(HashFunction::Hmacsha1),
            display_name: None,
            assign_to: Some("u-1".into()),
        };
        let v = serde_json::to_value(&t).expect("json");
        assert_eq!(
            v,
            json!({"serialNumber":"0042","manufacturer":"Contoso","model":"M1",
                   "secretKey":"JBSWY3DPEHPK3PXP","timeIntervalInSeconds":30,
                   "hashFunction":"hmacsha1","assignTo":{"id":"u-1"}})
        );
        assert!(!format!("{t:?}").contains("JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn token_reads_documented_shapes() {
        let t: HardwareOathToken = serde_json::from_str(
            r##"{"id":"a","serialNumber":"1","secretKey":null,"timeIntervalInSeconds":"60",
                "status":"failedActivation","hashFunction":"hmacsha256","assignedTo":{"id":"u"},
                "@odata.type":"#microsoft.graph.hardwareOathTokenAuthenticationMethodDevice"}"##,
        )
        .expect("json");
        assert_eq!(t.time_interval_in_seconds, Some(60));
        assert_eq!(t.status, Some(TokenStatus::FailedActivation));
        assert_eq!(t.hash_function, Some(HashFunction::Hmacsha256));
        assert!(t.secret_key.is_none());
        let t: HardwareOathToken = serde_json::from_str(r#"{"status":"someNewState"}"#).expect("j");
        assert_eq!(t.status, Some(TokenStatus::Unknown));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("ann@contoso.com"), "ann@contoso.com");
        assert_eq!(seg("a/b#c?d e"), "a%2Fb%23c%3Fd%20e");
    }
}
