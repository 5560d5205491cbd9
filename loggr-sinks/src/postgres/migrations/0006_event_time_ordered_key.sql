-- loggr schema, version 6: one time-ordered unique key instead of `UNIQUE (digest)` and the
-- index on `logtime`.
--
-- `digest` is a SHA-256: each stored event's entry in `event_digest_key` landed on a random
-- leaf of that index. Once the index outgrows the cache, every insertion reads a page from
-- disk and dirties it, and after each checkpoint writes a full-page image of it into the WAL.
-- `event_logtime_idx` cost every event one more insertion besides. Both are replaced by:
--
--   event_logtime_digest_key     UNIQUE (logtime, digest): the deduplication key, and the
--                                time index (any time range, newest first, keyset paging;
--                                reports grouped by host in a range). Its insertions land
--                                near the right edge, as the time index's did.
--   event_unreported_digest_key  UNIQUE (digest) WHERE NOT reported: the key of the events
--                                whose sender reported no time. Their `logtime` is
--                                `received_at`, which a redelivery changes; in syslog traffic
--                                there are next to none.
--
-- Why one key still stores each event once: the content id covers the reported time (and
-- whether there was one), so two events with the same `digest` and a reported time have the
-- same `logtime`; and an event without one shares no `digest` with an event with one.
-- `ON CONFLICT DO NOTHING` (without a target) now names no index: every unique index is its
-- arbiter. The direct `COPY` of the sink is refused by whichever key the event meets.
--
-- Both new indexes hold only what `UNIQUE (digest)` already guaranteed, so building them
-- cannot fail on stored rows. `migrate()` runs in a transaction, so they are not built
-- CONCURRENTLY: on a big store the build blocks inserts while it runs. To avoid that, build
-- them by hand first (`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS …` with the names and
-- columns below); this migration then finds them.
CREATE UNIQUE INDEX IF NOT EXISTS event_logtime_digest_key ON event (logtime, digest);
CREATE UNIQUE INDEX IF NOT EXISTS event_unreported_digest_key ON event (digest) WHERE NOT reported;
ALTER TABLE event DROP CONSTRAINT IF EXISTS event_digest_key;
DROP INDEX IF EXISTS event_logtime_idx;
