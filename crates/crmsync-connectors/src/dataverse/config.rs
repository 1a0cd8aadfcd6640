//! The configuration of a Dataverse Web API connector, and the checks of the server URL
//! (SPEC §6.9).
//!
//! Invariants:
//! - secrets ([`Secret`]) never print: `Debug` shows `[redacted]`, and there is no `Display`;
//! - unknown fields are an error (`deny_unknown_fields`), so a typo never silently falls back
//!   to a default;
//! - a URL is accepted only with the `http` or `https` scheme and, unless
//!   `allow_private_urls`, only when its host is not a loopback, private, link-local,
//!   unspecified or cloud-metadata address. Literal IP hosts are checked here; host names are
//!   checked on every connection by the connector's DNS resolver (so a name that later
//!   resolves to a private address is refused too), see [`is_public_ip`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crmsync_sync::SyncError;
use reqwest::Url;
use serde::{Deserialize, Deserializer};

/// The Web API version the connector speaks.
pub const API_PATH: &str = "api/data/v9.2/";

/// Which kind of server the connector talks to. Both speak the Dataverse Web API; they differ
/// in authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Another crmsync organization (`http://host/{org}`): Basic or its own token endpoint.
    Crmsync,
    /// Dynamics 365 / Dataverse (`https://x.crm.dynamics.com`): OAuth2 with Microsoft Entra ID.
    Dynamics,
}

/// A secret (password, client secret, access token) that never prints.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the connector signs in.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// HTTP Basic on every request (crmsync servers only).
    Basic { user: String, password: Secret },
    /// OAuth2 resource owner password grant.
    ///
    /// For `dynamics`, `client_id` is the Entra ID application (default: the public client
    /// Microsoft documents for Dataverse samples) and `token_url` defaults to the
    /// `organizations` tenant endpoint. For `crmsync`, `token_url` defaults to
    /// `{url}/oauth2/token` and `client_id` is not needed.
    Password {
        user: String,
        password: Secret,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        token_url: Option<String>,
    },
    /// OAuth2 client credentials grant (an application user in Dataverse).
    /// `token_url` defaults to `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    ClientCredentials {
        #[serde(default)]
        tenant_id: Option<String>,
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        token_url: Option<String>,
    },
}

/// Everything a [`crate::DataverseConnector`] needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataverseConfig {
    /// The server org's base URL: `http://host/{org}` for crmsync,
    /// `https://x.crm.dynamics.com` for Dynamics. The Web API is `{url}/api/data/v9.2/`.
    pub url: String,
    /// The kind of server.
    pub backend: Backend,
    /// How to sign in.
    pub credentials: Credentials,
    /// Timeout of one HTTP request, in seconds in serialized form (default 100, as
    /// Dataverse's own client uses).
    #[serde(default = "default_timeout", deserialize_with = "seconds")]
    pub timeout: Duration,
    /// Retries of a request that failed with a retryable error (network, 5xx, 429); 0 turns
    /// retries off (default 5).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Accept server URLs on loopback, private and link-local addresses (tests, the demo and
    /// servers on the same network). Off by default.
    #[serde(default)]
    pub allow_private_urls: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(100)
}

fn default_max_retries() -> u32 {
    5
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(serde::de::Error::custom("timeout must be 0 < seconds <= 3600"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl DataverseConfig {
    /// A configuration with the defaults for timeout, retries and private URLs.
    pub fn new(url: impl Into<String>, backend: Backend, credentials: Credentials) -> Self {
        Self {
            url: url.into(),
            backend,
            credentials,
            timeout: default_timeout(),
            max_retries: default_max_retries(),
            allow_private_urls: false,
        }
    }

    /// The org's base URL, checked, always ending with `/`.
    pub fn base_url(&self) -> Result<Url, SyncError> {
        let mut url = check_url(&self.url, self.allow_private_urls)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(SyncError::Invalid(format!(
                "the server URL '{}' must not have a query or fragment",
                self.url
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// `{url}/api/data/v9.2/`.
    pub fn api_url(&self) -> Result<Url, SyncError> {
        self.base_url()?
            .join(API_PATH)
            .map_err(|e| SyncError::Invalid(format!("invalid server URL '{}': {e}", self.url)))
    }
}

/// Parses `raw` and checks its scheme and, for literal IP hosts, its address.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, SyncError> {
    let url =
        Url::parse(raw.trim()).map_err(|e| SyncError::Invalid(format!("invalid server URL '{raw}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SyncError::Invalid(format!(
            "the server URL '{raw}' must use http or https"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SyncError::Invalid(
            "the server URL must not contain credentials; use the credentials settings".into(),
        ));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(SyncError::Invalid(format!("the server URL '{raw}' has no host")));
    };
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if let Some(ip) = ip
        && !allow_private
        && !is_public_ip(ip)
    {
        return Err(refused(&ip.to_string()));
    }
    Ok(url)
}

/// The error of a refused address; names the setting that allows it.
pub fn refused(host: &str) -> SyncError {
    SyncError::Invalid(format!(
        "the server address {host} is a loopback, private, link-local or metadata address; \
         allow private URLs to use it"
    ))
}

/// Whether `ip` is an address a server URL may point at without `allow_private_urls`:
/// not loopback, private (RFC 1918, unique local), shared (100.64/10), link-local (this
/// covers the 169.254.169.254 metadata service), unspecified, broadcast, multicast or
/// documentation. IPv4-mapped IPv6 addresses are judged as their IPv4 address.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["20.42.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_need_http_and_a_public_literal_address() {
        assert!(check_url("https://contoso.crm.dynamics.com", false).is_ok());
        assert!(check_url("http://example.com/acme", false).is_ok());
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/acme",
            "http://[::1]/acme",
            "http://169.254.169.254/latest",
            "http://user:pw@example.com/acme",
            "not a url",
        ] {
            assert!(
                matches!(check_url(bad, false), Err(SyncError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(check_url("http://127.0.0.1:8080/acme", true).is_ok());
    }

    #[test]
    fn config_reads_strictly_and_hides_secrets() {
        let json = r#"{"url":"https://x.crm.dynamics.com","backend":"dynamics",
            "credentials":{"kind":"client_credentials","tenant_id":"t","client_id":"c","client_secret":"s3cret"},
            "timeout":30}"#;
        let config: DataverseConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_retries, 5);
        assert!(!config.allow_private_urls);
        assert!(!format!("{config:?}").contains("s3cret"));
        let typo = json.replace("\"timeout\"", "\"timeuot\"");
        assert!(serde_json::from_str::<DataverseConfig>(&typo).is_err());
        let inner = json.replace("\"tenant_id\"", "\"tenant\"");
        assert!(serde_json::from_str::<DataverseConfig>(&inner).is_err());
        assert_eq!(
            config.api_url().unwrap().as_str(),
            "https://x.crm.dynamics.com/api/data/v9.2/"
        );
        let crm = DataverseConfig::new(
            "http://example.com/acme",
            Backend::Crmsync,
            Credentials::Basic {
                user: "u".into(),
                password: Secret::new("p"),
            },
        );
        assert_eq!(
            crm.api_url().unwrap().as_str(),
            "http://example.com/acme/api/data/v9.2/"
        );
    }
}
