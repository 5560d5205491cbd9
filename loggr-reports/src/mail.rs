//! Sending a rendered report by e-mail: [`MailConfig`] (the `[mail]` table) and [`Mailer`],
//! SMTP through lettre, with optional STARTTLS (rustls, the webpki roots).
//!
//! Every message has `From`, `To`, `Cc` (when there are copies), the subject rendered from
//! its template, `Precedence: bulk` (auto-responders stay quiet), `Auto-Submitted:
//! auto-generated`, and a `text/plain; charset=utf-8` body. **Header injection is
//! impossible**: a CR or LF in any header value (an address, the rendered subject, the
//! configured one) is refused with [`MailError::HeaderInjection`] before anything is sent.

use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::ReportError;

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// Plain SMTP (a local relay; the default).
    #[default]
    Never,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// STARTTLS or no delivery.
    Required,
}

/// The `[mail]` table: the SMTP server and the defaults of reports sent by mail.
///
/// ```toml
/// [mail]
/// server = "smtp.example.org"
/// port = 587
/// starttls = "required"
/// from = "loggr <loggr@example.org>"
/// to = ["ops@example.org"]
/// subject = "[loggr] {{ params.name }} {{ params.start_local }}"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server's host name (also the TLS server name).
    pub server: String,
    /// Its port (default 25).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `never` (default), `opportunistic` or `required`.
    #[serde(default)]
    pub starttls: StartTls,
    /// The user name to authenticate with (with `password`; none by default).
    #[serde(default)]
    pub username: Option<String>,
    /// The password.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, `name <address>` or `address`.
    pub from: String,
    /// The recipients of every report sent by mail (a report may set its own).
    #[serde(default)]
    pub to: Vec<String>,
    /// The copy recipients (a report may set its own).
    #[serde(default)]
    pub cc: Vec<String>,
    /// The subject, a template with the report's `params` (default
    /// `[loggr] {{ params.name }} report, {{ params.start_local }} to {{ params.end_local }}`).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// How long an SMTP command may take (default `60s`).
    #[serde(default = "default_timeout")]
    pub timeout: jiff::SignedDuration,
}

fn default_port() -> u16 {
    25
}

fn default_subject() -> String {
    "[loggr] {{ params.name }} report, {{ params.start_local }} to {{ params.end_local }}".into()
}

fn default_timeout() -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(60)
}

impl MailConfig {
    /// A plain-SMTP configuration with the defaults.
    pub fn new(server: impl Into<String>, port: u16, from: impl Into<String>) -> Self {
        MailConfig {
            server: server.into(),
            port,
            starttls: StartTls::Never,
            username: None,
            password: None,
            from: from.into(),
            to: Vec::new(),
            cc: Vec::new(),
            subject: default_subject(),
            timeout: default_timeout(),
        }
    }

    /// Checks the addresses parse and no header value holds a line break.
    ///
    /// # Errors
    ///
    /// [`ReportError::Mail`].
    pub fn check(&self) -> Result<(), ReportError> {
        mailbox("from", &self.from)?;
        for address in &self.to {
            mailbox("to", address)?;
        }
        for address in &self.cc {
            mailbox("cc", address)?;
        }
        check_header("subject", &self.subject)?;
        if self.username.is_some() != self.password.is_some() {
            return Err(ReportError::Mail(MailError::Credentials));
        }
        Ok(())
    }
}

/// A report could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A header value holds a CR or LF.
    #[error("header `{header}` holds a line break (header injection refused)")]
    HeaderInjection {
        /// The header.
        header: String,
    },
    /// An address does not parse.
    #[error("bad address `{address}` in `{header}`")]
    Address {
        /// The header.
        header: String,
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: lettre::address::AddressError,
    },
    /// `username` without `password` or the other way round.
    #[error("`username` and `password` go together")]
    Credentials,
    /// No recipient.
    #[error("no recipient")]
    NoRecipient,
    /// The message could not be built.
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
    /// The TLS parameters could not be built.
    #[error("cannot set up TLS for {server}")]
    Tls {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The SMTP server refused the message or could not be reached.
    #[error("SMTP delivery through {server} failed")]
    Smtp {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

impl MailError {
    /// Whether trying again later may succeed (the server was unreachable or answered with
    /// a transient 4xx code).
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp { source, .. } => !source.is_permanent(),
            _ => false,
        }
    }
}

/// Refuses a header value with a CR or LF.
///
/// # Errors
///
/// [`MailError::HeaderInjection`].
pub fn check_header(header: &str, value: &str) -> Result<(), MailError> {
    if value.contains(['\r', '\n']) {
        return Err(MailError::HeaderInjection {
            header: header.to_owned(),
        });
    }
    Ok(())
}

fn mailbox(header: &str, address: &str) -> Result<Mailbox, MailError> {
    check_header(header, address)?;
    address.parse().map_err(|source| MailError::Address {
        header: header.to_owned(),
        address: address.to_owned(),
        source,
    })
}

/// The `Precedence` header (`bulk`): not in lettre's set.
#[derive(Clone, Debug)]
struct Precedence(String);

