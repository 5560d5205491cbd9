//! Routing keys made from events: `loggr.{app_name}`, `logs.{hostname}.{severity}`,
//! `audit.{fields.tenant}`.

use std::fmt::Write as _;

use loggr_core::{Event, Value};

/// A piece of a routing key template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Hostname,
    AppName,
    Procid,
    Msgid,
    Facility,
    Severity,
    Field(String),
}

/// A routing key template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("routing key `{0}`: `{{` without a closing `}}`")]
    Unclosed(String),
    /// A placeholder that names nothing loggr knows.
    #[error(
        "routing key `{template}`: unknown placeholder `{{{name}}}` (known: hostname, app_name, \
         procid, msgid, facility, severity, fields.NAME)"
    )]
    Unknown {
        /// The template.
        template: String,
        /// The placeholder.
        name: String,
    },
}

/// A parsed routing key template.
///
/// Placeholders: `{hostname}`, `{app_name}`, `{procid}`, `{msgid}`, `{facility}` and
/// `{severity}` (their names, e.g. `auth`, `warning`), `{fields.NAME}` (a field's value). A
/// missing or empty value is replaced by the default; dots in values become `_`, so that each
/// placeholder stays one word of a topic routing key. A key longer than AMQP's 255 bytes is cut
/// (at a character boundary) when published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKey {
    parts: Vec<Part>,
    default: String,
}

impl RoutingKey {
    /// Parses `template`; `default` stands in for missing values.
    ///
    /// # Errors
    ///
    /// An unclosed `{` or an unknown placeholder.
    pub fn parse(template: &str, default: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(template.to_owned()))?;
            let name = after[..close].trim();
            parts.push(match name {
                "hostname" => Part::Hostname,
                "app_name" => Part::AppName,
                "procid" => Part::Procid,
                "msgid" => Part::Msgid,
                "facility" => Part::Facility,
                "severity" => Part::Severity,
                _ => match name.strip_prefix("fields.") {
                    Some(field) if !field.is_empty() => Part::Field(field.to_owned()),
                    _ => {
                        return Err(TemplateError::Unknown {
                            template: template.to_owned(),
                            name: name.to_owned(),
                        })
                    }
                },
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(RoutingKey {
            parts,
            default: default.to_owned(),
        })
    }

    /// The key when it does not depend on the event.
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Writes the key of `event` into `out` (cleared first).
    pub fn render(&self, event: &Event, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Hostname => self.push_value(out, event.hostname.as_deref()),
                Part::AppName => self.push_value(out, event.app_name.as_deref()),
                Part::Procid => self.push_value(out, event.procid.as_deref()),
                Part::Msgid => self.push_value(out, event.msgid.as_deref()),
                Part::Facility => out.push_str(event.facility.name()),
                Part::Severity => out.push_str(event.severity.name()),
                Part::Field(name) => match event.field(name) {
                    Some(Value::String(text)) => self.push_value(out, Some(text)),
                    Some(Value::List(_)) | None => self.push_value(out, None),
                    Some(other) => {
                        let start = out.len();
                        let _ = write!(out, "{other}");
                        sanitize_from(out, start);
                    }
                },
            }
        }
    }

    fn push_value(&self, out: &mut String, value: Option<&str>) {
        match value.filter(|v| !v.is_empty()) {
            Some(value) => {
                let start = out.len();
                out.push_str(value);
                sanitize_from(out, start);
            }
            None => out.push_str(&self.default),
        }
    }
}

/// Dots would split a value into several words of a topic routing key.
fn sanitize_from(out: &mut String, start: usize) {
    if out[start..].contains('.') {
        let fixed = out[start..].replace('.', "_");
        out.truncate(start);
        out.push_str(&fixed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loggr_core::Severity;

    fn render(template: &str, event: &Event) -> String {
        let key = RoutingKey::parse(template, "unknown").unwrap();
        let mut out = String::new();
        key.render(event, &mut out);
        out
    }

    #[test]
    fn placeholders_are_filled_and_missing_values_defaulted() {
        let mut event = Event::new("m");
        event.app_name = Some("sshd".into());
        event.hostname = Some("web1.example.com".into());
        event.severity = Severity::Warning;
        event.set_field("tenant", "acme");
        event.set_field("port", 514i64);
        assert_eq!(render("loggr.{app_name}", &event), "loggr.sshd");
        assert_eq!(
            render("logs.{hostname}.{severity}", &event),
            "logs.web1_example_com.warning"
        );
        assert_eq!(
            render("audit.{fields.tenant}.{fields.port}", &event),
            "audit.acme.514"
        );
        assert_eq!(
            render("x.{procid}.{fields.nope}", &event),
            "x.unknown.unknown"
        );
        assert_eq!(render("{ msgid }", &Event::new("m")), "unknown");
    }

    #[test]
    fn constants_are_recognised_and_bad_templates_refused() {
        assert_eq!(
            RoutingKey::parse("loggr.events", "x").unwrap().constant(),
            Some("loggr.events")
        );
        assert_eq!(RoutingKey::parse("", "x").unwrap().constant(), Some(""));
        assert_eq!(
            RoutingKey::parse("a.{hostname}", "x").unwrap().constant(),
            None
        );
        assert!(matches!(
            RoutingKey::parse("a.{hostname", "x"),
            Err(TemplateError::Unclosed(_))
        ));
        let error = RoutingKey::parse("a.{host}", "x").unwrap_err();
        assert!(
            error.to_string().contains("unknown placeholder `{host}`"),
            "{error}"
        );
        assert!(RoutingKey::parse("a.{fields.}", "x").is_err());
    }
}
