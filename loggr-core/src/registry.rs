//! The plugin registry: sources, filters and sinks by name, built from their TOML tables.
//!
//! Each component registers itself with a macro at the end of its own file:
//!
//! ```
//! use loggr_core::{register_filter, BuildContext, Event, Filter, FilterConfig, FilterError, Verdict};
//! use serde::Deserialize;
//!
//! /// Tags every event.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct TagAllConfig {
//!     /// The tag to add.
//!     tag: String,
//! }
//!
//! struct TagAll(String);
//!
//! impl Filter for TagAll {
//!     fn name(&self) -> &str { "tag_all" }
//!     fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
//!         event.add_tag(self.0.clone());
//!         Ok(Verdict::Keep)
//!     }
//! }
//!
//! impl FilterConfig for TagAllConfig {
//!     fn build(self, _cx: &BuildContext) -> Result<Box<dyn Filter>, loggr_core::BoxError> {
//!         Ok(Box::new(TagAll(self.tag)))
//!     }
//! }
//!
//! register_filter!("tag_all_doc_example", TagAllConfig);
//!
//! let registry = loggr_core::Registry::from_inventory().unwrap();
//! assert!(registry.filter_types().any(|name| name == "tag_all_doc_example"));
//! ```
//!
//! # The linker pitfall
//!
//! `inventory` collects registrations from every object file the linker keeps, and a linker
//! keeps an object file of a library only when something refers to it. A crate whose
//! components are only ever named in configuration may be left out, and its plugins silently
//! vanish. So every plugin crate exports a `link()` function that refers to its registrations,
//! and the program calls it once before reading configuration (the `loggr` facade's
//! `loggr::registry()` does it for the bundled crates). Downstream plugin crates should do the
//! same; [`Registry::require`] lets a program check that the types it expects are there.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::{deserialize_component, ConfigError};
use crate::filter::Filter;
use crate::metrics::Metrics;
use crate::packer::{Packer, PackerCondition};
use crate::sink::Sink;
use crate::source::Source;

/// A boxed error, for component factories.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a component factory may use while building.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// The component's name.
    pub name: String,
    /// The process's metrics registry.
    pub metrics: Arc<Metrics>,
}

/// The configuration of a source plugin: deserialized from its table, then built.
pub trait SourceConfig: DeserializeOwned + 'static {
    /// Builds the source.
    ///
    /// # Errors
    ///
    /// Why the source cannot be built from this configuration.
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Source>, BoxError>;
}

/// The configuration of a filter plugin.
pub trait FilterConfig: DeserializeOwned + 'static {
    /// Builds the filter.
    ///
    /// # Errors
    ///
    /// Why the filter cannot be built (a bad pattern, a missing file).
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError>;
}

/// The configuration of a packer plugin (`[[packers]]`, each naming the `source` it packs).
pub trait PackerConfig: DeserializeOwned + 'static {
    /// Builds the packer and its condition (which events it applies to; `None`: all).
    ///
    /// # Errors
    ///
    /// Why the packer cannot be built (a bad pattern).
    fn build(
        self,
        cx: &BuildContext,
    ) -> Result<(Box<dyn Packer>, Option<PackerCondition>), BoxError>;
}

/// The configuration of a sink plugin.
pub trait SinkConfig: DeserializeOwned + 'static {
    /// Builds the sink.
    ///
    /// # Errors
    ///
    /// Why the sink cannot be built.
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError>;
}

type Factory<T> = fn(&str, toml::Table, &BuildContext) -> Result<T, ConfigError>;

/// Glue between a configuration trait and the product it builds.
trait Build<T> {
    fn build_product(self, cx: &BuildContext) -> Result<T, BoxError>;
}

impl<C: SourceConfig> Build<Box<dyn Source>> for C {
    fn build_product(self, cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        SourceConfig::build(self, cx)
    }
}

impl<C: FilterConfig> Build<Box<dyn Filter>> for C {
    fn build_product(self, cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        FilterConfig::build(self, cx)
    }
}

/// What a packer plugin builds.
pub type BuiltPacker = (Box<dyn Packer>, Option<PackerCondition>);

impl<C: PackerConfig> Build<BuiltPacker> for C {
    fn build_product(self, cx: &BuildContext) -> Result<BuiltPacker, BoxError> {
        PackerConfig::build(self, cx)
    }
}

