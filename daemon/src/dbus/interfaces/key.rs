//! `org.oathkey.Key1`: one object per key present.

use std::collections::HashMap;
use std::sync::Arc;

use oathkey_protocol::SecretText;
use oathkey_protocol::types::{
    Algorithm, CodeParams, CodesParams, CreateTokenParams, OtpKind, SetConfigParams, TokenParams,
};
use zbus::OwnedVariant as OwnedValue;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

use crate::dbus::callers::{Callers, action};
use crate::dbus::error::DbusError;
use crate::service::Service;

use super::*;

/// `org.oathkey.Key1` on one key's object.
#[derive(Debug)]
pub struct KeyObject {
    /// The key id.
    pub id: String,
    /// The service core.
    pub service: Arc<Service>,
    /// Callers.
    pub callers: Arc<Callers>,
}

impl KeyObject {
    fn info(&self) -> Result<oathkey_protocol::types::KeyInfo, DbusError> {
        self.service
            .registry()
            .get(&self.id)
            .map(|e| e.info())
            .ok_or_else(|| DbusError::KeyRemoved(format!("key {} was removed", self.id)))
    }

    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

#[zbus::interface(name = "org.oathkey.Key1")]
impl KeyObject {
    /// The key id (its serial as 8 hex digits).
    #[zbus(property)]
    fn id(&self) -> String {
        self.id.clone()
    }

    /// The secrets app's serial number.
    // The id without the `-N` the registry adds when two keys plugged in report one serial.
    #[zbus(property)]
    fn serial(&self) -> String {
        self.id.split('-').next().unwrap_or(&self.id).to_string()
    }

    /// Model name.
    #[zbus(property)]
    fn model(&self) -> String {
        self.info().map(|i| i.model).unwrap_or_default()
    }

    /// Secrets app version.
    #[zbus(property)]
    fn firmware(&self) -> String {
        self.info().map(|i| i.firmware).unwrap_or_default()
    }

    /// Where it was found: hid, pcsc, virtual or udp.
    #[zbus(property)]
    fn source(&self) -> String {
        self.info()
            .map(|i| enum_name(&i.source))
            .unwrap_or_default()
    }

    /// The device path.
    #[zbus(property)]
    fn device_path(&self) -> String {
        self.info().map(|i| i.path).unwrap_or_default()
    }

    /// Whether a PIN is set.
    #[zbus(property)]
    fn pin_set(&self) -> bool {
        self.info().map(|i| i.pin_set).unwrap_or_default()
    }

    /// Whether a client holds a claim on it.
    #[zbus(property)]
    fn claimed(&self) -> bool {
        self.info().map(|i| i.claimed).unwrap_or_default()
    }

    /// The protocol it speaks: `nk3-hid` or `ykoath-pcsc`.
    #[zbus(property)]
    fn family(&self) -> String {
        self.info()
            .map(|i| i.family.name().to_string())
            .unwrap_or_default()
    }

