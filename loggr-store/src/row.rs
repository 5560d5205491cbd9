//! How an [`Event`](loggr_core::Event) maps onto the logical schema, the same for every
//! backend: which text goes into which column, which fields become `extra_info` rows, which
//! tags are stored. One implementation, `loggr-sinks`' (its `postgres` sink writes the same
//! schema), re-exported here.

pub use loggr_sinks::row::*;
