//! The clients connected to each listener, for the daemons' `/connections` (who is connected,
//! over what, since when) — the list behind the `loggr_open_connections` gauge.
//!
//! A listener calls [`ComponentMetrics::open_connection`] for each accepted connection and keeps
//! the returned [`ConnectionGuard`] for as long as the connection lives: the guard counts the
//! connection in the gauge, lists it, and undoes both when dropped, so a connection task that
//! fails or panics still leaves the list. [`Metrics::connections`] gathers every component's
//! list.
//!
//! The list is bounded: each listener lists at most [`MAX_LISTED`] connections (the first ones
//! that are still open when they connected); the gauge, and [`ListenerConnections::open`],
//! count them all. Peers are not metric labels: `/metrics` stays one series per component.
//!
//! ```
//! use loggr_core::metrics::{ComponentKind, Metrics};
//!
//! let metrics = Metrics::new();
//! let relp = metrics.component(ComponentKind::Source, "relp");
//! let guard = relp.open_connection("127.0.0.1:40000".parse()?, "relp");
//! let listed = metrics.connections();
//! assert_eq!(listed.connections[0].peer, "127.0.0.1:40000");
//! drop(guard);
//! assert!(metrics.connections().connections.is_empty());
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde::Serialize;

use crate::metrics::{ComponentMetrics, Metrics};

/// The most connections listed per listener; more are counted, not listed.
pub const MAX_LISTED: usize = 1000;

/// One listed connection.
#[derive(Clone, Copy, Debug)]
struct Entry {
    peer: SocketAddr,
    protocol: &'static str,
    since: Timestamp,
}

/// The connections one component lists (part of its [`ComponentMetrics`]).
#[derive(Debug, Default)]
pub(crate) struct ConnectionTable {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// By id, so in the order they connected.
    entries: BTreeMap<u64, Entry>,
}

impl ConnectionTable {
    fn lock(&self) -> MutexGuard<'_, Table> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Lists a connection unless [`MAX_LISTED`] are listed; its id when listed.
    fn insert(&self, entry: Entry) -> Option<u64> {
        let mut table = self.lock();
        if table.entries.len() >= MAX_LISTED {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.entries.insert(id, entry);
        Some(id)
    }

    fn remove(&self, id: u64) {
        self.lock().entries.remove(&id);
    }

    fn entries(&self) -> Vec<Entry> {
        self.lock().entries.values().copied().collect()
    }
}

impl ComponentMetrics {
    /// Counts and lists a connection a listener accepted from `peer` over `protocol` (`tcp`,
    /// `tcp+tls`, `relp`, `relp+tls`…), from now until the returned guard is dropped.
    pub fn open_connection(
        self: &Arc<Self>,
        peer: SocketAddr,
        protocol: &'static str,
    ) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let id = self.clients.insert(Entry {
            peer,
            protocol,
            since: Timestamp::now(),
        });
        ConnectionGuard {
            metrics: self.clone(),
            id,
        }
    }
}

/// An open connection, counted and listed until dropped (see
/// [`ComponentMetrics::open_connection`]).
#[derive(Debug)]
#[must_use = "the connection leaves the list when the guard is dropped"]
pub struct ConnectionGuard {
    metrics: Arc<ComponentMetrics>,
    id: Option<u64>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(id) = self.id {
            self.metrics.clients.remove(id);
        }
    }
}

/// Every listener's connections, as `/connections` serves them (JSON).
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct ConnectionList {
    /// The listed connections, by listener, then in the order they connected.
    pub connections: Vec<Connection>,
    /// Each component with open connections: how many are open and how many of those are
    /// listed (fewer when over [`MAX_LISTED`]).
    pub listeners: Vec<ListenerConnections>,
}

/// One connected client.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Connection {
    /// The listener's component name.
    pub listener: String,
    /// The client's address (`ip:port`).
    pub peer: String,
    /// `tcp`, `tcp+tls`, `relp`, `relp+tls`…
    pub protocol: &'static str,
    /// When it connected (RFC 3339, UTC).
    pub since: Timestamp,
}

/// The open and listed connections of one listener.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ListenerConnections {
    /// The listener's component name.
    pub listener: String,
    /// Open connections (the `loggr_open_connections` gauge).
    pub open: u64,
    /// How many of them [`ConnectionList::connections`] lists.
    pub listed: u64,
}

