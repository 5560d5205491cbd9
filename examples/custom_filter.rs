//! An in-house filter, registered by name and used from configuration: the pattern a
//! downstream crate copies.
//!
//! The filter masks e-mail addresses in messages (keeping the domain) and counts what it
//! masked in a field. It lives in the program (or in any crate the program links), registers
//! itself with `register_filter!`, and is then usable as `type = "mask_emails"` in any loggr
//! configuration, next to the bundled filters.
//!
//! ```text
//! printf 'password reset for alice@example.com\n' | cargo run --example custom_filter
//! cargo run --example custom_filter -- --config my-pipeline.toml
//! ```

use clap::Parser as _;
use loggr::core::config::PipelineConfig;
use loggr::{BuildContext, Event, Filter, FilterConfig, FilterError, PipelineBuilder, Verdict};
use regex::Regex;
use serde::Deserialize;

/// The filter's configuration: the TOML table of a `[[filters]]` entry, minus `type`/`name`.
/// `deny_unknown_fields` turns typos into errors naming the field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskEmailsConfig {
    /// What replaces the local part (default `***`).
    #[serde(default = "default_mask")]
    mask: String,
}

fn default_mask() -> String {
    "***".into()
}

/// The runtime filter. Filters run on several worker threads at once: keep them `Sync`
/// (compiled regexes are).
struct MaskEmails {
    pattern: Regex,
    replacement: String,
}

impl Filter for MaskEmails {
    fn name(&self) -> &str {
        "mask_emails"
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        let message = event.message_str();
        let masked = self.pattern.find_iter(message).count();
        if masked > 0 {
            let text = self
                .pattern
                .replace_all(message, self.replacement.as_str())
                .into_owned();
            event.message = Some(text.into());
            event.set_field("emails_masked", masked as i64);
            event.add_tag("pii_masked");
        }
        Ok(Verdict::Keep)
    }
}

impl FilterConfig for MaskEmailsConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Filter>, loggr::core::BoxError> {
        let pattern = Regex::new(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")?;
        Ok(Box::new(MaskEmails {
            pattern,
            replacement: format!("{}@$1", self.mask),
        }))
    }
}

// One line makes `type = "mask_emails"` available to every configuration this program reads.
loggr::core::register_filter!("mask_emails", MaskEmailsConfig);

const DEFAULT_CONFIG: &str = r#"
[[sources]]
type = "stdin"
format = "raw"

[[filters]]
type = "mask_emails"
mask = "[redacted]"

[[sinks]]
type = "stdout"
"#;

/// Run a pipeline that uses the in-house `mask_emails` filter.
#[derive(clap::Parser)]
struct Args {
    /// A pipeline configuration; by default stdin → mask_emails → stdout.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    let args = Args::parse();
    let config = match args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::from_toml(DEFAULT_CONFIG)?,
    };
    // The registry holds the bundled plugins and every `register_*!` of the linked crates,
    // this program's `mask_emails` included.
    let registry = loggr::registry()?;
    registry.require(&[], &["mask_emails"], &[])?;
    let pipeline = PipelineBuilder::from_config(config, &registry)?.build()?;
    pipeline.run(loggr::daemon::shutdown_on_signals()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_is_registered_and_masks() {
        let registry = loggr::registry().unwrap();
        let plugin = registry
            .filter("mask_emails")
            .expect("registered by this example");
        let table = toml::toml! { mask = "x" };
        let cx = loggr::BuildContext {
            name: "t".into(),
            metrics: loggr::core::Metrics::new(),
        };
        let filter = plugin.build("test", table, &cx).unwrap();
        let mut event = loggr::Event::new("mail alice@example.com and bob@corp.example.org");
        filter.apply(&mut event).unwrap();
        assert_eq!(
            event.message_str(),
            "mail x@example.com and x@corp.example.org"
        );
        assert_eq!(event.field("emails_masked").unwrap().to_string(), "2");
    }
}