impl Header for Precedence {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Precedence")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Precedence(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The `Auto-Submitted` header (RFC 3834: `auto-generated`).
#[derive(Clone, Debug)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// One message to send.
#[derive(Clone, Debug)]
pub struct Envelope<'a> {
    /// Recipients.
    pub to: &'a [String],
    /// Copy recipients.
    pub cc: &'a [String],
    /// The rendered subject.
    pub subject: &'a str,
    /// The rendered report.
    pub body: &'a str,
}

/// Sends reports through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    config: MailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.config.server)
            .field("port", &self.config.port)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for this configuration (nothing is connected yet).
    ///
    /// # Errors
    ///
    /// A configuration [`MailConfig::check`] refuses, or TLS parameters that cannot be built.
    pub fn new(config: MailConfig) -> Result<Self, ReportError> {
        config.check()?;
        let tls = |server: &str| {
            TlsParameters::new(server.to_owned()).map_err(|source| MailError::Tls {
                server: server.to_owned(),
                source,
            })
        };
        let tls = match config.starttls {
            StartTls::Never => Tls::None,
            StartTls::Opportunistic => Tls::Opportunistic(tls(&config.server)?),
            StartTls::Required => Tls::Required(tls(&config.server)?),
        };
        let timeout = Duration::try_from(config.timeout).unwrap_or(Duration::from_secs(60));
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.server.as_str())
                .port(config.port)
                .tls(tls)
                .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// Builds the message (checking every header value) without sending it.
    ///
    /// # Errors
    ///
    /// [`MailError::HeaderInjection`], a bad address, no recipient.
    pub fn message(&self, envelope: &Envelope<'_>) -> Result<Message, MailError> {
        check_header("subject", envelope.subject)?;
        if envelope.to.is_empty() {
            return Err(MailError::NoRecipient);
        }
        let mut builder = Message::builder()
            .from(mailbox("from", &self.config.from)?)
            .subject(envelope.subject)
            .header(Precedence("bulk".into()))
            .header(AutoSubmitted("auto-generated".into()))
            .header(ContentType::TEXT_PLAIN);
        for address in envelope.to {
            builder = builder.to(mailbox("to", address)?);
        }
        for address in envelope.cc {
            builder = builder.cc(mailbox("cc", address)?);
        }
        builder
            .body(envelope.body.to_owned())
            .map_err(MailError::Build)
    }

    /// Sends one report.
    ///
    /// # Errors
    ///
    /// As [`Mailer::message`], and [`MailError::Smtp`] when the server cannot be reached or
    /// refuses the message.
    pub async fn send(&self, envelope: &Envelope<'_>) -> Result<(), MailError> {
        let message = self.message(envelope)?;
        self.transport
            .send(message)
            .await
            .map_err(|source| MailError::Smtp {
                server: format!("{}:{}", self.config.server, self.config.port),
                source,
            })?;
        tracing::info!(
            server = %self.config.server,
            to = envelope.to.len(),
            cc = envelope.cc.len(),
            "Sent a report"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mailer() -> Mailer {
        Mailer::new(MailConfig::new(
            "127.0.0.1",
            2525,
            "loggr <loggr@example.org>",
        ))
        .unwrap()
    }

    #[test]
    fn line_breaks_in_headers_are_refused() {
        let to = ["ops@example.org".to_owned()];
        for subject in ["a\r\nBcc: x@example.org", "a\nb", "a\rb"] {
            let envelope = Envelope {
                to: &to,
                cc: &[],
                subject,
                body: "x",
            };
            assert!(matches!(
                mailer().message(&envelope),
                Err(MailError::HeaderInjection { .. })
            ));
        }
        let bad_to = ["ops@example.org\r\nBcc: x@example.org".to_owned()];
        let envelope = Envelope {
            to: &bad_to,
            cc: &[],
            subject: "s",
            body: "x",
        };
        assert!(matches!(
            mailer().message(&envelope),
            Err(MailError::HeaderInjection { .. })
        ));
        let mut config = MailConfig::new("127.0.0.1", 25, "loggr@example.org");
        config.subject = "x\ny".into();
        assert!(Mailer::new(config).is_err());
    }

    #[test]
    fn message_has_the_headers() {
        let to = ["ops@example.org".to_owned()];
        let cc = ["boss@example.org".to_owned()];
        let envelope = Envelope {
            to: &to,
            cc: &cc,
            subject: "[loggr] Kernel report",
            body: "line 1\nline 2\n",
        };
        let text = String::from_utf8(mailer().message(&envelope).unwrap().formatted()).unwrap();
        for header in [
            "From: loggr <loggr@example.org>\r\n",
            "To: ops@example.org\r\n",
            "Cc: boss@example.org\r\n",
            "Subject: [loggr] Kernel report\r\n",
            "Precedence: bulk\r\n",
            "Auto-Submitted: auto-generated\r\n",
        ] {
            assert!(text.contains(header), "{header:?} missing in {text}");
        }
        assert!(text.ends_with("line 1\r\nline 2\r\n"), "{text}");
    }
}
