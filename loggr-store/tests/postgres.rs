//! What only the PostgreSQL store has: several reading connections, used in turn.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use loggr_sinks::postgres::PostgresSinkConfig;
use loggr_store::PgStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_the_reading_connections_in_turn() {
    // The machine's server (see contract.rs); no schema needed.
    let config = PostgresSinkConfig::new("postgresql://root@127.0.0.1:5432/postgres");
    let store = PgStore::new(config).unwrap().with_readers(3);
    assert_eq!(store.readers(), 3);
    let mut backends = Vec::new();
    for _ in 0..6 {
        let client = store.client().await.expect("PostgreSQL must be running");
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        backends.push(pid);
    }
    let distinct: BTreeSet<i32> = backends.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "three server processes: {backends:?}");
    assert_eq!(backends[..3], backends[3..], "used in turn: {backends:?}");
}