impl Metrics {
    /// The connections open now, of every component that has any.
    pub fn connections(&self) -> ConnectionList {
        let mut list = ConnectionList::default();
        for (_, name, metrics) in self.registered() {
            let open = ComponentMetrics::get(&metrics.connections);
            let entries = metrics.clients.entries();
            if open == 0 && entries.is_empty() {
                continue;
            }
            list.listeners.push(ListenerConnections {
                listener: name.to_string(),
                open,
                listed: entries.len() as u64,
            });
            list.connections
                .extend(entries.into_iter().map(|entry| Connection {
                    listener: name.to_string(),
                    peer: entry.peer.to_string(),
                    protocol: entry.protocol,
                    since: entry.since,
                }));
        }
        list
    }

    /// [`Metrics::connections`] as JSON.
    pub fn render_connections_json(&self) -> String {
        // Serializing plain strings, numbers and timestamps cannot fail.
        serde_json::to_string(&self.connections()).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ComponentKind;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_dropped_guard_leaves_the_list_and_the_gauge() {
        let metrics = Metrics::new();
        let tcp = metrics.component(ComponentKind::Source, "tcp");
        let relp = metrics.component(ComponentKind::Source, "relp");
        let first = tcp.open_connection(peer(40000), "tcp");
        let second = tcp.open_connection(peer(40001), "tcp+tls");
        let third = relp.open_connection(peer(40002), "relp");
        let list = metrics.connections();
        let rows: Vec<_> = list
            .connections
            .iter()
            .map(|c| (c.listener.as_str(), c.peer.as_str(), c.protocol))
            .collect();
        assert_eq!(
            rows,
            [
                ("tcp", "127.0.0.1:40000", "tcp"),
                ("tcp", "127.0.0.1:40001", "tcp+tls"),
                ("relp", "127.0.0.1:40002", "relp")
            ]
        );
        assert_eq!(ComponentMetrics::get(&tcp.connections), 2);

        drop(first);
        let list = metrics.connections();
        let peers: Vec<_> = list.connections.iter().map(|c| c.peer.as_str()).collect();
        assert_eq!(peers, ["127.0.0.1:40001", "127.0.0.1:40002"]);
        assert_eq!(ComponentMetrics::get(&tcp.connections), 1);

        drop((second, third));
        let list = metrics.connections();
        assert!(list.connections.is_empty(), "{list:?}");
        assert!(list.listeners.is_empty(), "{list:?}");
        assert_eq!(ComponentMetrics::get(&relp.connections), 0);
    }

    #[test]
    fn a_panicking_connection_task_still_leaves_the_list() {
        let metrics = Metrics::new();
        let tcp = metrics.component(ComponentKind::Source, "tcp");
        let held = tcp.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = held.open_connection(peer(40000), "tcp");
            panic!("connection task failed");
        })
        .join();
        assert!(panicked.is_err());
        assert!(metrics.connections().connections.is_empty());
        assert_eq!(ComponentMetrics::get(&tcp.connections), 0);
    }

    #[test]
    fn the_list_is_capped_and_the_count_is_not() {
        let metrics = Metrics::new();
        let tcp = metrics.component(ComponentKind::Source, "tcp");
        let mut guards: Vec<_> = (0..MAX_LISTED + 5)
            .map(|i| tcp.open_connection(peer(i as u16), "tcp"))
            .collect();
        let list = metrics.connections();
        assert_eq!(list.connections.len(), MAX_LISTED);
        assert_eq!(list.listeners[0].open, (MAX_LISTED + 5) as u64);
        assert_eq!(list.listeners[0].listed, MAX_LISTED as u64);

        // An unlisted connection closing frees no slot; a listed one does.
        guards.pop();
        assert_eq!(metrics.connections().connections.len(), MAX_LISTED);
        drop(guards.remove(0));
        let late = tcp.open_connection(peer(60000), "tcp");
        let list = metrics.connections();
        assert_eq!(list.connections.len(), MAX_LISTED);
        assert_eq!(
            list.connections.last().map(|c| c.peer.as_str()),
            Some("127.0.0.1:60000")
        );
        drop(guards);
        drop(late);
        assert!(metrics.connections().listeners.is_empty());
    }

    #[test]
    fn renders_json_with_rfc3339_times() {
        let metrics = Metrics::new();
        let relp = metrics.component(ComponentKind::Source, "relp\"in");
        let _guard = relp.open_connection(peer(40000), "relp");
        let json: serde_json::Value =
            serde_json::from_str(&metrics.render_connections_json()).expect("valid JSON");
        let row = &json["connections"][0];
        assert_eq!(row["listener"], "relp\"in");
        assert_eq!(row["peer"], "127.0.0.1:40000");
        assert_eq!(row["protocol"], "relp");
        let since = row["since"].as_str().expect("a string");
        assert!(
            since.parse::<Timestamp>().is_ok() && since.ends_with('Z'),
            "{since}"
        );
        assert_eq!(json["listeners"][0]["open"], 1);
        assert_eq!(json["listeners"][0]["listed"], 1);
    }
}
