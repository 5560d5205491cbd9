//! # loggr-relp
//!
//! The RELP protocol (Reliable Event Logging Protocol, as spoken by rsyslog's `omrelp` and
//! `imrelp`): the frame [`codec`], the [`server`] session with its window of outstanding
//! transactions, and the [`client`]. Usable without the rest of loggr.
//!
//! RELP's promise is simple: the receiver answers every message with `rsp 200 OK` once it has
//! taken it (for loggr: once every sink durably has it), or with `rsp 500 …` (or a closed
//! session) otherwise; the sender keeps every unanswered message and sends it again on the
//! next connection. Nothing acknowledged is lost; duplicates are possible after a reconnect.
//!
//! ## Tutorial: a receiver and a sender
//!
//! A server session needs a [`MessageHandler`]: it gets every message and returns a future that
//! resolves to the [`Verdict`] (here at once; a real one resolves when the message is stored).
//! [`serve`] runs one connection; accept connections yourself and spawn one task each.
//!
//! ```
//! use bytes::Bytes;
//! use futures::future::{ready, Ready};
//! use loggr_relp::{serve, Client, ClientConfig, MessageHandler, ServerConfig, Verdict};
//! use tokio::net::TcpListener;
//! use tokio_util::sync::CancellationToken;
//!
//! /// Prints each message and accepts it.
//! struct Print;
//!
//! impl MessageHandler for Print {
//!     type Ack = Ready<Verdict>;
//!     fn on_message(&mut self, data: Bytes) -> Self::Ack {
//!         println!("{}", String::from_utf8_lossy(&data));
//!         ready(Verdict::Accepted)
//!     }
//!     async fn flush(&mut self) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?.to_string();
//! let shutdown = CancellationToken::new();
//! let server = tokio::spawn(async move {
//!     let config = ServerConfig::default();
//!     let (socket, _peer) = listener.accept().await?;
//!     serve(socket, Print, &config, shutdown).await
//! });
//!
//! let mut client = Client::connect(&addr, ClientConfig::default()).await?;
//! client.send(Bytes::from_static(b"<13>1 - host app - - - hello")).await?;
//! client.send(Bytes::from_static(b"<13>1 - host app - - - world")).await?;
//! let sent = client.close().await?; // waits for both `200 OK`s, then `close`
//! assert_eq!(sent.acked, 2);
//!
//! let received = server.await??;
//! assert_eq!(received.accepted, 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## What is where
//!
//! - [`codec`]: [`Frame`], [`Command`] and the strict, zero-copy [`FrameCodec`].
//! - [`server`]: [`serve`], [`ServerConfig`], [`MessageHandler`], [`Verdict`], and a table of
//!   how each kind of bad input is answered (matching librelp, rsyslog's RELP library).
//! - [`client`]: [`Client`] with its window, reconnection and resending.
//! - [`error`]: [`RelpError`], with [`RelpError::can_continue`] to tell a lost stream from a
//!   refused message.
#![cfg_attr(
    feature = "tls",
    doc = "- [`tls`]: rustls configuration and rsyslog's peer authentication modes."
)]

#[doc(hidden)]
pub mod checks;
pub mod client;
pub mod codec;
pub mod error;
mod offers;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{Client, ClientConfig, ClientStats};
pub use codec::{Command, Frame, FrameCodec};
pub use error::RelpError;
pub use server::{serve, MessageHandler, ServerConfig, SessionStats, Verdict};
