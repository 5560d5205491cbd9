-- loggr schema, version 2: the importer that holds a file lock.
--
-- `current_processing.owner` names the importer (host:pid:nonce) holding the lock, so that an
-- importer refreshes, completes and releases only its own lock — not one another importer
-- took over after it went stale.
ALTER TABLE current_processing ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '';
