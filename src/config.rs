//! Typed settings, read once from the environment and validated before anything starts.
//!
//! This is the only place that reads environment variables. A bad value names its variable.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tls::CaFile;

/// A value that must never reach a log line or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

#[derive(Debug, Clone)]
pub struct SurrealSettings {
    pub url: String,
    pub namespace: String,
    pub database: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Extra CA certificates a `wss://` server is verified with, beside the system's.
    pub ca: Option<CaFile>,
}

/// A shared Redis (`REDIS_URL`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: Secret,
    /// Extra CA certificates a `rediss://` server is verified with, beside the system's.
    pub ca: Option<CaFile>,
}

impl SurrealSettings {
    /// The URL without credentials a URL may carry (`ws://user:pass@host`), for logs.
    pub fn url_for_logs(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) if rest.split('/').next().is_some_and(|a| a.contains('@')) => {
                let host = rest.split_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://***@{host}")
            }
            _ => self.url.clone(),
        }
    }
}

/// Where product images are kept (`MEDIA_URL`).
#[derive(Debug, Clone)]
pub enum MediaSettings {
    Directory(PathBuf),
    /// An S3-compatible bucket; credentials from the standard AWS variables.
    S3 {
        bucket: String,
        prefix: String,
        region: String,
        endpoint: Option<String>,
        access_key_id: String,
        secret_access_key: Secret,
    },
}

/// How orders are paid (`STRIPE_SECRET_KEY`): by hand, or through Stripe.
#[derive(Debug, Clone)]
pub enum PaymentSettings {
    /// An admin marks an order paid (the default: the embedded start needs no keys).
    Manual,
    Stripe(StripeSettings),
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: Secret,
    /// Signs the webhooks Stripe sends (`whsec_...`).
    pub webhook_secret: Secret,
    /// The API's origin, `/v1/...` appended (`https://api.stripe.com`; a test points it elsewhere).
    pub api_base: String,
    /// How long an order waits for its payment before it is cancelled and its stock restored.
    pub payment_timeout: Duration,
}

