//! The `useragent` filter: browser, version, operating system and category from a user-agent
//! string, with the `woothee` crate (a compact, dependency-free rule set maintained across
//! several languages; fast enough for the hot path).
//!
//! Sets `browser`, `browser_version`, `browser_os`, `browser_os_version`, `browser_category`
//! (`pc`, `smartphone`, `mobilephone`, `appliance`, `crawler`, `misc`) and `browser_vendor`
//! (each under an optional prefix), and tags crawlers `bot`. A missing field or an unknown
//! agent tags the event `_useragent_failure` and changes nothing else.
//!
//! ```toml
//! [[filters]]
//! type = "useragent"
//! source = "agent"      # the field holding the user-agent string
//! ```

use serde::Deserialize;

use loggr_core::{BoxError, BuildContext, Event, Filter, FilterConfig, FilterError, Text, Verdict};

/// The tag of an event whose agent could not be read.
pub const FAILURE_TAG: &str = "_useragent_failure";

/// Configuration of the `useragent` filter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAgentConfig {
    /// The field holding the user-agent string (default `user_agent`).
    #[serde(default = "default_source")]
    pub source: String,
    /// A prefix for the fields it sets (default none).
    #[serde(default)]
    pub prefix: String,
}

fn default_source() -> String {
    "user_agent".into()
}

/// Parses user agents.
#[derive(Debug)]
pub struct UserAgent {
    source: Text,
    names: [Text; 6],
}

impl UserAgent {
    /// A filter reading `source`, writing fields under `prefix`.
    pub fn new(source: &str, prefix: &str) -> Self {
        let name = |field: &str| Text::from(format!("{prefix}{field}"));
        UserAgent {
            source: Text::from(source),
            names: [
                name("browser"),
                name("browser_version"),
                name("browser_os"),
                name("browser_os_version"),
                name("browser_category"),
                name("browser_vendor"),
            ],
        }
    }
}

impl Filter for UserAgent {
    fn name(&self) -> &str {
        "useragent"
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        let parsed = event
            .field(&self.source)
            .and_then(|value| value.as_str())
            .and_then(|agent| woothee::parser::Parser::new().parse(agent))
            .filter(|result| result.name != woothee::woothee::VALUE_UNKNOWN);
        let Some(result) = parsed else {
            event.add_tag(FAILURE_TAG);
            return Ok(Verdict::Keep);
        };
        let values = [
            result.name.to_owned(),
            result.version.to_owned(),
            result.os.to_owned(),
            result.os_version.into_owned(),
            result.category.to_owned(),
            result.vendor.to_owned(),
        ];
        let crawler = result.category == "crawler";
        for (name, value) in self.names.iter().zip(values) {
            if !value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN {
                event.set_field(name.clone(), value);
            }
        }
        if crawler {
            event.add_tag("bot");
        }
        Ok(Verdict::Keep)
    }
}

impl FilterConfig for UserAgentConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        Ok(Box::new(UserAgent::new(&self.source, &self.prefix)))
    }
}

loggr_core::register_filter!("useragent", UserAgentConfig);

#[inline(never)]
pub(crate) fn link() {}
