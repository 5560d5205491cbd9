//! [`PostgresSinkConfig`]: the `postgres` sink's TOML table.

use std::time::Duration;

use serde::Deserialize;

use super::PgError;

/// Configuration of the `postgres` sink.
///
/// ```toml
/// [[sinks]]
/// name = "db"
/// type = "postgres"
/// url = "postgresql://loggr@db1/loggr"
/// statement_timeout = "30s"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// The connection string, as libpq takes it: a URL
    /// (`postgresql://user:password@host:port/dbname?application_name=x`) or `key=value` pairs
    /// (`host=db1 user=loggr dbname=loggr`). TLS is not supported: `sslmode=require` fails.
    pub url: String,
    /// How long connecting (TCP, authentication, session setup) may take (default `10s`).
    #[serde(
        default = "default_connect_timeout",
        with = "loggr_core::config::duration"
    )]
    pub connect_timeout: Duration,
    /// The session's `statement_timeout`: a statement running longer is cancelled and the
    /// batch retried (default `60s`; `0s` leaves the server's setting).
    #[serde(
        default = "default_statement_timeout",
        with = "loggr_core::config::duration"
    )]
    pub statement_timeout: Duration,
    /// The `application_name` the sessions show in `pg_stat_activity` (default `loggr`; a
    /// name given in `url` wins).
    #[serde(default = "default_application_name")]
    pub application_name: String,
    /// Create or update the schema when connecting (default `false`: the schema is the
    /// operator's, created by `loggr_ctl init-db`, and a missing one is reported).
    #[serde(default)]
    pub migrate: bool,
    /// Store events PostgreSQL refuses for good in the `quarantine` table and acknowledge them
    /// (default `true`). With `false` they are rejected back to their source instead.
    #[serde(default = "default_true")]
    pub quarantine: bool,
    /// Try to `COPY` each batch straight into `event` (default `true`): the fastest write
    /// while no event of the batch is stored yet. A batch with a stored event (a redelivery)
    /// makes that `COPY` fail and go through the staging table instead (its rows, inserted
    /// then rolled back, leave dead tuples for autovacuum); the sink then stages the next
    /// batches until one holds no stored event. `false`: always stage.
    #[serde(default = "default_true")]
    pub direct_copy: bool,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_statement_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_application_name() -> String {
    "loggr".to_owned()
}

fn default_true() -> bool {
    true
}

impl PostgresSinkConfig {
    /// The defaults, writing to the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresSinkConfig {
            url: url.into(),
            connect_timeout: default_connect_timeout(),
            statement_timeout: default_statement_timeout(),
            application_name: default_application_name(),
            migrate: false,
            quarantine: true,
            direct_copy: true,
        }
    }

    /// The client configuration: `url` with the timeouts and application name applied.
    ///
    /// # Errors
    ///
    /// [`PgError::Url`] when `url` does not parse.
    pub fn client_config(&self) -> Result<tokio_postgres::Config, PgError> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(PgError::Url)?;
        config.connect_timeout(self.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name(&self.application_name);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_keys_are_refused() {
        let config: PostgresSinkConfig =
            toml::from_str(r#"url = "host=127.0.0.1 user=root""#).unwrap();
        assert_eq!(config, PostgresSinkConfig::new("host=127.0.0.1 user=root"));
        let error = toml::from_str::<PostgresSinkConfig>("url = \"x\"\ntabel = \"t\"").unwrap_err();
        assert!(error.to_string().contains("tabel"), "{error}");
        let config: PostgresSinkConfig = toml::from_str(
            "url = \"host=h\"\nstatement_timeout = \"5s\"\nquarantine = false\ndirect_copy = false",
        )
        .unwrap();
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        assert!(!config.quarantine);
        assert!(!config.direct_copy);
    }

    #[test]
    fn a_bad_url_is_a_config_error() {
        let config = PostgresSinkConfig::new("postgresql://host:notaport/db");
        assert!(matches!(config.client_config(), Err(PgError::Url(_))));
        let config = PostgresSinkConfig::new("postgresql://root@127.0.0.1/x?application_name=me");
        let client = config.client_config().unwrap();
        assert_eq!(client.get_application_name(), Some("me"));
        assert_eq!(client.get_connect_timeout(), Some(&Duration::from_secs(10)));
    }
}
