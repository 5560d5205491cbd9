//! The file ledger in the embedded SQLite store: one importer per content at a time, a stale
//! lock taken over, a completed file never claimed again (unless `readall`), an importer
//! releasing only its own lock.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loggr_sources::files::decode::ContentDigest;
use loggr_sources::files::ledger::{Claim, FileLedger};
use loggr_sources::files::sqlite_ledger::SqliteLedger;

#[tokio::test]
async fn one_importer_per_content_and_each_content_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loggr.db");
    let a = SqliteLedger::new(&path, Duration::from_secs(3600));
    let b = SqliteLedger::new(&path, Duration::from_secs(3600));
    assert_ne!(a.owner(), b.owner());
    let digest = ContentDigest([1; 32]);

    assert_eq!(
        a.claim("x.log", &digest, false).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(b.claim("x.log", &digest, false).await.unwrap(), Claim::Busy);
    // b's release cannot drop a's lock.
    b.release(&digest).await.unwrap();
    assert_eq!(b.claim("x.log", &digest, false).await.unwrap(), Claim::Busy);
    a.heartbeat(&digest).await.unwrap();
    a.complete("x.log", &digest).await.unwrap();
    assert_eq!(
        b.claim("renamed.log.gz", &digest, false).await.unwrap(),
        Claim::AlreadyImported
    );
    // --readall: claimed again, recorded once.
    assert_eq!(
        b.claim("x.log", &digest, true).await.unwrap(),
        Claim::Claimed
    );
    b.complete("x.log", &digest).await.unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let (logged, locked): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM log), (SELECT count(*) FROM current_processing)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((logged, locked), (1, 0));
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_its_old_owner_cannot_drop_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loggr.db");
    let dead = SqliteLedger::new(&path, Duration::from_millis(100));
    let alive = SqliteLedger::new(&path, Duration::from_millis(100));
    let digest = ContentDigest([2; 32]);
    assert_eq!(
        dead.claim("y.log", &digest, false).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        alive.claim("y.log", &digest, false).await.unwrap(),
        Claim::Busy
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        alive.claim("y.log", &digest, false).await.unwrap(),
        Claim::Claimed
    );
    dead.release(&digest).await.unwrap();
    let third = SqliteLedger::new(&path, Duration::from_secs(3600));
    assert_eq!(
        third.claim("y.log", &digest, false).await.unwrap(),
        Claim::Busy,
        "the new owner's lock survived the old owner's release"
    );
}
