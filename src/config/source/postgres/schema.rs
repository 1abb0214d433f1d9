//! The tables of the PostgreSQL config source, in a schema of their own (`switchyard_config`):
//! the document lives only in PostgreSQL, so they are managed here rather than by the store's
//! migrations (which also run on SQLite). Every statement is idempotent; the whole script runs
//! in one transaction under an advisory lock, so replicas starting together do not race.

use sqlx::postgres::PgPool;
use sqlx::{Connection, Executor};

/// The schema holding the source's tables.
pub const SCHEMA: &str = "switchyard_config";
/// The channel new revisions are announced on; the payload is `document:revision`.
pub const CHANNEL: &str = "switchyard_config";

const DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS switchyard_config;

-- The database's clock in epoch milliseconds: one clock for every replica.
CREATE OR REPLACE FUNCTION switchyard_config.now_ms() RETURNS BIGINT
    LANGUAGE sql VOLATILE AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

-- Every revision of every document; the newest revision of a document is its rules.
CREATE TABLE IF NOT EXISTS switchyard_config.revisions (
    document TEXT NOT NULL,
    revision BIGINT NOT NULL CHECK (revision > 0),
    text TEXT NOT NULL,
    hash TEXT,
    author TEXT NOT NULL DEFAULT current_user,
    replica TEXT,
    reason TEXT,
    origin TEXT NOT NULL DEFAULT 'sql',
    created_at_ms BIGINT NOT NULL DEFAULT switchyard_config.now_ms(),
    PRIMARY KEY (document, revision)
);

-- One heartbeat row per replica and document.
CREATE TABLE IF NOT EXISTS switchyard_config.replicas (
    document TEXT NOT NULL,
    replica TEXT NOT NULL,
    revision BIGINT,
    loaded_at_ms BIGINT,
    started_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    admin TEXT,
    version TEXT,
    listening BOOLEAN NOT NULL DEFAULT false,
    last_error TEXT,
    PRIMARY KEY (document, replica)
);

-- Announce every new revision, including rows inserted by hand.
CREATE OR REPLACE FUNCTION switchyard_config.announce_revision() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchyard_config', NEW.document || ':' || NEW.revision);
    RETURN NEW;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'revisions_announce'
          AND tgrelid = 'switchyard_config.revisions'::regclass
    ) THEN
        CREATE TRIGGER revisions_announce AFTER INSERT ON switchyard_config.revisions
            FOR EACH ROW EXECUTE FUNCTION switchyard_config.announce_revision();
    END IF;
END $$;
"#;

/// Create the schema, tables, clock function and trigger where missing.
pub(super) async fn ensure(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('switchyard_config:schema'))")
        .await?;
    tx.execute(sqlx::raw_sql(DDL)).await?;
    tx.commit().await
}