/// Where mail goes (`SMTP_URL`): an SMTP relay, or the log only.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// lettre's URL form: `smtp://host:port` (plain), `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`. Unset: messages are written to the log (and the outbox) only.
    pub smtp_url: Option<Secret>,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// The store's name, in every message.
    pub store_name: String,
    /// Where the store's pages are, for the links in messages (no trailing slash).
    pub public_url: String,
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    pub same_site: SameSite,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    /// Where `/metrics` is served (on `host`): a port of its own, off the public API.
    pub metrics_port: u16,
    pub env: AppEnv,
    pub surreal: SurrealSettings,
    /// Unset: the in-process cache.
    pub redis: Option<RedisSettings>,
    pub media: MediaSettings,
    pub payments: PaymentSettings,
    pub mail: MailSettings,
    pub jwt_secret: Secret,
    /// True when no `JWT_SECRET` was given and a random one was made for this run (development only).
    pub jwt_secret_generated: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long after a refresh the token it replaced still yields the current tokens (a second tab
    /// refreshing at the same moment) instead of counting as theft.
    pub refresh_reuse_grace: Duration,
    /// How long a guest cart lives without a write before it is deleted.
    pub guest_cart_ttl: Duration,
    /// Event streams one instance holds at most (each costs tens of KiB).
    pub event_streams_max: usize,
    /// A checkout that takes a variant's stock below this sends `product.stock_low` webhooks.
    pub low_stock_threshold: u64,
    /// Checkout needs a verified email.
    pub require_verified_email: bool,
    pub cors_origins: Vec<String>,
    pub cookies: CookieSettings,
    pub seed_catalog: bool,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Header holding the client's address when a trusted proxy sits in front (e.g. `Fly-Client-IP`).
    pub client_ip_header: Option<String>,
    /// Failed login attempts allowed per client address per minute (across emails).
    pub login_limit_per_ip: u64,
    /// Failed login attempts allowed per (email, client address) per minute.
    pub login_limit_per_email: u64,
    /// Failed login attempts allowed per email per minute across all addresses: the ceiling against a
    /// guesser spread over many addresses, far above what one address may try.
    pub login_limit_per_email_global: u64,
    /// An account `serve` makes sure is an admin at start (`STOREFRONT_ADMIN_EMAIL`), for hosts where
    /// the `create-admin` command cannot reach the database a running server holds.
    pub admin_email: Option<crate::domain::Email>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

pub const MIN_JWT_SECRET_BYTES: usize = 32;
const DEFAULT_SURREAL_PATH: &str = "./data/storefront";
pub const DEFAULT_METRICS_PORT: u16 = 9091;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty variable counts as unset: `FOO=` in a shell or fly.toml means "no value".
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let var: Var = &var;

        let env = choice_var(
            var,
            "APP_ENV",
            &[
                ("development", AppEnv::Development),
                ("production", AppEnv::Production),
            ],
        )?;
        let production = env == AppEnv::Production;
        let (host, port) = listen_address(var)?;
        let metrics_port = metrics_port(var, port)?;
        let (jwt_secret, jwt_secret_generated) = jwt_secret(var, production)?;
        let lifetimes = token_lifetimes(var)?;
        let (log_format, log_filter) = logging(var)?;
        let (login_limit_per_email, login_limit_per_email_global) = email_login_limits(var)?;
        Ok(Self {
            host,
            port,
            metrics_port,
            env,
            surreal: surreal_settings(var)?,
            redis: redis_settings(var)?,
            media: media_settings(var)?,
            payments: payment_settings(var, production)?,
            mail: mail_settings(var, port)?,
            jwt_secret,
            jwt_secret_generated,
            access_token_ttl: lifetimes.access,
            refresh_token_ttl: lifetimes.refresh,
            refresh_reuse_grace: lifetimes.reuse_grace,
            guest_cart_ttl: duration_var(
                var,
                "GUEST_CART_TTL",
                Duration::from_secs(7 * 24 * 3600),
            )?,
            event_streams_max: count_var(var, "EVENT_STREAMS_MAX", 4096)?
                .try_into()
                .map_err(|_| invalid("EVENT_STREAMS_MAX", "too large"))?,
            low_stock_threshold: count_var(var, "LOW_STOCK_THRESHOLD", 5)?,
            require_verified_email: bool_var(var, "REQUIRE_VERIFIED_EMAIL", false)?,
            cors_origins: cors_origins(var)?,
            cookies: cookie_settings(var, production)?,
            seed_catalog: bool_var(var, "SEED_CATALOG", !production)?,
            log_format,
            log_filter,
            client_ip_header: var("CLIENT_IP_HEADER"),
            login_limit_per_ip: count_var(var, "LOGIN_LIMIT_PER_IP", 30)?,
            login_limit_per_email,
            login_limit_per_email_global,
            admin_email: admin_email(var)?,
        })
    }

    pub fn is_production(&self) -> bool {
        self.env == AppEnv::Production
    }

    /// Prefix of every cache key: two stores sharing one Redis never see each other's keys.
    pub fn cache_prefix(&self) -> String {
        format!("sf:{}:{}:", self.surreal.namespace, self.surreal.database)
    }
}

/// How `from_lookup` reads a variable: trimmed, and `None` when unset or empty.
type Var<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One of `choices` by its name (ignoring case); the first choice when unset.
fn choice_var<T: Copy>(
    var: Var,
    name: &'static str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(text) = var(name) else {
        return Ok(choices[0].1);
    };
    let lower = text.to_ascii_lowercase();
    choices
        .iter()
        .find(|(choice, _)| *choice == lower)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(choice, _)| *choice).collect();
            invalid(name, format!("`{text}` is not one of {}", names.join(", ")))
        })
}

fn listen_address(var: Var) -> Result<(IpAddr, u16), ConfigError> {
    let host = match var("HOST") {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(v) => v
            .parse()
            .map_err(|_| invalid("HOST", format!("`{v}` is not an IP address")))?,
    };
    let port = match var("PORT") {
        None => 8080,
        Some(v) => v
            .parse()
            .map_err(|_| invalid("PORT", format!("`{v}` is not a port number (0-65535)")))?,
    };
    Ok((host, port))
}

