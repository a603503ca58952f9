//! The commands: each calls oathkeyd and prints text or JSON.

use crate::out::{out, outln};
use std::io::IsTerminal;
use std::path::PathBuf;

use oathkey_protocol::SecretText;
use oathkey_protocol::client::Client;
use oathkey_protocol::methods::{self as m, Method, NoParams};
use oathkey_protocol::paths::client_socket;
use oathkey_protocol::types::{
    AccessCodeParams, Algorithm, Code, CodeEntry, CodeParams, CodesParams, CreateTokenParams,
    CreatedToken, Event, KeyInfo, KeyList, KeyParams, NoCode, OtpKind, RenameParams,
    SetConfigParams, Settings, TokenInfo, TokenParams, UnlockParams,
};
use serde::Serialize;

use crate::cli::{AccessCodeCommand, Cli, CodeSource, Command, ConfigArgs, NewToken, TokenCommand};
use crate::exit::Failure;
use crate::table::Table;

/// The connection and the global options.
pub struct Ctx {
    client: Client,
    key: Option<String>,
    json: bool,
    at: Option<u64>,
}

impl Ctx {
    /// Connects to the daemon named by the options.
    pub fn connect(cli: &Cli) -> Result<Self, Failure> {
        let path: PathBuf = cli.socket.clone().unwrap_or_else(client_socket);
        let client = Client::connect(&path)?;
        Ok(Self {
            client,
            key: cli.key.clone(),
            json: cli.json,
            at: cli.at,
        })
    }

    /// A connection to a given socket (the demo's private daemon).
    pub fn at_socket(path: &std::path::Path, json: bool) -> Result<Self, Failure> {
        Ok(Self {
            client: Client::connect(path)?,
            key: None,
            json,
            at: None,
        })
    }

    /// Connects and calls a reader's method `M` in one round trip (see
    /// [`Client::connect_and_request`]), with touch prompts; the connection stays open for more.
    pub fn connect_and_call<M: Method>(
        cli: &Cli,
        subscribe: bool,
        params: M::Params,
    ) -> Result<(Self, M::Result), Failure> {
        let path: PathBuf = cli.socket.clone().unwrap_or_else(client_socket);
        let (client, result) = Client::connect_and_request::<M>(
            &path,
            subscribe,
            params,
            touch_prompt(cli.key.clone()),
        )?;
        let ctx = Self {
            client,
            key: cli.key.clone(),
            json: cli.json,
            at: cli.at,
        };
        Ok((ctx, result))
    }

    /// Calls method `M`; touch prompts for our key go to stderr meanwhile.
    pub fn call<M: Method>(&mut self, params: M::Params) -> Result<M::Result, Failure> {
        let result = self
            .client
            .request_with::<M>(params, None, touch_prompt(self.key.clone()));
        Ok(result?)
    }

    /// Starts receiving events (for touch prompts) before a call that may wait for a touch.
    pub fn subscribe(&mut self) -> Result<(), Failure> {
        self.client.request::<m::EventsSubscribe>(NoParams)?;
        Ok(())
    }

    /// The connection itself (for code shared with other clients).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_event(&mut self, timeout: std::time::Duration) -> Result<Option<Event>, Failure> {
        Ok(self.client.next_event(timeout)?)
    }

    /// Refuses as the daemon would (exit 6) when `hello` said we are a reader, for commands
    /// that check their outputs before calling the daemon: "not allowed" is the answer that
    /// matters then, not a file that could not have been written anyway. The daemon still
    /// decides.
    pub fn require_admin(&self, what: &str) -> Result<(), Failure> {
        if self.role_is_reader() {
            return Err(Failure {
                code: crate::exit::PERMISSION,
                message: format!(
                    "{what} needs an admin; ask your administrator (admins are root and the configured admin users and groups)"
                ),
            });
        }
        Ok(())
    }

    /// Whether the daemon said we are a reader.
    pub fn role_is_reader(&self) -> bool {
        self.client
            .hello()
            .is_some_and(|h| h.role == oathkey_protocol::types::Role::Reader)
    }

    fn key_params(&self) -> KeyParams {
        KeyParams {
            key: self.key.clone(),
        }
    }

    /// With `--json`, prints what a command did as JSON (standard output stays empty
    /// without it: messages go to standard error).
    pub fn print_summary<T: Serialize>(&self, value: &T) -> Result<(), Failure> {
        if self.json {
            self.print_json(value)
        } else {
            Ok(())
        }
    }

    fn print_json<T: Serialize>(&self, value: &T) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::from(anyhow::Error::from(e)))?;
        outln!("{text}");
        Ok(())
    }
}