impl<C: SinkConfig> Build<Box<dyn Sink>> for C {
    fn build_product(self, cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        SinkConfig::build(self, cx)
    }
}

fn build_with<C, T>(
    component: &str,
    table: toml::Table,
    cx: &BuildContext,
) -> Result<T, ConfigError>
where
    C: DeserializeOwned + Build<T>,
{
    let config: C = deserialize_component(component, table)?;
    config
        .build_product(cx)
        .map_err(|source| ConfigError::Build {
            component: component.to_owned(),
            source,
        })
}

macro_rules! plugin_kind {
    ($plugin:ident, $config:ident, $product:ty, $kind:literal) => {
        #[doc = concat!("A registered ", $kind, " type (made by [`", stringify!($plugin), "::of`]).")]
        pub struct $plugin {
            /// The name used as `type = "…"` in configuration.
            pub type_name: &'static str,
            /// The module that registered it (shown when names collide).
            pub module: &'static str,
            build: Factory<$product>,
        }

        impl $plugin {
            #[doc = concat!("The registration of a ", $kind, " configuration type.")]
            pub const fn of<C: $config>(type_name: &'static str, module: &'static str) -> Self {
                $plugin {
                    type_name,
                    module,
                    build: build_with::<C, $product>,
                }
            }

            /// Builds a component of this type from its table.
            ///
            /// # Errors
            ///
            /// The field or build error, naming `component`.
            pub fn build(
                &self,
                component: &str,
                table: toml::Table,
                cx: &BuildContext,
            ) -> Result<$product, ConfigError> {
                (self.build)(component, table, cx)
            }
        }

        impl std::fmt::Debug for $plugin {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "{}({} from {})",
                    stringify!($plugin),
                    self.type_name,
                    self.module
                )
            }
        }

        inventory::collect!($plugin);
    };
}

plugin_kind!(SourcePlugin, SourceConfig, Box<dyn Source>, "source");
plugin_kind!(FilterPlugin, FilterConfig, Box<dyn Filter>, "filter");
plugin_kind!(SinkPlugin, SinkConfig, Box<dyn Sink>, "sink");
plugin_kind!(PackerPlugin, PackerConfig, BuiltPacker, "packer");

/// Registers a source configuration type under a name.
#[macro_export]
macro_rules! register_source {
    ($type_name:literal, $config:ty) => {
        $crate::inventory::submit! {
            $crate::registry::SourcePlugin::of::<$config>($type_name, module_path!())
        }
    };
}

/// Registers a filter configuration type under a name.
#[macro_export]
macro_rules! register_filter {
    ($type_name:literal, $config:ty) => {
        $crate::inventory::submit! {
            $crate::registry::FilterPlugin::of::<$config>($type_name, module_path!())
        }
    };
}

/// Registers a sink configuration type under a name.
#[macro_export]
macro_rules! register_sink {
    ($type_name:literal, $config:ty) => {
        $crate::inventory::submit! {
            $crate::registry::SinkPlugin::of::<$config>($type_name, module_path!())
        }
    };
}

/// Registers a packer configuration type under a name.
#[macro_export]
macro_rules! register_packer {
    ($type_name:literal, $config:ty) => {
        $crate::inventory::submit! {
            $crate::registry::PackerPlugin::of::<$config>($type_name, module_path!())
        }
    };
}

/// The plugin registry failed to assemble.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two plugins of one kind use the same name.
    #[error("{kind} type `{type_name}` is registered twice: by {first} and by {second}")]
    Duplicate {
        /// `source`, `filter` or `sink`.
        kind: &'static str,
        /// The name.
        type_name: &'static str,
        /// The first module.
        first: &'static str,
        /// The second module.
        second: &'static str,
    },
    /// A type the program needs is not registered (see the module docs on linking).
    #[error(
        "{kind} type `{type_name}` is not registered; is its crate linked (call its `link()`)?"
    )]
    Missing {
        /// `source`, `filter` or `sink`.
        kind: &'static str,
        /// The name.
        type_name: String,
    },
}

/// Every known plugin, by kind and name.
#[derive(Debug, Default)]
pub struct Registry {
    sources: BTreeMap<&'static str, &'static SourcePlugin>,
    filters: BTreeMap<&'static str, &'static FilterPlugin>,
    sinks: BTreeMap<&'static str, &'static SinkPlugin>,
    packers: BTreeMap<&'static str, &'static PackerPlugin>,
}