fn surreal_settings(var: Var) -> Result<SurrealSettings, ConfigError> {
    let url = var("SURREAL_URL").unwrap_or_else(default_surreal_url);
    validate_surreal_url(&url)?;
    let surreal = SurrealSettings {
        url: url.clone(),
        namespace: var("SURREAL_NS").unwrap_or_else(|| "storefront".into()),
        database: var("SURREAL_DB").unwrap_or_else(|| "main".into()),
        username: var("SURREAL_USER"),
        password: var("SURREAL_PASS").map(Secret::new),
        ca: ca_file(var, "SURREAL_CA_FILE", &url, "wss://", "SURREAL_URL")?,
    };
    if surreal.username.is_some() != surreal.password.is_some() {
        return Err(invalid(
            "SURREAL_USER",
            "SURREAL_USER and SURREAL_PASS must be set together",
        ));
    }
    Ok(surreal)
}

fn redis_settings(var: Var) -> Result<Option<RedisSettings>, ConfigError> {
    let Some(url) = var("REDIS_URL") else {
        if var("REDIS_CA_FILE").is_some() {
            return Err(invalid("REDIS_CA_FILE", "is set but REDIS_URL is not"));
        }
        return Ok(None);
    };
    let after_scheme = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"));
    if after_scheme.is_none_or(str::is_empty) {
        return Err(invalid(
            "REDIS_URL",
            "must be redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB]",
        ));
    }
    let ca = ca_file(var, "REDIS_CA_FILE", &url, "rediss://", "REDIS_URL")?;
    Ok(Some(RedisSettings {
        url: Secret::new(url),
        ca,
    }))
}

/// An extra CA file (`name`), which only means something for a TLS URL (`scheme`) in `url_var`.
fn ca_file(
    var: Var,
    name: &'static str,
    url: &str,
    scheme: &str,
    url_var: &str,
) -> Result<Option<CaFile>, ConfigError> {
    let Some(path) = var(name) else {
        return Ok(None);
    };
    if !url.starts_with(scheme) {
        return Err(invalid(
            name,
            format!("applies only to a {scheme} {url_var}"),
        ));
    }
    CaFile::read(Path::new(&path))
        .map(Some)
        .map_err(|message| invalid(name, message))
}

/// `MEDIA_URL`: a directory (default `./data/media`) or `s3://BUCKET[/PREFIX]`, which needs
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and takes `AWS_REGION`, `AWS_ENDPOINT_URL`).
fn media_settings(var: Var) -> Result<MediaSettings, ConfigError> {
    let url = var("MEDIA_URL").unwrap_or_else(|| {
        std::env::current_dir()
            .map(|dir| dir.join("data/media"))
            .unwrap_or_else(|_| "./data/media".into())
            .display()
            .to_string()
    });
    let Some(rest) = url.strip_prefix("s3://") else {
        if url.contains("://") {
            return Err(invalid(
                "MEDIA_URL",
                "must be a directory path or s3://BUCKET[/PREFIX]",
            ));
        }
        return Ok(MediaSettings::Directory(PathBuf::from(url)));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid("MEDIA_URL", "s3:// needs a bucket name"));
    }
    let required = |name: &'static str| {
        var(name).ok_or_else(|| invalid(name, "is needed for an s3:// MEDIA_URL"))
    };
    Ok(MediaSettings::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        endpoint: var("AWS_ENDPOINT_URL"),
        access_key_id: required("AWS_ACCESS_KEY_ID")?,
        secret_access_key: Secret::new(required("AWS_SECRET_ACCESS_KEY")?),
    })
}

