//! Anonymising old events over the loghub store, SQLite and PostgreSQL alike: the dry run
//! counts what the real run then changes (counts computed here in SQL beforehand, outside
//! the crate); old events lose `raw`, `message` and `userid` and their extra_info, keep
//! their tags; newer events are untouched; a second run changes nothing.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[macro_use]
mod support;

use jiff::tz::TimeZone;
use loggr_reports::anonymise::{anonymise, cutoff, AnonymiseStats};
use support::{input_lines, read_line, Kind, TestDb};

both!(old_events_are_blanked_and_their_fields_deleted_tags_kept);

async fn old_events_are_blanked_and_their_fields_deleted_tags_kept(kind: Kind) {
    let db = TestDb::new(kind, "anonymise").await;
    let lines = input_lines();
    db.fill(&lines).await;
    // Give the events their raw bytes, as a source that keeps them would.
    db.psql(db.pick(
        "UPDATE event SET raw = convert_to(coalesce(message, ''), 'UTF8')",
        "UPDATE event SET raw = CAST(coalesce(message, '') AS BLOB)",
    ));
    // One day before 11 December 09:00 UTC: the cutoff falls in OpenSSH's morning, so old
    // events have fields (sshd's userid, source_address, auth_method) and newer ones too.
    let now = "2024-12-11T09:00:00Z".parse().unwrap();
    let cutoff = cutoff(now, "1 day", &TimeZone::UTC).unwrap();
    assert_eq!(cutoff.to_string(), "2024-12-10T09:00:00Z");
    let old = &format!("logtime < {}", db.at("2024-12-10T09:00:00Z"));
    let new = &format!("logtime >= {}", db.at("2024-12-10T09:00:00Z"));

    // Independently: the old events by their lines, and psql's counts before.
    let old_lines = lines
        .iter()
        .filter_map(|l| read_line(l))
        .filter(|l| l.time < cutoff)
        .count() as u64;
    let old_events = db.count(&format!("SELECT count(*) FROM event WHERE {old}"));
    assert!(
        old_events >= old_lines && old_lines > 4000,
        "{old_events} {old_lines}"
    );
    let old_fields = db.count(&format!(
        "SELECT count(*) FROM extra_info WHERE event IN (SELECT id FROM event WHERE {old})"
    ));
    let new_fields = db.count(&format!(
        "SELECT count(*) FROM extra_info WHERE event IN (SELECT id FROM event WHERE {new})"
    ));
    let old_userids = db.count(&format!(
        "SELECT count(*) FROM event WHERE {old} AND userid IS NOT NULL"
    ));
    assert!(old_fields > 100 && new_fields > 100 && old_userids > 50);
    let tags = db.psql("SELECT event, name FROM tag ORDER BY 1, 2");
    let new_rows = db.psql(&format!(
        "SELECT id, raw, message, userid FROM event WHERE {new} ORDER BY id"
    ));
    let with_data = db.count(&format!(
        "SELECT count(*) FROM event WHERE {old} AND (message <> '' OR raw IS NOT NULL OR userid IS NOT NULL)"
    ));
    let expected = AnonymiseStats {
        events: with_data,
        extra_info: old_fields,
    };

    let store = db.store();
    let dry = anonymise(store, cutoff, true).await.unwrap();
    assert_eq!(dry, expected);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM extra_info WHERE event IN (SELECT id FROM event WHERE {old})"
        )),
        old_fields,
        "a dry run changes nothing"
    );

    let done = anonymise(store, cutoff, false).await.unwrap();
    assert_eq!(done, expected);
    assert_eq!(
        db.psql(&format!(
            "SELECT count(*), count(raw), count(userid), count(*) FILTER (WHERE message = '') FROM event WHERE {old}"
        )),
        [format!("{old_events}|0|0|{old_events}")]
    );
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM extra_info WHERE event IN (SELECT id FROM event WHERE {old})"
        )),
        0
    );
    // Newer events, their fields, and every tag are as they were.
    assert_eq!(
        db.psql(&format!(
            "SELECT id, raw, message, userid FROM event WHERE {new} ORDER BY id"
        )),
        new_rows
    );
    assert_eq!(db.count("SELECT count(*) FROM extra_info"), new_fields);
    assert_eq!(db.psql("SELECT event, name FROM tag ORDER BY 1, 2"), tags);
    // Hosts, programs and times stay: the old auth failures still count by host.
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM event e JOIN tag t ON t.event = e.id AND t.name = 'auth_failure' WHERE {old} AND e.hostname = 'LabSZ'")),
        lines
            .iter()
            .filter_map(|l| read_line(l))
            .filter(|l| l.time < cutoff && l.program == "sshd" && l.message.starts_with("Failed "))
            .count() as u64
    );

    // Again: nothing left to do.
    assert_eq!(
        anonymise(store, cutoff, true).await.unwrap(),
        AnonymiseStats::default()
    );
    assert_eq!(
        anonymise(store, cutoff, false).await.unwrap(),
        AnonymiseStats::default()
    );
}