fn insert<P>(
    map: &mut BTreeMap<&'static str, &'static P>,
    kind: &'static str,
    plugin: &'static P,
    type_name: &'static str,
    module: fn(&P) -> &'static str,
) -> Result<(), RegistryError> {
    if let Some(existing) = map.insert(type_name, plugin) {
        return Err(RegistryError::Duplicate {
            kind,
            type_name,
            first: module(existing),
            second: module(plugin),
        });
    }
    Ok(())
}

impl Registry {
    /// Collects every plugin registered with the `register_*!` macros in the linked crates.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`] when two plugins of one kind share a name.
    pub fn from_inventory() -> Result<Registry, RegistryError> {
        let mut registry = Registry::default();
        for plugin in inventory::iter::<SourcePlugin> {
            insert(
                &mut registry.sources,
                "source",
                plugin,
                plugin.type_name,
                |p| p.module,
            )?;
        }
        for plugin in inventory::iter::<FilterPlugin> {
            insert(
                &mut registry.filters,
                "filter",
                plugin,
                plugin.type_name,
                |p| p.module,
            )?;
        }
        for plugin in inventory::iter::<SinkPlugin> {
            insert(&mut registry.sinks, "sink", plugin, plugin.type_name, |p| {
                p.module
            })?;
        }
        for plugin in inventory::iter::<PackerPlugin> {
            insert(
                &mut registry.packers,
                "packer",
                plugin,
                plugin.type_name,
                |p| p.module,
            )?;
        }
        Ok(registry)
    }

    /// Adds a plugin by hand (tests, or programs that prefer explicit registration).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`].
    pub fn add_source(&mut self, plugin: &'static SourcePlugin) -> Result<(), RegistryError> {
        insert(&mut self.sources, "source", plugin, plugin.type_name, |p| {
            p.module
        })
    }

    /// Adds a filter plugin by hand.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`].
    pub fn add_filter(&mut self, plugin: &'static FilterPlugin) -> Result<(), RegistryError> {
        insert(&mut self.filters, "filter", plugin, plugin.type_name, |p| {
            p.module
        })
    }

    /// Adds a sink plugin by hand.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`].
    pub fn add_sink(&mut self, plugin: &'static SinkPlugin) -> Result<(), RegistryError> {
        insert(&mut self.sinks, "sink", plugin, plugin.type_name, |p| {
            p.module
        })
    }

    /// Checks that the named types are registered.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Missing`] for the first one that is not.
    pub fn require(
        &self,
        sources: &[&str],
        filters: &[&str],
        sinks: &[&str],
    ) -> Result<(), RegistryError> {
        let missing = |kind, name: &str| RegistryError::Missing {
            kind,
            type_name: name.to_owned(),
        };
        for name in sources {
            self.sources
                .get(name)
                .ok_or_else(|| missing("source", name))?;
        }
        for name in filters {
            self.filters
                .get(name)
                .ok_or_else(|| missing("filter", name))?;
        }
        for name in sinks {
            self.sinks.get(name).ok_or_else(|| missing("sink", name))?;
        }
        Ok(())
    }

    /// A source plugin by name.
    pub fn source(&self, type_name: &str) -> Option<&'static SourcePlugin> {
        self.sources.get(type_name).copied()
    }

    /// A filter plugin by name.
    pub fn filter(&self, type_name: &str) -> Option<&'static FilterPlugin> {
        self.filters.get(type_name).copied()
    }

    /// A sink plugin by name.
    pub fn sink(&self, type_name: &str) -> Option<&'static SinkPlugin> {
        self.sinks.get(type_name).copied()
    }

    /// A packer plugin by name.
    pub fn packer(&self, type_name: &str) -> Option<&'static PackerPlugin> {
        self.packers.get(type_name).copied()
    }

    /// The registered packer types, sorted.
    pub fn packer_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.packers.keys().copied()
    }

    /// The registered source types, sorted.
    pub fn source_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sources.keys().copied()
    }

    /// The registered filter types, sorted.
    pub fn filter_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.filters.keys().copied()
    }

    /// The registered sink types, sorted.
    pub fn sink_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sinks.keys().copied()
    }
}
