//! `purge-db` and `purge-queues`: empty loggr's tables or its RabbitMQ queues, for test
//! benches and fresh starts (the schema and the topology stay).

use std::time::Duration;

use anyhow::{bail, Context};
use loggr::amqp::lapin::options::QueuePurgeOptions;
use loggr::amqp::TopologyConfig;
use loggr::sinks::postgres::tokio_postgres;

/// loggr's data tables, emptied together (the migrations' record stays).
const TABLES: &[&str] = &["event", "tag", "log", "current_processing", "quarantine"];

/// Empties the tables; returns each table's row count before.
pub(crate) async fn purge_db(url: &str, yes: bool) -> anyhow::Result<Vec<(String, i64)>> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", loggr::core::config::redact_url(url)))?;
    tokio::spawn(connection);
    let mut counts = Vec::new();
    for table in TABLES {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .with_context(|| {
                format!("counting {table} (is loggr's schema there? `loggr_ctl init-db`)")
            })?;
        counts.push(((*table).to_owned(), row.get::<_, i64>(0)));
    }
    if !yes {
        bail!(
            "this deletes every stored event ({} rows in event); run again with --yes",
            counts[0].1
        );
    }
    let transaction = client.transaction().await?;
    transaction
        // `event`'s truncate trigger empties `tag` (naming it in the same
        // statement would make the trigger's own TRUNCATE fail).
        .batch_execute(
            "TRUNCATE event RESTART IDENTITY; \
             TRUNCATE log, current_processing, quarantine RESTART IDENTITY",
        )
        .await?;
    transaction.commit().await?;
    Ok(counts)
}

/// Purges the queues of these topologies (and their dead-letter queues with
/// `dead_letters`); returns (queue, messages purged).
pub(crate) async fn purge_queues(
    found: Vec<(String, TopologyConfig)>,
    dead_letters: bool,
) -> anyhow::Result<Vec<(String, u32)>> {
    let mut purged = Vec::new();
    for (url, topology) in found {
        let connection = loggr::amqp::connect(&url, "loggr_ctl", Duration::from_secs(10)).await?;
        let channel = connection.create_channel().await?;
        let mut names: Vec<String> = Vec::new();
        for queue in &topology.queues {
            names.push(queue.name.clone());
            if dead_letters {
                if let Some(dead) = &queue.dead_letter {
                    names.push(dead.queue.clone());
                }
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            if purged.iter().any(|(done, _)| *done == name) {
                continue;
            }
            let count = channel
                .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
                .await
                .with_context(|| format!("purging {name}"))?;
            purged.push((name, count));
        }
        let _ = connection.close(200, "done".into()).await;
    }
    Ok(purged)
}
