-- loggr schema, version 5: an event's tags and extra info are kept in its own row.
--
-- Every stored event of BuzzSaw's filter stack has about four tags and two fields. As rows of
-- `tag` (two B-tree indexes) and `extra_info` (one), they cost PostgreSQL six more tuples and
-- ten more index insertions per event: about half its work when importing files. Now:
--
-- - `event.tags` (`text[]`, sorted, NULL when none) holds the event's tags: the web UI and the
--   reports show them, and check one (`name = ANY(tags)`), without another look-up. `tag`
--   stays as their index for finding the events with a tag, with one key, `(name, event)`
--   (the key `(event, name)` served only the look-ups `event.tags` now answers, and deleting,
--   which `name = ANY(tags)` does through the new key). Whoever writes `event.tags` writes the
--   same `tag` rows in the same transaction (the `postgres` sink does); deleting events
--   deletes their `tag` rows (the `event_deleted` trigger).
-- - `event.extra` (`jsonb`, NULL when none) holds the fields as an array of `[name, value]`
--   pairs in the event's order (as the embedded SQLite store keeps them). `extra_info` becomes
--   a view with the same columns as the table it replaces, one row per value, and still takes
--   `INSERT`s (appended to the event's pairs).
--
-- The existing rows are moved over by one `UPDATE` of the events that have tags or fields: on
-- a big store this rewrites those rows, inside the migration's transaction.
ALTER TABLE event ADD COLUMN IF NOT EXISTS tags text[] COLLATE "C";
ALTER TABLE event ADD COLUMN IF NOT EXISTS extra jsonb;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('extra_info') AND relkind = 'r') THEN
        UPDATE event e SET tags = d.tags, extra = d.extra
        FROM (
            SELECT coalesce(t.event, x.event) AS event, t.names AS tags, x.pairs AS extra
            FROM (SELECT event, array_agg(name ORDER BY name) AS names FROM tag GROUP BY event) t
            FULL JOIN (SELECT event, jsonb_agg(jsonb_build_array(name, val) ORDER BY ctid) AS pairs
                       FROM extra_info GROUP BY event) x ON x.event = t.event
        ) d
        WHERE e.id = d.event;
        DROP TABLE extra_info;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'tag_event_name_key') THEN
        ALTER TABLE tag DROP CONSTRAINT tag_event_name_key;
        DROP INDEX IF EXISTS tag_name_event_idx;
        ALTER TABLE tag ADD CONSTRAINT tag_name_event_key PRIMARY KEY (name, event);
    END IF;
END
$$;

-- One row per value, in the event's order (`n`).
CREATE OR REPLACE VIEW extra_info (event, name, val, n) AS
    SELECT e.id, (p.pair ->> 0) COLLATE "C", p.pair ->> 1, p.n
    FROM event e CROSS JOIN LATERAL jsonb_array_elements(e.extra) WITH ORDINALITY AS p (pair, n)
    WHERE e.extra IS NOT NULL;

-- `INSERT INTO extra_info (event, name, val)` appends the pair to the event's fields.
CREATE OR REPLACE FUNCTION loggr_extra_info_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event SET extra = coalesce(extra, '[]'::jsonb) || jsonb_build_array(jsonb_build_array(NEW.name, NEW.val))
    WHERE id = NEW.event;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS extra_info_insert ON extra_info;
CREATE TRIGGER extra_info_insert INSTEAD OF INSERT ON extra_info
    FOR EACH ROW EXECUTE FUNCTION loggr_extra_info_insert();

-- Deleting events deletes their tags (through the key `(name, event)`: one probe per tag).
CREATE OR REPLACE FUNCTION loggr_event_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tag t USING loggr_deleted d
    WHERE d.tags IS NOT NULL AND t.name = ANY(d.tags) AND t.event = d.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION loggr_event_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE tag;
    RETURN NULL;
END
$$;