/// Runs a parsed command line (everything but `demo`).
pub fn run(cli: &Cli) -> Result<(), Failure> {
    if let Command::Code { token } = &cli.command {
        return code(cli, token.clone());
    }
    let mut ctx = Ctx::connect(cli)?;
    match &cli.command {
        Command::Keys => keys(&mut ctx),
        Command::Tokens => tokens(&mut ctx),
        Command::Code { .. } => unreachable!("answered above"),
        Command::Codes { include_touch } => codes(&mut ctx, *include_touch),
        Command::Wink => wink(&mut ctx),
        Command::Events { count, timeout } => events(&mut ctx, *count, *timeout),
        Command::Config(args) => config(&mut ctx, args),
        Command::Token(TokenCommand::New(args)) => new_token(&mut ctx, args).map(drop),
        Command::Token(TokenCommand::Delete { token }) => delete_token(&mut ctx, token),
        Command::Token(TokenCommand::Rename { token, user }) => rename_token(&mut ctx, token, user),
        Command::Unlock(source) => unlock(&mut ctx, source),
        Command::AccessCode(cmd) => access_code(&mut ctx, cmd),
        Command::Provision(args) => crate::provision::run(&mut ctx, args),
        Command::Export(args) => crate::seeds::export(&mut ctx, args),
        Command::Seeds(cmd) => crate::seeds::seeds(&mut ctx, cmd, cli.json),
        Command::Demo { .. }
        | Command::Entra(_)
        | Command::Seedfile(_)
        | Command::Activate(_)
        | Command::GenerateAssets { .. } => {
            Err(Failure::usage("this command runs without a daemon"))
        }
    }
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

fn keys(ctx: &mut Ctx) -> Result<(), Failure> {
    let list: KeyList = ctx.call::<m::KeysList>(NoParams)?;
    if ctx.json {
        return ctx.print_json(&list);
    }
    if list.keys.is_empty() && list.unavailable.is_empty() {
        eprintln!("No key is plugged in.");
        return Ok(());
    }
    let mut t = Table::new([
        "ID", "MODEL", "FAMILY", "FIRMWARE", "SOURCE", "PIN", "LOCKED", "CLAIMED", "PATH",
    ]);
    for k in &list.keys {
        t.row([
            k.id.clone(),
            k.model.clone(),
            k.family.name().into(),
            k.firmware.clone(),
            format!("{:?}", k.source).to_lowercase(),
            yes_no(k.pin_set).into(),
            yes_no(k.locked).into(),
            yes_no(k.claimed).into(),
            k.path.clone(),
        ]);
    }
    out!("{t}");
    for k in list.keys.iter().filter(|k| k.locked) {
        eprintln!(
            "key {}: its tokens are locked with an access code; an admin unlocks it with `oathkey --key {} unlock`",
            k.id, k.id
        );
    }
    for k in &list.keys {
        if let Some(why) = &k.busy {
            eprintln!("key {}: {why}", k.id);
        }
    }
    for u in &list.unavailable {
        eprintln!("unusable: {}: {}", u.path, u.reason);
    }
    Ok(())
}

/// Fails as `code` does (exit 4) when no key is plugged in: the daemon lists the tokens of
/// every key, and no key gives the same empty list as keys without tokens, which would tell
/// the user (or a script reading `--json`) something false. With `--key`, the daemon itself
/// refuses a key that is not there.
fn some_key(ctx: &mut Ctx) -> Result<(), Failure> {
    if ctx.key.is_some() {
        return Ok(());
    }
    let list: KeyList = ctx.call::<m::KeysList>(NoParams)?;
    if !list.keys.is_empty() {
        return Ok(());
    }
    let unusable: Vec<String> = list
        .unavailable
        .iter()
        .map(|u| format!("; {} is unusable: {}", u.path, u.reason))
        .collect();
    Err(Failure {
        code: crate::exit::NOT_FOUND,
        message: format!("no key is plugged in{}", unusable.concat()),
    })
}

fn kind(k: OtpKind) -> &'static str {
    match k {
        OtpKind::Totp => "TOTP",
        OtpKind::Hotp => "HOTP",
        OtpKind::Other => "other",
    }
}

fn algorithm(a: Option<Algorithm>) -> &'static str {
    match a {
        Some(Algorithm::Sha1) => "SHA1",
        Some(Algorithm::Sha256) => "SHA256",
        Some(Algorithm::Sha512) => "SHA512",
        None => "-",
    }
}

