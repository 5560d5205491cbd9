//! The [`Filter`] trait: look at an event, change it, keep it or drop it.

use std::fmt;

use crate::event::Event;

/// What a filter decided about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the event on to the next filter and the sinks.
    Keep,
    /// Drop the event on purpose. Its token is discarded, which counts as done: the upstream
    /// is acknowledged, the event is not stored.
    Discard,
}

/// A filter failed on one event. The event is kept (never lost), tagged
/// [`FILTER_FAILURE_TAG`], with the error in a field named after the filter.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FilterError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        FilterError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        FilterError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The tag given to an event on which a filter failed.
pub const FILTER_FAILURE_TAG: &str = "_filter_failure";

/// Looks at one event at a time: adds tags and fields, rewrites, keeps or discards.
///
/// Filters are synchronous and `Sync` because the filter stage runs them on several worker
/// threads at once (each worker takes whole batches, and the stage puts batches back in order,
/// so a source's events keep their order). Keep state that must be shared behind a lock or an
/// atomic; state per source belongs in a packer stage, not a filter.
///
/// ```
/// use loggr_core::{Event, Filter, FilterError, Verdict};
///
/// /// Drops debug noise, tags the rest with the host's role.
/// struct Roles;
///
/// impl Filter for Roles {
///     fn name(&self) -> &str {
///         "roles"
///     }
///
///     fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
///         if event.severity == loggr_core::Severity::Debug {
///             return Ok(Verdict::Discard);
///         }
///         if event.hostname.as_deref().is_some_and(|h| h.starts_with("db")) {
///             event.add_tag("database");
///         }
///         Ok(Verdict::Keep)
///     }
/// }
/// ```
///
/// # Errors
///
/// A [`FilterError`] for a failure on this event; the event goes on, tagged.
pub trait Filter: Send + Sync + 'static {
    /// The filter's name, for logs, metrics and failure fields.
    fn name(&self) -> &str;

    /// Looks at (and may change) one event.
    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError>;
}

impl fmt::Debug for dyn Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter({})", self.name())
    }
}

/// Runs a chain of filters over one event: the first `Discard` stops the chain; an error tags
/// the event and the chain goes on.
pub fn apply_chain(filters: &[Box<dyn Filter>], event: &mut Event) -> Verdict {
    for filter in filters {
        match filter.apply(event) {
            Ok(Verdict::Keep) => {}
            Ok(Verdict::Discard) => return Verdict::Discard,
            Err(error) => {
                tracing::debug!(filter = filter.name(), %error, "Filter failed on an event");
                event.add_tag(FILTER_FAILURE_TAG);
                event.set_field(format!("{}_error", filter.name()), error.to_string());
            }
        }
    }
    Verdict::Keep
}
