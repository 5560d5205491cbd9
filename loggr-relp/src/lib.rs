//! # loggr-relp
//!
//! The RELP protocol (Reliable Event Logging Protocol, as spoken by rsyslog's `omrelp` and
//! `imrelp`): the frame codec, the server session with its window of outstanding transactions,
//! and the client. Usable without the rest of loggr.
//!
//! (Filled by the network-ingest issue.)