fn tokens(ctx: &mut Ctx) -> Result<(), Failure> {
    let tokens: Vec<TokenInfo> = ctx.call::<m::TokensList>(ctx.key_params())?;
    if tokens.is_empty() {
        some_key(ctx)?;
    }
    if ctx.json {
        return ctx.print_json(&tokens);
    }
    if tokens.is_empty() {
        eprintln!("No tokens. Create one with `oathkey token new --user UPN`.");
        return Ok(());
    }
    let mut t = Table::new([
        "KEY", "SERIAL", "ACCOUNT", "TYPE", "HASH", "PERIOD", "TOUCH",
    ]);
    for tok in &tokens {
        t.row([
            tok.key.clone(),
            tok.serial.clone().unwrap_or_else(|| "-".into()),
            tok.account.clone(),
            kind(tok.kind).into(),
            algorithm(tok.algorithm).into(),
            format!("{}s", tok.period),
            tok.touch.map_or("-", yes_no).into(),
        ]);
    }
    out!("{t}");
    Ok(())
}

/// Says "touch your key" on standard error when the key (`key`, or any) waits for a touch.
fn touch_prompt(key: Option<String>) -> impl FnMut(&Event) {
    move |event| {
        if let Event::TouchNeeded { key: k, token, .. } = event
            && key
                .as_deref()
                .is_none_or(|want| want.eq_ignore_ascii_case(k))
        {
            match token {
                Some(t) => eprintln!("Touch your key {k} to confirm ({t})..."),
                None => eprintln!("Touch your key {k} to confirm..."),
            }
        }
    }
}

/// `oathkey code`: hello, the subscription for touch prompts and the read go out at once (a
/// login script waits for this).
fn code(cli: &Cli, token: Option<String>) -> Result<(), Failure> {
    let params = CodeParams {
        key: cli.key.clone(),
        token,
        at: cli.at,
    };
    let (ctx, code): (Ctx, Code) = Ctx::connect_and_call::<m::CodesGet>(cli, true, params)?;
    if ctx.json {
        return ctx.print_json(&code);
    }
    // Only the code: `$(oathkey code)` must work in a login script.
    outln!("{}", code.code);
    Ok(())
}

fn codes(ctx: &mut Ctx, include_touch: bool) -> Result<(), Failure> {
    if include_touch {
        ctx.subscribe()?;
    }
    let params = CodesParams {
        key: ctx.key.clone(),
        at: ctx.at,
        include_touch,
    };
    let entries: Vec<CodeEntry> = ctx.call::<m::CodesAll>(params)?;
    if entries.is_empty() {
        some_key(ctx)?;
    }
    if ctx.json {
        return ctx.print_json(&entries);
    }
    if entries.is_empty() {
        eprintln!("No tokens. Create one with `oathkey token new --user UPN`.");
        return Ok(());
    }
    let now = ctx.at.unwrap_or_else(unix_now);
    let mut t = Table::new(["KEY", "SERIAL", "ACCOUNT", "CODE", "LEFT"]);
    for e in &entries {
        let (code, left) = match (&e.code, &e.error) {
            (Some(c), _) => (
                c.clone(),
                e.valid_until
                    .map_or("-".into(), |u| format!("{}s", u.saturating_sub(now))),
            ),
            (None, Some(NoCode::TouchRequired)) => ("(touch: --include-touch)".into(), "-".into()),
            (None, Some(NoCode::HotpNotRead)) => ("(HOTP: oathkey code)".into(), "-".into()),
            (None, Some(why)) => (format!("({})", why.name()), "-".into()),
            (None, None) => ("-".into(), "-".into()),
        };
        t.row([
            e.token.key.clone(),
            e.token.serial.clone().unwrap_or_else(|| "-".into()),
            e.token.account.clone(),
            code,
            left,
        ]);
    }
    out!("{t}");
    Ok(())
}

fn wink(ctx: &mut Ctx) -> Result<(), Failure> {
    ctx.call::<m::KeysWink>(ctx.key_params())?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({"winked": true}));
    }
    eprintln!("The key blinks.");
    Ok(())
}

fn events(ctx: &mut Ctx, count: Option<u64>, timeout: Option<u64>) -> Result<(), Failure> {
    ctx.subscribe()?;
    // A timeout beyond what the clock can count has no end: no deadline, rather than a panic.
    let deadline = timeout
        .and_then(|t| std::time::Instant::now().checked_add(std::time::Duration::from_secs(t)));
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => break,
            },
            None => std::time::Duration::from_secs(3600),
        };
        if let Some(event) = ctx.next_event(left)? {
            let line =
                serde_json::to_string(&event).map_err(|e| Failure::from(anyhow::Error::from(e)))?;
            outln!("{line}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            seen += 1;
        }
    }
    Ok(())
}