    /// What it can do, as in `keys.list`: each capability's name, true or false (`codes`,
    /// `create`, `delete`, `rename`, `touch`, `hotp`, `access_code`, `wink`).
    #[zbus(property)]
    fn capabilities(&self) -> HashMap<String, bool> {
        let Ok(c) = self.info().map(|i| i.capabilities) else {
            return HashMap::new();
        };
        [
            ("codes", c.codes),
            ("create", c.create),
            ("delete", c.delete),
            ("rename", c.rename),
            ("touch", c.touch),
            ("hotp", c.hotp),
            ("access_code", c.access_code),
            ("wink", c.wink),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Whether its tokens are locked behind an access code (an admin unlocks it with
    /// `oathkey unlock`).
    #[zbus(property)]
    fn locked(&self) -> bool {
        self.info().map(|i| i.locked).unwrap_or_default()
    }

    /// Empty, or why another application holds the key exclusively and what to do (smart-card
    /// keys); requests to it fail with `Busy` meanwhile.
    #[zbus(property)]
    fn busy(&self) -> String {
        self.info().ok().and_then(|i| i.busy).unwrap_or_default()
    }

    /// Mode and Key Press: `keyboard`, `u2f`, `key_press` (absent where unsupported).
    #[zbus(property)]
    fn settings(&self) -> HashMap<String, bool> {
        self.service
            .registry()
            .get(&self.id)
            .map(|e| settings_dict(&e.settings()))
            .unwrap_or_default()
    }

    /// The tokens on the key.
    async fn list_tokens(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<Dict>, DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        self.callers
            .polkit(conn, &header, action::READ_CODES)
            .await?;
        let tokens = self.service.tokens(&caller, Some(&self.id)).await?;
        Ok(tokens.iter().map(token_dict).collect())
    }

    /// One code; `at` 0 means now (other times: admins, or within one period of now).
    async fn get_code(
        &self,
        token: &str,
        at: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Dict, DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        self.callers
            .polkit(conn, &header, action::READ_CODES)
            .await?;
        let params = CodeParams {
            key: self.key(),
            token: (!token.is_empty()).then(|| token.to_string()),
            at: (at != 0).then_some(at),
        };
        let code = self.callers.unless_caller_leaves(conn, &header, async {
            Ok(self.service.code(&caller, params).await?)
        });
        Ok(code_dict(&code.await?))
    }

    /// Every token's code (tokens needing a touch only with `include_touch`).
    async fn get_codes(
        &self,
        include_touch: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<Dict>, DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        self.callers
            .polkit(conn, &header, action::READ_CODES)
            .await?;
        let params = CodesParams {
            key: self.key(),
            at: None,
            include_touch,
        };
        let entries = self
            .callers
            .unless_caller_leaves(conn, &header, async {
                Ok(self.service.codes(&caller, params).await?)
            })
            .await?;
        Ok(entries
            .iter()
            .map(|e| {
                let mut d = token_dict(&e.token);
                if let Some(c) = &e.code {
                    d.insert("code".into(), value(c.as_str()));
                }
                if let Some(digits) = e.digits {
                    d.insert("digits".into(), value(digits));
                }
                if let Some(until) = e.valid_until {
                    d.insert("valid_until".into(), value(until));
                }
                if let Some(err) = &e.error {
                    d.insert("error".into(), value(err.name()));
                }
                d
            })
            .collect())
    }

    /// Makes the key blink.
    async fn wink(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        Ok(self.service.wink(&caller, Some(&self.id)).await?)
    }

    /// Changes Mode / Key Press (admin; each change needs a touch). Returns the new settings.
    async fn configure(
        &self,
        settings: HashMap<String, bool>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<HashMap<String, bool>, DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        if let Some(unknown) = settings
            .keys()
            .find(|k| !["keyboard", "u2f", "key_press"].contains(&k.as_str()))
        {
            return Err(DbusError::InvalidParams(format!(
                "unknown setting {unknown:?}"
            )));
        }
        if caller.is_admin() {
            self.callers
                .polkit(conn, &header, action::CONFIGURE_KEY)
                .await?;
        }
        let params = SetConfigParams {
            key: self.key(),
            keyboard: settings.get("keyboard").copied(),
            u2f: settings.get("u2f").copied(),
            key_press: settings.get("key_press").copied(),
        };
        let settings = self
            .callers
            .unless_caller_leaves(conn, &header, async {
                Ok(self.service.set_config(&caller, params).await?)
            })
            .await?;
        Ok(settings_dict(&settings))
    }

    /// Creates a token (admin): `account` (required), `serial`, `secret` (Base32), `kind`
    /// (totp/hotp), `algorithm` (sha1/sha256/sha512), `digits`, `period`, `touch`, `counter`.
    /// Returns the token with its Base32 `secret`: the only time it is shown.
    async fn create_token(
        &self,
        params: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Dict, DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        let known = [
            "account",
            "serial",
            "secret",
            "kind",
            "algorithm",
            "digits",
            "period",
            "touch",
            "counter",
        ];
        if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(DbusError::InvalidParams(format!(
                "unknown parameter {unknown:?}"
            )));
        }
        if caller.is_admin() {
            self.callers
                .polkit(conn, &header, action::CREATE_TOKEN)
                .await?;
        }
        let p = CreateTokenParams {
            key: self.key(),
            account: dict_str(&params, "account")?
                .ok_or_else(|| DbusError::InvalidParams("account is required".into()))?,
            serial: dict_str(&params, "serial")?,
            secret: dict_str(&params, "secret")?.map(SecretText::new),
            kind: parse_enum::<OtpKind>("kind", dict_str(&params, "kind")?)?.unwrap_or_default(),
            algorithm: parse_enum::<Algorithm>("algorithm", dict_str(&params, "algorithm")?)?
                .unwrap_or_default(),
            digits: dict_u32(&params, "digits")?.map_or(Ok(6), |d| {
                u8::try_from(d).map_err(|_| DbusError::InvalidParams("digits".into()))
            })?,
            period: dict_u32(&params, "period")?.unwrap_or(30),
            touch: dict_bool(&params, "touch")?.unwrap_or(false),
            counter: dict_u32(&params, "counter")?.unwrap_or(0),
        };
        // Cancelling is safe: the seed is in the ledger before the key is touched.
        let created = self
            .callers
            .unless_caller_leaves(conn, &header, async {
                Ok(self.service.create_token(&caller, p).await?)
            })
            .await?;
        let mut d = token_dict(&created.token);
        d.insert("secret".into(), value(created.secret.expose()));
        d.insert("digits".into(), value(created.digits));
        if let Some(id) = &created.seed_id {
            d.insert("seed_id".into(), value(id.as_str()));
        }
        Ok(d)
    }

    /// Deletes a token (admin; touch needed), by name, serial or account.
    async fn delete_token(
        &self,
        token: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        if caller.is_admin() {
            self.callers
                .polkit(conn, &header, action::DELETE_TOKEN)
                .await?;
        }
        let params = TokenParams {
            key: self.key(),
            token: token.into(),
        };
        self.callers
            .unless_caller_leaves(conn, &header, async {
                Ok(self.service.delete_token(&caller, params).await?)
            })
            .await
    }

    /// Claims the key for a multi-step job (admin); ends when the caller leaves the bus.
    async fn claim(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        if caller.is_admin() {
            self.callers
                .polkit(conn, &header, action::CLAIM_KEY)
                .await?;
        }
        self.service.claim(&caller, Some(&self.id))?;
        // The caller may have left while polkit was asked: its name-owner change came before
        // the claim existed and ended nothing, so the claim would never end. Ask the bus.
        if !self.callers.still_on_bus(conn, &header).await {
            let _ = self.service.release(&caller, Some(&self.id));
            return Err(DbusError::Cancelled("the caller left the bus".into()));
        }
        Ok(())
    }

    /// Releases the caller's claim.
    async fn release(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        Ok(self.service.release(&caller, Some(&self.id))?)
    }

    /// The key waits for a touch.
    #[zbus(signal)]
    pub async fn touch_needed(
        emitter: &SignalEmitter<'_>,
        operation: &str,
        token: &str,
    ) -> zbus::Result<()>;

    /// The touch wait ended.
    #[zbus(signal)]
    pub async fn touch_done(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    /// Tokens were created or deleted.
    #[zbus(signal)]
    pub async fn tokens_changed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}
