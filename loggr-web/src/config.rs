//! The frontend's TOML configuration: where to listen, the database, the users, what the
//! status page watches.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

pub use crate::status::{ComponentConfig, StatusConfig};

/// The `web_frontend` configuration (TOML).
///
/// ```
/// let config = loggr_web::WebConfig::from_toml_str(r#"
///     database_url = "postgresql://root@127.0.0.1:5432/loggr"
///     [[users]]
///     name = "alice"
///     password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
///     role = "reader"
/// "#).unwrap();
/// assert_eq!(config.listen.port(), 8080);
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The address the HTTP server listens on (default `127.0.0.1:8080`). Put a TLS-terminating
    /// reverse proxy in front of it for anything but localhost.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// loggr's store: a PostgreSQL URL (`postgresql://user:password@host/db`, or libpq
    /// `key=value` pairs) or the path of the embedded SQLite store (`loggr-data/loggr.db`, or
    /// `sqlite:PATH`). Never shown: logs and pages print it with the password redacted.
    pub database_url: String,
    /// Whether the session cookie carries `Secure` (only sent over HTTPS). Default `true`; set
    /// `false` only for plain-HTTP development on localhost.
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
    /// How long a session lasts after login, in seconds (default 8 hours).
    #[serde(default = "default_session_ttl")]
    pub session_ttl_secs: u64,
    /// Events per page of the query page (default 50, at most 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The most events one export (`/events.jsonl`, `/events.csv`) returns (default 10000); an
    /// export that hit the cap carries the header `X-Loggr-Truncated: true`.
    #[serde(default = "default_export_max_rows")]
    pub export_max_rows: u32,
    /// Who may log in.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// What the status page watches besides the store: other daemons' `/metrics`, RabbitMQ
    /// queues, Redis spools (see [`StatusConfig`]). Optional.
    #[serde(default)]
    pub status: StatusConfig,
}

/// One user allowed to log in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name.
    pub name: String,
    /// The password as an argon2 PHC string (`$argon2id$v=19$…`), as printed by
    /// `web_frontend hash-password`. Never shown.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

/// What a user may do.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the operations that change state (none exist yet).
    Admin,
    /// Read-only: query, view and export events, see the status.
    Reader,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_true() -> bool {
    true
}
fn default_session_ttl() -> u64 {
    8 * 3600
}
fn default_page_size() -> u32 {
    50
}
fn default_export_max_rows() -> u32 {
    10_000
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML is malformed or has unknown or missing fields.
    #[error("invalid web frontend configuration")]
    Toml(#[source] toml::de::Error),
    /// A field has a value out of range.
    #[error("invalid web frontend configuration: {field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl WebConfig {
    /// Parses and validates a configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the culprit: TOML syntax, an unknown field, a page size out of
    /// range, a password hash that is not an argon2 PHC string, a duplicate user, a `[status]`
    /// entry that cannot work (a `metrics_url` that is not plain `http://`, queues without
    /// `amqp_url`, an `amqp_url` or `redis_url` without the feature compiled in).
    pub fn from_toml_str(text: &str) -> Result<WebConfig, ConfigError> {
        let config: WebConfig = toml::from_str(text).map_err(ConfigError::Toml)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, reason: &str| ConfigError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if self.page_size == 0 || self.page_size > 1000 {
            return Err(invalid("page_size".into(), "must be 1 to 1000"));
        }
        if self.export_max_rows == 0 {
            return Err(invalid("export_max_rows".into(), "must be at least 1"));
        }
        if self.session_ttl_secs == 0 {
            return Err(invalid("session_ttl_secs".into(), "must be at least 1"));
        }
        if let Err((field, reason)) = self.status.validate() {
            return Err(invalid(field, reason));
        }
        for (i, user) in self.users.iter().enumerate() {
            if argon2::PasswordHash::new(&user.password_hash).is_err()
                || !user.password_hash.starts_with("$argon2")
            {
                return Err(invalid(
                    format!("users[{i}].password_hash"),
                    "not an argon2 PHC string (use `web_frontend hash-password`)",
                ));
            }
            if self.users[..i].iter().any(|u| u.name == user.name) {
                return Err(invalid(format!("users[{i}].name"), "duplicate user"));
            }
        }
        Ok(())
    }
}

pub use loggr_core::config::redact_url;

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("secure_cookies", &self.secure_cookies)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("page_size", &self.page_size)
            .field("export_max_rows", &self.export_max_rows)
            .field("users", &self.users)
            .field("status", &self.status)
            .finish()
    }
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password_hash", &"***")
            .field("role", &self.role)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$bG9nZ3Itd2ViLXRlc3RzIQ$6mVJpN0P0lP2N1Bq9u1oKQ";

    #[test]
    fn validates_and_never_prints_secrets() {
        let good = format!(
            "database_url = \"postgresql://u:pw@h/db\"\n[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nrole = \"admin\"\n"
        );
        let config = WebConfig::from_toml_str(&good).unwrap();
        assert!(config.secure_cookies, "secure by default");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("pw@") && !debug.contains("argon2"),
            "{debug}"
        );
        let unknown = format!("{good}colour = 1\n");
        assert!(WebConfig::from_toml_str(&unknown).is_err());
        let bad_hash = good.replace(HASH, "plaintext");
        assert!(matches!(
            WebConfig::from_toml_str(&bad_hash),
            Err(ConfigError::Invalid { field, .. }) if field == "users[0].password_hash"
        ));
        let bad_role = good.replace("\"admin\"", "\"root\"");
        assert!(WebConfig::from_toml_str(&bad_role).is_err());
        let twice = format!(
            "{good}[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nrole = \"reader\"\n"
        );
        assert!(WebConfig::from_toml_str(&twice).is_err());
    }

    #[test]
    fn the_bundled_example_configuration_is_valid() {
        let text = include_str!("../../examples/config/web_frontend.toml");
        let text = loggr_core::config::interpolate(text, |name| {
            (name == "LOGGR_WEB_ADMIN_HASH").then(|| HASH.to_owned())
        })
        .unwrap();
        let config = WebConfig::from_toml_str(&text).unwrap();
        assert_eq!(config.status.components.len(), 4);
    }

    #[test]
    fn validates_the_status_table() {
        let base = "database_url = \"x.db\"\n[status]\n";
        let good = format!(
            "{base}components = [{{ name = \"a\", metrics_url = \"http://127.0.0.1:9/metrics\" }}]\n"
        );
        let config = WebConfig::from_toml_str(&good).unwrap();
        assert_eq!(config.status.components.len(), 1);
        assert_eq!(config.status.probe_timeout_ms, 2000);
        let https = good.replace("http://", "https://");
        assert!(matches!(
            WebConfig::from_toml_str(&https),
            Err(ConfigError::Invalid { field, .. }) if field == "status.components[0].metrics_url"
        ));
        let orphan = format!("{base}queues = [\"q\"]\n");
        assert!(matches!(
            WebConfig::from_toml_str(&orphan),
            Err(ConfigError::Invalid { field, .. }) if field == "status.queues"
        ));
        let unknown = format!("{base}colour = 1\n");
        assert!(WebConfig::from_toml_str(&unknown).is_err());
        let redis = format!("{base}redis_url = \"redis://:sekrit@127.0.0.1/\"\n");
        let parsed = WebConfig::from_toml_str(&redis);
        assert_eq!(parsed.is_ok(), cfg!(feature = "redis"), "{parsed:?}");
        if let Ok(config) = parsed {
            assert!(!format!("{config:?}").contains("sekrit"));
        }
    }
}