fn on_off(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "not supported",
    }
}

fn config(ctx: &mut Ctx, args: &ConfigArgs) -> Result<(), Failure> {
    let changes = SetConfigParams {
        key: ctx.key.clone(),
        keyboard: args.keyboard.map(|s| s.enabled()),
        u2f: args.u2f.map(|s| s.enabled()),
        key_press: args.key_press.map(|s| s.enabled()),
    };
    let settings: Settings =
        if changes.keyboard.is_none() && changes.u2f.is_none() && changes.key_press.is_none() {
            ctx.call::<m::KeysGetConfig>(ctx.key_params())?
        } else {
            ctx.subscribe()?;
            ctx.call::<m::KeysSetConfig>(changes)?
        };
    if ctx.json {
        return ctx.print_json(&settings);
    }
    outln!("Mode Keyboard: {}", on_off(settings.keyboard));
    outln!("Mode U2F:      {}", on_off(settings.u2f));
    outln!("Key Press:     {}", on_off(settings.key_press));
    Ok(())
}

/// Creates a token; prints it, including the secret, the one time it is shown.
pub fn new_token(ctx: &mut Ctx, args: &NewToken) -> Result<CreatedToken, Failure> {
    let secret = match args.secret.as_deref() {
        Some("-") => Some(SecretText::new(std::env::var("OATHKEY_SECRET").map_err(
            |_| Failure::usage("--secret - reads OATHKEY_SECRET, which is not set"),
        )?)),
        Some(s) => Some(SecretText::new(s.to_string())),
        None => None,
    };
    let imported = secret
        .as_ref()
        .and_then(|s| oathkey_seedfile::Secret::from_base32(s.expose()).ok());
    // The key takes a short imported secret, but every seed-file target refuses it: say so now
    // rather than at export time.
    if let Some(imported) = &imported
        && imported.expose().len() < oathkey_seedfile::MIN_SECRET_BYTES
    {
        eprintln!(
            "warning: the secret is only {} bits; seed files refuse secrets under {} bits (`export --force` writes them anyway)",
            imported.expose().len() * 8,
            oathkey_seedfile::MIN_SECRET_BYTES * 8
        );
    }
    warn_export_refusals(args, imported.as_ref());
    // Sent as typed: the daemon decodes it with the same decoder as `imported` above
    // (`oathkey-otp`), so a 206-character text is its 128 bytes there too (the 6 bits past the
    // last whole byte dropped, as the seed-file readers and authenticator apps do).
    let params = CreateTokenParams {
        key: ctx.key.clone(),
        account: args.user.clone(),
        serial: args.serial.clone(),
        secret,
        kind: if args.hotp {
            OtpKind::Hotp
        } else {
            OtpKind::Totp
        },
        algorithm: args.hash.into(),
        digits: args.digits,
        period: args.period,
        touch: args.touch,
        counter: args.counter,
    };
    // The seed is printed: into a file only if it is private, checked before the key is touched.
    ctx.require_admin("creating a token")?;
    crate::output::private_stdout(
        "print the seed to a terminal, or export it later with `oathkey export -o FILE`",
    )?;
    ctx.subscribe()?;
    let created: CreatedToken = ctx.call::<m::TokensCreate>(params)?;
    if ctx.json {
        ctx.print_json(&created)?;
    } else {
        print_created(&created);
    }
    Ok(created)
}