/// Stripe when `STRIPE_SECRET_KEY` is set (with its webhook secret), manual payments otherwise.
fn payment_settings(var: Var, production: bool) -> Result<PaymentSettings, ConfigError> {
    let Some(secret_key) = var("STRIPE_SECRET_KEY") else {
        if var("STRIPE_WEBHOOK_SECRET").is_some() {
            return Err(invalid(
                "STRIPE_SECRET_KEY",
                "is needed when STRIPE_WEBHOOK_SECRET is set",
            ));
        }
        return Ok(PaymentSettings::Manual);
    };
    if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
        return Err(invalid(
            "STRIPE_SECRET_KEY",
            "must be a Stripe secret key (sk_...) or restricted key (rk_...)",
        ));
    }
    let webhook_secret = var("STRIPE_WEBHOOK_SECRET")
        .ok_or_else(|| invalid("STRIPE_WEBHOOK_SECRET", "is needed with STRIPE_SECRET_KEY"))?;
    if !webhook_secret.starts_with("whsec_") {
        return Err(invalid(
            "STRIPE_WEBHOOK_SECRET",
            "must be the endpoint's signing secret (whsec_...)",
        ));
    }
    let api_base = var("STRIPE_API_BASE")
        .unwrap_or_else(|| "https://api.stripe.com".into())
        .trim_end_matches('/')
        .to_string();
    let plain_ok = !production;
    let origin_ok = match api_base.split_once("://") {
        Some(("https", rest)) | Some(("http", rest)) if !rest.is_empty() && !rest.contains('/') => {
            api_base.starts_with("https://") || plain_ok
        }
        _ => false,
    };
    if !origin_ok {
        return Err(invalid(
            "STRIPE_API_BASE",
            "must be an origin like https://api.stripe.com (no path; http:// only outside production)",
        ));
    }
    Ok(PaymentSettings::Stripe(StripeSettings {
        secret_key: Secret::new(secret_key),
        webhook_secret: Secret::new(webhook_secret),
        api_base,
        payment_timeout: duration_var(var, "PAYMENT_TIMEOUT", Duration::from_secs(30 * 60))?,
    }))
}

fn mail_settings(var: Var, port: u16) -> Result<MailSettings, ConfigError> {
    let smtp_url = var("SMTP_URL");
    if let Some(url) = &smtp_url
        && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
    {
        return Err(invalid(
            "SMTP_URL",
            "must be smtp://HOST:PORT (plain or with ?tls=required) or smtps://HOST:PORT",
        ));
    }
    let from =
        var("MAIL_FROM").unwrap_or_else(|| "Storefront <no-reply@storefront.invalid>".into());
    let address = from
        .rsplit_once('<')
        .map_or(from.as_str(), |(_, rest)| rest.trim_end_matches('>'));
    if crate::domain::Email::parse(address).is_err() {
        return Err(invalid(
            "MAIL_FROM",
            "must be an address or `Name <address>`",
        ));
    }
    if smtp_url.is_some() && var("MAIL_FROM").is_none() {
        return Err(invalid("MAIL_FROM", "is needed with SMTP_URL"));
    }
    let public_url = var("PUBLIC_URL")
        .unwrap_or_else(|| format!("http://localhost:{port}"))
        .trim_end_matches('/')
        .to_string();
    if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
        return Err(invalid("PUBLIC_URL", "must be an http:// or https:// URL"));
    }
    Ok(MailSettings {
        smtp_url: smtp_url.map(Secret::new),
        from,
        store_name: var("STORE_NAME").unwrap_or_else(|| "Storefront".into()),
        public_url,
    })
}

/// `/metrics` listens on a port of its own (Fly's `[metrics]` scrapes it over the private network).
fn metrics_port(var: Var, port: u16) -> Result<u16, ConfigError> {
    let metrics_port = match var("METRICS_PORT") {
        None => DEFAULT_METRICS_PORT,
        Some(v) => v
            .parse()
            .map_err(|_| invalid("METRICS_PORT", "must be a port number (0-65535)"))?,
    };
    if metrics_port != 0 && metrics_port == port {
        return Err(invalid("METRICS_PORT", "must differ from PORT"));
    }
    Ok(metrics_port)
}

/// The signing secret, and whether it was generated for this run (development only).
fn jwt_secret(var: Var, production: bool) -> Result<(Secret, bool), ConfigError> {
    match var("JWT_SECRET") {
        Some(v) if v.len() >= MIN_JWT_SECRET_BYTES => Ok((Secret::new(v), false)),
        Some(_) => Err(invalid(
            "JWT_SECRET",
            format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
        )),
        None if production => Err(invalid(
            "JWT_SECRET",
            format!(
                "APP_ENV=production needs a JWT_SECRET of at least {MIN_JWT_SECRET_BYTES} bytes"
            ),
        )),
        None => Ok((Secret::new(random_secret()), true)),
    }
}

struct TokenLifetimes {
    access: Duration,
    refresh: Duration,
    reuse_grace: Duration,
}