/// Says on standard error, before the token is made, which export formats will refuse it for
/// its user (the one UPN rule, guests, invisible characters, spreadsheet formulas), its
/// serial or an imported secret's length, and whether `export --force` helps. The token is
/// made anyway: keys serve more than Azure, and ykman and oathtool take any name too.
fn warn_export_refusals(args: &NewToken, imported: Option<&oathkey_seedfile::Secret>) {
    let mut probe = oathkey_seedfile::probe_record(&args.user);
    if let Some(serial) = &args.serial {
        probe.serial = serial.clone();
    }
    // Short secrets have their own warning above.
    if let Some(secret) =
        imported.filter(|s| s.expose().len() >= oathkey_seedfile::MIN_SECRET_BYTES)
    {
        probe.secret = secret.clone();
    }
    // One warning per reason, naming every format that gives it.
    let mut warnings: Vec<(String, &str, Vec<oathkey_seedfile::Format>)> = Vec::new();
    for (format, refusal) in oathkey_seedfile::export_refusals(&probe) {
        let (why, force) = match &refusal {
            oathkey_seedfile::RenderError::Rejected(problems) => (
                problems
                    .iter()
                    .map(|p| p.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                "export --force writes it anyway",
            ),
            oathkey_seedfile::RenderError::Other(reason) => (
                reason.clone(),
                "not even with --force; export it in another format",
            ),
        };
        match warnings.iter_mut().find(|w| w.0 == why && w.1 == force) {
            Some(warning) => warning.2.push(format),
            None => warnings.push((why, force, vec![format])),
        }
    }
    for (why, force, formats) in warnings {
        let who = match formats.as_slice() {
            [one] => format!("{} {one} export refuses", one.article()),
            [first @ .., last] => {
                let first: Vec<String> = first.iter().map(ToString::to_string).collect();
                format!("{} and {last} exports refuse", first.join(", "))
            }
            [] => continue,
        };
        eprintln!("warning: {who} this token: {why} ({force})");
    }
}

/// Prints a created token as the admin tool shows it.
pub fn print_created(c: &CreatedToken) {
    outln!("Key:       {}", c.token.key);
    outln!("User:      {}", c.token.account);
    outln!("Serial:    {}", c.serial);
    outln!(
        "Token:     {} {} {} digits, {} s",
        kind(c.kind),
        algorithm(Some(c.algorithm)),
        c.digits,
        c.period
    );
    outln!("Secret:    {}", c.secret.expose());
    if std::io::stderr().is_terminal() {
        eprintln!("Keep the secret safe: this is the only time oathkey shows it.");
    }
}

fn rename_token(ctx: &mut Ctx, token: &str, user: &str) -> Result<(), Failure> {
    let params = RenameParams {
        key: ctx.key.clone(),
        token: token.into(),
        account: user.into(),
    };
    let renamed = ctx.call::<m::TokensRename>(params)?;
    if ctx.json {
        return ctx.print_json(&renamed);
    }
    eprintln!("Renamed: {} on key {}.", renamed.name, renamed.key);
    Ok(())
}

fn unlock(ctx: &mut Ctx, source: &CodeSource) -> Result<(), Failure> {
    let key = ctx.key.clone();
    let prompt = match &key {
        Some(k) => format!("Access code of key {k}: "),
        None => "Access code: ".to_string(),
    };
    let code = crate::secret_input::read(source.code_file.as_deref(), &prompt, false)?;
    ctx.call::<m::KeysUnlock>(UnlockParams { key, code })?;
    if ctx.json {
        return ctx.print_summary(&serde_json::json!({"unlocked": true}));
    }
    eprintln!("Unlocked: oathkeyd reads its codes until the key is unplugged or oathkeyd stops.");
    Ok(())
}

fn access_code(ctx: &mut Ctx, cmd: &AccessCodeCommand) -> Result<(), Failure> {
    let code = match cmd {
        AccessCodeCommand::Set(source) => Some(crate::secret_input::read(
            source.code_file.as_deref(),
            "New access code: ",
            true,
        )?),
        AccessCodeCommand::Clear => None,
    };
    let set = code.is_some();
    ctx.call::<m::KeysSetAccessCode>(AccessCodeParams {
        key: ctx.key.clone(),
        code,
    })?;
    if ctx.json {
        return ctx.print_summary(&serde_json::json!({"access_code": set}));
    }
    eprintln!(
        "{}",
        if set {
            "Access code set: other applications must give it to read codes."
        } else {
            "Access code cleared."
        }
    );
    Ok(())
}

fn delete_token(ctx: &mut Ctx, token: &str) -> Result<(), Failure> {
    ctx.subscribe()?;
    let params = TokenParams {
        key: ctx.key.clone(),
        token: token.to_string(),
    };
    ctx.call::<m::TokensDelete>(params)?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({"deleted": token}));
    }
    eprintln!("Deleted {token}.");
    Ok(())
}

/// The unix time now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Key info for the demo's banner.
pub fn key_info(ctx: &mut Ctx) -> Result<KeyInfo, Failure> {
    ctx.call::<m::KeysInfo>(ctx.key_params())
}

/// One code (for the demo).
pub fn fetch_code(ctx: &mut Ctx, token: &str) -> Result<Code, Failure> {
    ctx.call::<m::CodesGet>(CodeParams {
        key: ctx.key.clone(),
        token: Some(token.into()),
        at: None,
    })
}