fn token_lifetimes(var: Var) -> Result<TokenLifetimes, ConfigError> {
    let access = duration_var(var, "ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?;
    let refresh = duration_var(
        var,
        "REFRESH_TOKEN_TTL",
        Duration::from_secs(30 * 24 * 3600),
    )?;
    if refresh <= access {
        return Err(invalid(
            "REFRESH_TOKEN_TTL",
            "must be longer than ACCESS_TOKEN_TTL",
        ));
    }
    // 0 turns the grace window off: every reuse of a refresh token ends its session.
    let reuse_grace = match var("REFRESH_REUSE_GRACE").as_deref() {
        Some("0" | "0s") => Duration::ZERO,
        _ => duration_var(var, "REFRESH_REUSE_GRACE", Duration::from_secs(10))?,
    };
    if reuse_grace > Duration::from_secs(120) {
        return Err(invalid(
            "REFRESH_REUSE_GRACE",
            "must be at most 2m: a stolen refresh token is honoured for that long after each refresh",
        ));
    }
    Ok(TokenLifetimes {
        access,
        refresh,
        reuse_grace,
    })
}

fn cors_origins(var: Var) -> Result<Vec<String>, ConfigError> {
    match var("CORS_ORIGINS") {
        None => Ok(Vec::new()),
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| validate_origin(o).map(|()| o.trim_end_matches('/').to_string()))
            .collect(),
    }
}

fn cookie_settings(var: Var, production: bool) -> Result<CookieSettings, ConfigError> {
    let secure = bool_var(var, "COOKIE_SECURE", production)?;
    let same_site = choice_var(
        var,
        "COOKIE_SAMESITE",
        &[
            ("lax", SameSite::Lax),
            ("strict", SameSite::Strict),
            ("none", SameSite::None),
        ],
    )?;
    if same_site == SameSite::None && !secure {
        return Err(invalid(
            "COOKIE_SAMESITE",
            "SameSite=None needs COOKIE_SECURE=true (browsers drop such cookies otherwise)",
        ));
    }
    Ok(CookieSettings { secure, same_site })
}

fn logging(var: Var) -> Result<(LogFormat, String), ConfigError> {
    let format = choice_var(
        var,
        "LOG_FORMAT",
        &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
    )?;
    // The embedded engine's own INFO lines (datastore start-up, tasks) and poem's per-listener
    // "listening"/"server started" are noise beside the one start-up line (`app`): those crates log
    // warnings and errors only, unless RUST_LOG names them.
    const QUIET: &str = "surrealdb=warn,surrealkv=warn,poem::server=warn";
    let filter = match var("RUST_LOG") {
        None => format!("info,{QUIET}"),
        Some(filter) if filter.contains("surreal") || filter.contains("poem") => filter,
        Some(filter) => format!("{filter},{QUIET}"),
    };
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| invalid("RUST_LOG", e.to_string()))?;
    Ok((format, filter))
}

/// Failed sign-ins allowed per minute for one email: from one address, and from all of them.
fn email_login_limits(var: Var) -> Result<(u64, u64), ConfigError> {
    let per_email = count_var(var, "LOGIN_LIMIT_PER_EMAIL", 10)?;
    let per_email_global = count_var(var, "LOGIN_LIMIT_PER_EMAIL_GLOBAL", 100)?;
    if per_email_global < per_email {
        // Then one address would exhaust the ceiling and lock the owner out everywhere.
        return Err(invalid(
            "LOGIN_LIMIT_PER_EMAIL_GLOBAL",
            "must be at least LOGIN_LIMIT_PER_EMAIL",
        ));
    }
    Ok((per_email, per_email_global))
}

fn admin_email(var: Var) -> Result<Option<crate::domain::Email>, ConfigError> {
    var("STOREFRONT_ADMIN_EMAIL")
        .map(|v| {
            crate::domain::Email::parse(&v).map_err(|_| {
                invalid(
                    "STOREFRONT_ADMIN_EMAIL",
                    format!("`{v}` is not an email address"),
                )
            })
        })
        .transpose()
}

/// The password `storefront create-admin` gives a new admin, when set.
pub fn admin_password_from_env() -> Option<Secret> {
    std::env::var("STOREFRONT_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret::new)
}

fn default_surreal_url() -> String {
    // SurrealKV wants an absolute path in the URL; resolve `./data` against the working directory.
    let path = std::env::current_dir()
        .map(|dir| dir.join(DEFAULT_SURREAL_PATH.trim_start_matches("./")))
        .unwrap_or_else(|_| DEFAULT_SURREAL_PATH.into());
    format!("surrealkv://{}", path.display())
}

fn validate_surreal_url(url: &str) -> Result<(), ConfigError> {
    const SCHEMES: [&str; 4] = ["mem://", "surrealkv://", "ws://", "wss://"];
    if url == "mem://"
        || SCHEMES
            .iter()
            .any(|s| url.starts_with(s) && url.len() > s.len())
    {
        Ok(())
    } else {
        Err(invalid(
            "SURREAL_URL",
            format!("`{url}` must be mem://, surrealkv://PATH, ws://HOST:PORT or wss://HOST:PORT"),
        ))
    }
}

fn validate_origin(origin: &str) -> Result<(), ConfigError> {
    if origin == "*" {
        return Err(invalid(
            "CORS_ORIGINS",
            "`*` cannot be combined with credentials; list each origin",
        ));
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', ' ']) => Ok(()),
        _ => Err(invalid(
            "CORS_ORIGINS",
            format!("`{origin}` is not an origin like https://shop.example.com"),
        )),
    }
}

fn bool_var(var: Var, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(invalid(name, format!("`{other}` is not true or false"))),
    }
}

fn count_var(var: Var, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(name, format!("`{v}` is not a positive whole number"))),
    }
}

fn duration_var(var: Var, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => parse_duration(&v).ok_or_else(|| {
            invalid(
                name,
                format!("`{v}` is not a duration like 90s, 15m, 12h or 30d"),
            )
        }),
    }
}

/// Parses `90s`, `15m`, `12h`, `30d` (a positive whole number and one unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn random_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 48] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn development_defaults_generate_a_secret() {
        let s = settings(&[]).unwrap();
        assert!(s.jwt_secret_generated);
        assert!(s.jwt_secret.expose().len() >= MIN_JWT_SECRET_BYTES);
        assert_eq!(s.port, 8080);
        assert_eq!(s.metrics_port, DEFAULT_METRICS_PORT);
        assert_eq!(
            s.log_filter,
            "info,surrealdb=warn,surrealkv=warn,poem::server=warn"
        );
        assert!(s.surreal.url.starts_with("surrealkv:///"));
        assert!(s.seed_catalog);
        assert!(!s.cookies.secure);
    }

    #[test]
    fn production_refuses_to_start_without_a_real_secret() {
        let err = settings(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let err = settings(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let ok = settings(&[("APP_ENV", "production"), ("JWT_SECRET", &"k".repeat(32))]).unwrap();
        assert!(ok.cookies.secure);
        assert!(!ok.seed_catalog);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("HOST", "localhost:1"),
            ("APP_ENV", "staging"),
            ("SURREAL_URL", "postgres://x"),
            ("REDIS_URL", "localhost:6379"),
            ("ACCESS_TOKEN_TTL", "15 minutes"),
            ("CORS_ORIGINS", "*"),
            ("COOKIE_SECURE", "maybe"),
            ("COOKIE_SAMESITE", "none"),
            ("LOG_FORMAT", "xml"),
            ("SEED_CATALOG", "2"),
            ("LOGIN_LIMIT_PER_IP", "0"),
            ("LOGIN_LIMIT_PER_EMAIL", "many"),
            ("LOGIN_LIMIT_PER_EMAIL_GLOBAL", "-5"),
            // Below the per-address limit, one address could exhaust the ceiling for everyone.
            ("LOGIN_LIMIT_PER_EMAIL_GLOBAL", "5"),
            ("STOREFRONT_ADMIN_EMAIL", "boss"),
            ("REFRESH_REUSE_GRACE", "1h"),
            ("REFRESH_REUSE_GRACE", "soon"),
            ("GUEST_CART_TTL", "a week"),
            ("EVENT_STREAMS_MAX", "0"),
            ("METRICS_PORT", "8080"),
            ("METRICS_PORT", "metrics"),
            ("REDIS_URL", "rediss://"),
            ("SURREAL_CA_FILE", "/etc/ssl/certs/ca-certificates.crt"),
            ("REDIS_CA_FILE", "/etc/ssl/certs/ca-certificates.crt"),
            ("MEDIA_URL", "ftp://host/x"),
            ("MEDIA_URL", "s3://"),
            ("STRIPE_SECRET_KEY", "pk_live_123"),
            ("SMTP_URL", "mail.example.com:25"),
            ("MAIL_FROM", "not an address"),
            ("PUBLIC_URL", "shop.example.com"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value} gave {err}");
        }
    }

    #[test]
    fn stripe_needs_both_secrets_and_an_origin() {
        let stripe = |extra: &[(&str, &str)]| {
            let mut vars = vec![("STRIPE_SECRET_KEY", "sk_test_1")];
            vars.extend_from_slice(extra);
            settings(&vars)
        };
        let err = stripe(&[]).unwrap_err();
        assert_eq!(err.variable, "STRIPE_WEBHOOK_SECRET");
        let err = settings(&[("STRIPE_WEBHOOK_SECRET", "whsec_1")]).unwrap_err();
        assert_eq!(err.variable, "STRIPE_SECRET_KEY", "a webhook secret alone");
        let err = stripe(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
            ("PAYMENT_TIMEOUT", "half an hour"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "PAYMENT_TIMEOUT");
        let err = stripe(&[("STRIPE_WEBHOOK_SECRET", "secret")]).unwrap_err();
        assert_eq!(err.variable, "STRIPE_WEBHOOK_SECRET");
        for base in ["api.stripe.com", "https://api.stripe.com/v1", "ftp://x"] {
            let err = stripe(&[
                ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
                ("STRIPE_API_BASE", base),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "STRIPE_API_BASE", "{base}");
        }
        let ok = stripe(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
            ("STRIPE_API_BASE", "http://127.0.0.1:8420/"),
            ("PAYMENT_TIMEOUT", "90s"),
        ])
        .unwrap();
        let PaymentSettings::Stripe(s) = ok.payments else {
            panic!("stripe settings");
        };
        assert_eq!(s.api_base, "http://127.0.0.1:8420");
        assert_eq!(s.payment_timeout, Duration::from_secs(90));
        assert!(matches!(
            settings(&[]).unwrap().payments,
            PaymentSettings::Manual
        ));
    }

    #[test]
    fn an_s3_media_url_needs_credentials() {
        let err = settings(&[("MEDIA_URL", "s3://images")]).unwrap_err();
        assert_eq!(err.variable, "AWS_ACCESS_KEY_ID");
        let err =
            settings(&[("MEDIA_URL", "s3://images"), ("AWS_ACCESS_KEY_ID", "k")]).unwrap_err();
        assert_eq!(err.variable, "AWS_SECRET_ACCESS_KEY");
        let ok = settings(&[
            ("MEDIA_URL", "s3://images/shop/"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ])
        .unwrap();
        assert!(matches!(
            ok.media,
            MediaSettings::S3 { ref bucket, ref prefix, .. } if bucket == "images" && prefix == "shop"
        ));
    }

    #[test]
    fn ca_files_are_read_and_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("storefront-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let missing = dir.join("missing.pem");
        for (url_var, url, ca_var) in [
            ("SURREAL_URL", "wss://db.example.com", "SURREAL_CA_FILE"),
            ("REDIS_URL", "rediss://cache.example.com", "REDIS_CA_FILE"),
        ] {
            for path in [&not_pem, &garbled, &missing] {
                let err =
                    settings(&[(url_var, url), (ca_var, path.to_str().unwrap())]).unwrap_err();
                assert_eq!(err.variable, ca_var, "{}: {err}", path.display());
            }
            // A plain-text URL with a CA file is a mistake, named after the CA variable.
            let plain = url
                .replace("wss://", "ws://")
                .replace("rediss://", "redis://");
            let err =
                settings(&[(url_var, &plain), (ca_var, not_pem.to_str().unwrap())]).unwrap_err();
            assert_eq!(err.variable, ca_var);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("-1m"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = settings(&[("JWT_SECRET", &"p".repeat(40))]).unwrap();
        assert!(!format!("{s:?}").contains(&"p".repeat(40)));
    }
}
