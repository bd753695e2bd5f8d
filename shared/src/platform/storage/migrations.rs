//! Versioned schema migrations, applied lazily by whichever component first opens the database.
//! This list is SQLite's; PostgreSQL's counterpart, version for version, is
//! `storage::postgres::migrations`.
//!
//! Several Spin instances (of the same or different components, on one host or many) may start
//! on a fresh database at the same moment, so the upgrade runs in one transaction that first
//! takes the schema's lock — SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock — and
//! re-reads the version inside it: the losers of the race wait for the lock, see the new version
//! and do nothing.

pub(crate) mod collection;

use crate::platform::storage::postgres;
use crate::platform::storage::{
    Database, Dialect, StorageError, StorageErrorKind, serialize_on, transaction,
};

pub(crate) struct Migration {
    pub(crate) version: i64,
    /// One SQL statement per entry: the adapters execute a single statement per call.
    pub(crate) statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            "CREATE TABLE principals (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('operator', 'provider', 'customer', 'platform')),
            name TEXT NOT NULL,
            account_type TEXT CHECK (account_type IN ('enterprise', 'individual')),
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            token_issued_at TEXT NOT NULL,
            CHECK ((role = 'customer') = (account_type IS NOT NULL))
        )",
            "CREATE TABLE services (
            id TEXT PRIMARY KEY,
            provider_id TEXT NOT NULL REFERENCES principals(id),
            spec TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
            "CREATE INDEX services_by_provider ON services (provider_id, id)",
            // UNIQUE(service_id) is the one-product-per-service rule: it decides creation races.
            "CREATE TABLE products (
            id TEXT PRIMARY KEY,
            service_id TEXT NOT NULL UNIQUE REFERENCES services(id),
            provider_id TEXT NOT NULL REFERENCES principals(id),
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
            "CREATE INDEX products_by_provider ON products (provider_id, id)",
            "CREATE TABLE product_steps (
            product_id TEXT NOT NULL REFERENCES products(id),
            step TEXT NOT NULL,
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (product_id, step)
        )",
            // Metadata of media whose bytes live in the key-value store under `blob_key`.
            "CREATE TABLE product_media (
            product_id TEXT NOT NULL REFERENCES products(id),
            kind TEXT NOT NULL,
            idx INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            width INTEGER,
            height INTEGER,
            blob_key TEXT NOT NULL,
            uploaded_at TEXT NOT NULL,
            PRIMARY KEY (product_id, kind, idx)
        )",
        ],
    },
    Migration {
        version: 2,
        statements: &[
            "CREATE TABLE reviews (
            id TEXT PRIMARY KEY,
            product_id TEXT NOT NULL REFERENCES products(id),
            stage TEXT NOT NULL CHECK (stage IN ('category', 'feature')),
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            submitted_by TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT,
            category_snapshot TEXT
        )",
            // At most one open review per product, whatever races.
            "CREATE UNIQUE INDEX reviews_one_pending_per_product ON reviews (product_id)
            WHERE status = 'pending'",
            "CREATE INDEX reviews_by_product ON reviews (product_id, id)",
            "CREATE TABLE product_transitions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            product_id TEXT NOT NULL REFERENCES products(id),
            review_id TEXT NOT NULL REFERENCES reviews(id),
            actor_id TEXT NOT NULL,
            at TEXT NOT NULL,
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            reason TEXT
        )",
            "CREATE INDEX product_transitions_by_review ON product_transitions (review_id, seq)",
            // The history is append-only, enforced by the database rather than by convention.
            "CREATE TRIGGER product_transitions_no_update BEFORE UPDATE ON product_transitions
            BEGIN SELECT RAISE(ABORT, 'product_transitions is append-only'); END",
            "CREATE TRIGGER product_transitions_no_delete BEFORE DELETE ON product_transitions
            BEGIN SELECT RAISE(ABORT, 'product_transitions is append-only'); END",
            "CREATE TABLE billable_item_settings (
            product_id TEXT NOT NULL REFERENCES products(id),
            code TEXT NOT NULL,
            reporting TEXT,
            associations TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (product_id, code)
        )",
            // What the public catalog lists and filters, written when the product is published.
            "CREATE TABLE catalog_entries (
            product_id TEXT PRIMARY KEY REFERENCES products(id),
            category TEXT NOT NULL,
            tags TEXT NOT NULL,
            search_text TEXT NOT NULL,
            summary TEXT NOT NULL,
            published_at TEXT NOT NULL
        )",
            "CREATE INDEX catalog_entries_by_category ON catalog_entries (category, product_id)",
        ],
    },
    Migration {
        version: 3,
        statements: &[
            // Balances and ledger amounts are integer cents: SQLite sums integers exactly.
            "CREATE TABLE accounts (
                customer_id TEXT PRIMARY KEY REFERENCES principals(id),
                balance_cents INTEGER NOT NULL,
                updated_at TEXT NOT NULL
            )",
            "CREATE TABLE ledger_entries (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES accounts(customer_id),
                kind TEXT NOT NULL CHECK (kind IN ('top_up', 'bill')),
                amount_cents INTEGER NOT NULL,
                balance_after_cents INTEGER NOT NULL,
                reference TEXT,
                created_by TEXT NOT NULL,
                created_at TEXT NOT NULL
            )",
            "CREATE INDEX ledger_entries_by_customer ON ledger_entries (customer_id)",
            // A bill is deducted once: at most one ledger entry references it.
            "CREATE UNIQUE INDEX ledger_entries_one_per_bill ON ledger_entries (reference)
                WHERE kind = 'bill'",
            "CREATE TABLE orders (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL REFERENCES principals(id),
                product_id TEXT NOT NULL REFERENCES products(id),
                template_id TEXT NOT NULL,
                plan_id TEXT,
                region TEXT NOT NULL,
                test INTEGER NOT NULL,
                instance_id TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )",
            "CREATE TABLE instances (
                id TEXT PRIMARY KEY,
                order_id TEXT NOT NULL UNIQUE REFERENCES orders(id),
                owner_id TEXT NOT NULL REFERENCES principals(id),
                product_id TEXT NOT NULL REFERENCES products(id),
                provider_id TEXT NOT NULL REFERENCES principals(id),
                template_id TEXT NOT NULL,
                plan_id TEXT,
                region TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'released')),
                test INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                released_at TEXT
            )",
            "CREATE INDEX instances_by_owner ON instances (owner_id, id)",
            "CREATE INDEX instances_by_provider ON instances (provider_id, id)",
            // Running intervals [started_at, ended_at) in Unix seconds; at most one open at once.
            "CREATE TABLE instance_intervals (
                instance_id TEXT NOT NULL REFERENCES instances(id),
                started_at INTEGER NOT NULL,
                ended_at INTEGER,
                CHECK (ended_at IS NULL OR ended_at >= started_at)
            )",
            "CREATE INDEX instance_intervals_by_instance ON instance_intervals (instance_id, started_at)",
            "CREATE UNIQUE INDEX instance_intervals_one_open ON instance_intervals (instance_id)
                WHERE ended_at IS NULL",
        ],
    },
    Migration {
        version: 4,
        statements: &[
            // The primary key is the record's identity (docs/RULES.md R9.10): a retried push counts
            // once.
            "CREATE TABLE usage_records (
                instance_id TEXT NOT NULL REFERENCES instances(id),
                item_code TEXT NOT NULL,
                start_time INTEGER NOT NULL,
                end_time INTEGER NOT NULL,
                -- The amount is value × 10^-scale: integers sum exactly in SQLite, and platform
                -- sources report fractions (bills in cents, Prometheus increases in millionths).
                value INTEGER NOT NULL CHECK (value >= 0),
                scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 8),
                period_start INTEGER NOT NULL,
                source TEXT NOT NULL,
                request_id TEXT NOT NULL,
                received_at TEXT NOT NULL,
                PRIMARY KEY (instance_id, item_code, start_time, end_time)
            ) WITHOUT ROWID",
            "CREATE INDEX usage_records_by_period ON usage_records (instance_id, period_start, item_code)",
        ],
    },
    Migration {
        version: 5,
        statements: &[
            // Each instance's next period to bill and when it closes; NULL once fully billed.
            // Advanced by compare-and-set in the transaction that writes the bill.
            "CREATE TABLE billing_cursors (
                instance_id TEXT PRIMARY KEY REFERENCES instances(id),
                next_period_start INTEGER NOT NULL,
                next_close_at INTEGER
            )",
            "CREATE INDEX billing_cursors_due ON billing_cursors (next_close_at, instance_id)",
            // UNIQUE (instance_id, period_start): an (instance, period) is billed at most once.
            "CREATE TABLE bills (
                id TEXT PRIMARY KEY,
                instance_id TEXT NOT NULL REFERENCES instances(id),
                owner_id TEXT NOT NULL,
                provider_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                period_start INTEGER NOT NULL,
                period_end INTEGER NOT NULL,
                currency TEXT NOT NULL,
                total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
                test INTEGER NOT NULL,
                lines TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (instance_id, period_start)
            )",
            "CREATE INDEX bills_by_owner ON bills (owner_id, id)",
            "CREATE INDEX bills_by_provider ON bills (provider_id, id)",
        ],
    },
    Migration {
        version: 6,
        statements: &[
            // Bill runs, previews and usage reads sum one instance's usage of one period. This
            // index holds everything that sum reads, so it is answered from the index alone,
            // without a lookup per record or a scan of the instance's other periods (without it
            // SQLite searched the primary key by instance). It supersedes its prefix below.
            "CREATE INDEX usage_records_totals ON usage_records
                (instance_id, period_start, item_code, scale, value)",
            "DROP INDEX usage_records_by_period",
        ],
    },
    Migration {
        version: 7,
        statements: &[
            // A record's source is part of what it is: a platform record for a window never
            // collides with one the provider pushed for the same window (a collision inside a
            // bill run's batch once stopped every run). SQLite cannot change a primary key, so
            // the table is rebuilt.
            "CREATE TABLE usage_records_by_source (
                instance_id TEXT NOT NULL REFERENCES instances(id),
                item_code TEXT NOT NULL,
                source TEXT NOT NULL,
                start_time INTEGER NOT NULL,
                end_time INTEGER NOT NULL,
                value INTEGER NOT NULL CHECK (value >= 0),
                scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 8),
                period_start INTEGER NOT NULL,
                request_id TEXT NOT NULL,
                received_at TEXT NOT NULL,
                PRIMARY KEY (instance_id, item_code, source, start_time, end_time)
            ) WITHOUT ROWID",
            "INSERT INTO usage_records_by_source (instance_id, item_code, source, start_time,
                end_time, value, scale, period_start, request_id, received_at)
             SELECT instance_id, item_code, source, start_time, end_time, value, scale,
                period_start, request_id, received_at FROM usage_records",
            "DROP TABLE usage_records",
            "ALTER TABLE usage_records_by_source RENAME TO usage_records",
            "CREATE INDEX usage_records_totals ON usage_records
                (instance_id, period_start, item_code, scale, value)",
        ],
    },
    Migration {
        version: 8,
        statements: &[
            // Responses of requests sent with an Idempotency-Key, replayed to their retries.
            "CREATE TABLE idempotency_keys (
                principal_id TEXT NOT NULL,
                key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                status INTEGER NOT NULL,
                content_type TEXT,
                body BLOB NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (principal_id, key)
            ) WITHOUT ROWID",
        ],
    },
    Migration {
        version: 9,
        statements: &[
            // A disabled principal's token no longer authenticates; what it made stays.
            "ALTER TABLE principals ADD COLUMN disabled_at TEXT",
        ],
    },
    Migration {
        version: 10,
        statements: &[
            // The zone an instance's day periods are cut in, fixed when it is ordered: changing
            // the deployment's billing_timezone must not move the boundaries its billing cursor
            // stands on. NULL for instances ordered before: they keep the deployment's zone.
            "ALTER TABLE instances ADD COLUMN billing_timezone TEXT",
        ],
    },
    Migration {
        version: 11,
        statements: &[
            // The cloud resources an instance deploys, with their hourly fees, as its template
            // had them when it was ordered (JSON): a later edit of the service reprices nothing
            // running. NULL for instances ordered before resource fees were billed.
            "ALTER TABLE instances ADD COLUMN resources TEXT",
            // A bill's two parts: the product's fees (the provider's) and the cloud resources'
            // fees (the cloud's); the total is their sum. Bills written before were product fees
            // only.
            "ALTER TABLE bills ADD COLUMN product_fees_cents INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE bills ADD COLUMN resource_fees_cents INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE bills ADD COLUMN resource_lines TEXT NOT NULL DEFAULT '[]'",
            "UPDATE bills SET product_fees_cents = total_cents",
        ],
    },
    Migration {
        version: 12,
        statements: &[
            // A provider's own commission rate (a decimal in [0, 1), as text: never a float);
            // providers without a row pay the deployment's commission_rate.
            "CREATE TABLE provider_commissions (
                provider_id TEXT PRIMARY KEY REFERENCES principals(id),
                rate TEXT NOT NULL,
                set_by TEXT NOT NULL,
                set_at TEXT NOT NULL
            )",
            // One row per closed month: the row is what makes a month closed, and its primary
            // key what makes two racing closes write its statements once.
            "CREATE TABLE settlement_months (
                month TEXT PRIMARY KEY,
                closed_by TEXT NOT NULL,
                closed_at TEXT NOT NULL
            )",
            "CREATE TABLE settlements (
                id TEXT PRIMARY KEY,
                provider_id TEXT NOT NULL,
                month TEXT NOT NULL REFERENCES settlement_months(month),
                rate TEXT NOT NULL,
                products TEXT NOT NULL,
                gross_cents INTEGER NOT NULL CHECK (gross_cents >= 0),
                commission_cents INTEGER NOT NULL CHECK (commission_cents >= 0),
                net_cents INTEGER NOT NULL CHECK (net_cents = gross_cents - commission_cents),
                bill_count INTEGER NOT NULL,
                closed_at TEXT NOT NULL,
                paid_at TEXT,
                paid_by TEXT,
                payout_reference TEXT,
                UNIQUE (provider_id, month)
            )",
            // A month's statements sum the product fees of the bills of its periods: this index
            // holds everything that sum reads, so it is one range scan without table lookups.
            "CREATE INDEX bills_by_period_for_settlement
                 ON bills (period_start, provider_id, product_id, test, product_fees_cents)",
        ],
    },
    Migration {
        version: 13,
        statements: &[
            // Web console sessions (identity::session): the SHA-256 of the session id the
            // browser's cookie holds, and of the token the principal signed in with, so a
            // rotated token ends the session. Neither secret itself is stored.
            "CREATE TABLE console_sessions (
                id_hash TEXT PRIMARY KEY,
                principal_id TEXT NOT NULL,
                token_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            )",
            "CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at)",
        ],
    },
    Migration {
        version: 14,
        statements: &[
            // The EULA the customer accepted with the order, and when: its source, the
            // marketplace template's id if it is one, and the SHA-256 of the EULA as shown.
            // NULL for orders placed before they were recorded.
            "ALTER TABLE orders ADD COLUMN eula_source TEXT",
            "ALTER TABLE orders ADD COLUMN eula_template_id TEXT",
            "ALTER TABLE orders ADD COLUMN eula_digest TEXT",
            "ALTER TABLE orders ADD COLUMN eula_accepted_at TEXT",
        ],
    },
    Migration {
        version: 15,
        // No statement: this version brings databases created before it through `migrate`'s
        // switch to write-ahead logging.
        statements: &[],
    },
    Migration {
        version: 16,
        statements: &[
            // Instance-periods an operator closed without a bill (billing::write_off). UNIQUE
            // (instance, period): a period is written off once; the billing cursor's
            // compare-and-set keeps a write-off and a bill of one period from both existing.
            "CREATE TABLE write_offs (
                id TEXT PRIMARY KEY,
                instance_id TEXT NOT NULL REFERENCES instances(id),
                provider_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                period_start BIGINT NOT NULL,
                period_end BIGINT NOT NULL,
                test INTEGER NOT NULL,
                reason TEXT NOT NULL,
                written_off_by TEXT NOT NULL,
                written_off_at TEXT NOT NULL,
                UNIQUE (instance_id, period_start)
            )",
            // A month's statements list the write-offs of its periods, per provider.
            "CREATE INDEX write_offs_by_period ON write_offs (period_start, provider_id)",
        ],
    },
    Migration {
        version: 17,
        statements: &[
            // A month closes provider by provider. Its row now records the instants it was
            // frozen with when first closed (a later change of billing_timezone moves no closed
            // month; NULL for months closed before) and how many providers its last close left
            // waiting on unbilled periods.
            "ALTER TABLE settlement_months ADD COLUMN period_start BIGINT",
            "ALTER TABLE settlement_months ADD COLUMN period_end BIGINT",
            "ALTER TABLE settlement_months ADD COLUMN open_providers INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE settlements ADD COLUMN period_start BIGINT",
            "ALTER TABLE settlements ADD COLUMN period_end BIGINT",
            "ALTER TABLE settlements ADD COLUMN write_off_count INTEGER NOT NULL DEFAULT 0",
            // The bills each statement counts: keyed by the bill, so a bill belongs to one
            // statement for ever.
            "CREATE TABLE statement_bills (
                bill_id TEXT PRIMARY KEY REFERENCES bills(id),
                statement_id TEXT NOT NULL REFERENCES settlements(id)
            )",
            "CREATE INDEX statement_bills_by_statement ON statement_bills (statement_id)",
            // Why an instance's period was left unbilled when a close last saw it (the reason
            // of the bill run's failure), shown beside the periods that keep a month open.
            "CREATE TABLE settlement_blocks (
                instance_id TEXT PRIMARY KEY REFERENCES instances(id),
                period_start BIGINT NOT NULL,
                reason TEXT NOT NULL,
                seen_at TEXT NOT NULL
            )",
        ],
    },
    Migration {
        version: 18,
        statements: &[
            // Commission rates with an effective month (YYYY-MM): a month settles at the latest
            // rate from that month or before; a NULL rate returns the provider to the
            // deployment's. A rate set before took effect from the beginning.
            "CREATE TABLE commission_rates (
                provider_id TEXT NOT NULL REFERENCES principals(id),
                effective_from TEXT NOT NULL,
                rate TEXT,
                set_by TEXT NOT NULL,
                set_at TEXT NOT NULL,
                PRIMARY KEY (provider_id, effective_from)
            )",
            "INSERT INTO commission_rates (provider_id, effective_from, rate, set_by, set_at)
             SELECT provider_id, '1970-01', rate, set_by, set_at FROM provider_commissions",
            "DROP TABLE provider_commissions",
        ],
    },
    Migration {
        version: 19,
        statements: &[
            // The EULA an order accepted, whole, as the quote showed it (JSON), so that its
            // customer can read it back; NULL for orders placed before.
            "ALTER TABLE orders ADD COLUMN eula TEXT",
        ],
    },
    Migration {
        version: 20,
        statements: &[
            // An idempotency key stands for its request 24 hours: when it was recorded, in Unix
            // seconds, indexed for the bill run's purge of the expired.
            "ALTER TABLE idempotency_keys ADD COLUMN created_unix INTEGER NOT NULL DEFAULT 0",
            "UPDATE idempotency_keys SET created_unix = CAST(strftime('%s', created_at) AS INTEGER)",
            "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_unix)",
            // Where a recorded redirect sent the client: a console form's answer is a 303.
            "ALTER TABLE idempotency_keys ADD COLUMN location TEXT",
        ],
    },
    Migration {
        version: 21,
        statements: &[
            // Failed authentications per client address and minute (Unix seconds of its start):
            // every instance and host of the deployment counts in the same rows.
            "CREATE TABLE auth_failures (
                client TEXT NOT NULL,
                minute INTEGER NOT NULL,
                failures INTEGER NOT NULL,
                PRIMARY KEY (client, minute)
            )",
        ],
    },
    Migration {
        version: 22,
        statements: &[
            // A provider's statement reads its own bills of the month: by provider first, with
            // everything the sum reads, so it never scans another tenant's bills.
            "CREATE INDEX bills_by_provider_for_settlement
                 ON bills (provider_id, period_start, product_id, test, product_fees_cents)",
            // A usage page reads one instance's records in the order it lists them: read in
            // index order from the page's cursor, never sorted whole.
            "CREATE INDEX usage_records_in_order
                 ON usage_records (instance_id, period_start, item_code, source, start_time, end_time)",
        ],
    },
    Migration {
        version: 23,
        statements: collection::COLLECTION_AND_ARREARS,
    },
    Migration {
        version: 24,
        statements: &[
            // A published product's prices, version by version (docs/RULES.md R15): version 1 is
            // the reviewed pricing step, copied here when the first change is made; each later
            // one applies to new orders at once and to existing instances from the first period
            // starting at or after `effective_at` (Unix seconds).
            "CREATE TABLE pricing_versions (
                product_id TEXT NOT NULL REFERENCES products(id),
                version INTEGER NOT NULL CHECK (version >= 1),
                pricing TEXT NOT NULL,
                raises_price INTEGER NOT NULL,
                created_by TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                effective_at INTEGER NOT NULL,
                PRIMARY KEY (product_id, version)
            )",
            // The version an order was placed under (it applies to its instance at once), and
            // the version each bill was priced with.
            "ALTER TABLE instances ADD COLUMN pricing_version INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE bills ADD COLUMN pricing_version INTEGER NOT NULL DEFAULT 1",
            // A product out of the catalog: at most one delisting stands per product; the log
            // keeps every delisting and relisting with who, when and why.
            "CREATE TABLE delistings (
                product_id TEXT PRIMARY KEY REFERENCES products(id),
                actor_id TEXT NOT NULL,
                actor_role TEXT NOT NULL,
                reason TEXT NOT NULL,
                delisted_at INTEGER NOT NULL
            )",
            "CREATE TABLE delisting_log (
                product_id TEXT NOT NULL REFERENCES products(id),
                seq INTEGER NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('delisted', 'relisted')),
                actor_id TEXT NOT NULL,
                actor_role TEXT NOT NULL,
                reason TEXT,
                changed_at INTEGER NOT NULL,
                PRIMARY KEY (product_id, seq)
            )",
            // Webhooks: a principal's endpoints and the events they take (`,type,type,`); the
            // secret signs deliveries, so it is kept (shown once, never listed).
            "CREATE TABLE webhooks (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL,
                owner_role TEXT NOT NULL,
                url TEXT NOT NULL,
                events TEXT NOT NULL,
                secret TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                deleted_at INTEGER
            )",
            "CREATE INDEX webhooks_by_owner ON webhooks (owner_id, id)",
            // The outbox: each event written in the transaction of the change it reports, with
            // the tenants it concerns; one delivery per subscribed webhook, written with it.
            "CREATE TABLE webhook_events (
                id TEXT PRIMARY KEY,
                type TEXT NOT NULL,
                provider_id TEXT,
                customer_id TEXT,
                data TEXT NOT NULL,
                created_at INTEGER NOT NULL
            )",
            // A delivery is an event for one endpoint: written with the event, once.
            "CREATE TABLE webhook_deliveries (
                webhook_id TEXT NOT NULL REFERENCES webhooks(id),
                event_id TEXT NOT NULL REFERENCES webhook_events(id),
                status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                attempts INTEGER NOT NULL,
                next_attempt_at INTEGER NOT NULL,
                -- Retries go on for 72 hours from the first attempt.
                first_attempt_at INTEGER,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (webhook_id, event_id)
            )",
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
            "CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id)",
            "CREATE TABLE webhook_attempts (
                webhook_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                attempted_at INTEGER NOT NULL,
                status_code INTEGER,
                error TEXT,
                PRIMARY KEY (webhook_id, event_id, attempt)
            )",
        ],
    },
];

/// The migrations of a database's dialect.
fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => postgres::migrations::MIGRATIONS,
    }
}

pub(crate) fn latest_version(dialect: Dialect) -> i64 {
    migrations(dialect).last().map_or(0, |m| m.version)
}

fn current_version(db: &dyn Database) -> Result<i64, StorageError> {
    match db.execute("SELECT MAX(version) FROM schema_migrations", &[]) {
        Ok(rows) => Ok(rows
            .first()
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0)),
        Err(e) if e.kind == StorageErrorKind::NoSuchTable => Ok(0),
        Err(e) => Err(e),
    }
}

pub(crate) fn migrate(db: &dyn Database) -> Result<(), StorageError> {
    migrate_to(db, latest_version(db.dialect()))
}

/// Brings the database up to `target` (tests stop short of the latest, to upgrade a database
/// holding what an older version wrote).
pub(crate) fn migrate_to(db: &dyn Database, target: i64) -> Result<(), StorageError> {
    let dialect = db.dialect();
    // The fast path every request takes: one indexed read.
    if current_version(db)? >= target {
        return Ok(());
    }
    if dialect == Dialect::Sqlite {
        // Write-ahead logging: a commit appends to the log and syncs it once (the rollback
        // journal is created, synced and deleted per commit), and readers never wait for the
        // writer, nor it for them. Still durable: the log is synced at every commit
        // (`synchronous = FULL`, SQLite's default). It is a property of the file, set outside
        // any transaction; a database that cannot take it (a remote one) keeps its own mode and
        // works as before.
        let _ = db.execute("PRAGMA journal_mode = WAL", &[]);
    }
    transaction(db, |db| {
        // PostgreSQL's DDL is transactional, and the advisory lock makes the hosts starting
        // together on an empty database take turns: the first migrates, the others find it done.
        serialize_on(db, "nestmarket schema migrations")?;
        db.execute(
            match dialect {
                Dialect::Sqlite => {
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
                }
                Dialect::Postgres => {
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)"
                }
            },
            &[],
        )?;
        let current = current_version(db)?;
        for m in migrations(dialect)
            .iter()
            .filter(|m| m.version > current && m.version <= target)
        {
            for statement in m.statements {
                db.execute(statement, &[])?;
            }
            db.execute(
                "INSERT INTO schema_migrations (version) VALUES (?)",
                &[m.version.into()],
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::storage::Backend;
    use crate::platform::storage::native::NativeBackend;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let backend = NativeBackend::new(dir.path().join("db.sqlite"));
        let db = backend.open_db().unwrap();
        migrate(db.as_ref()).unwrap();
        migrate(db.as_ref()).unwrap();
        assert_eq!(
            current_version(db.as_ref()).unwrap(),
            latest_version(Dialect::Sqlite)
        );
    }

    /// A 200 means the write is on disk: write-ahead logging, the log synced at every commit.
    #[test]
    fn a_migrated_database_logs_ahead_and_syncs_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let backend = NativeBackend::new(dir.path().join("db.sqlite"));
        migrate(backend.open_db().unwrap().as_ref()).unwrap();
        let db = backend.open_db().unwrap();
        let pragma = |name: &str| db.execute(&format!("PRAGMA {name}"), &[]).unwrap()[0].clone();
        assert_eq!(pragma("journal_mode").text(0).unwrap(), "wal");
        // 2 = FULL: the log is synced before a commit returns.
        assert_eq!(pragma("synchronous").int(0).unwrap(), 2);
    }

    #[test]
    fn two_connections_migrating_at_once_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let backend = NativeBackend::new(dir.path().join("db.sqlite"));
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let db = backend.open_db().unwrap();
                        barrier.wait();
                        migrate(db.as_ref())
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        });
        let db = backend.open_db().unwrap();
        let rows = db
            .execute("SELECT COUNT(*) FROM schema_migrations", &[])
            .unwrap();
        assert_eq!(rows[0].int(0).unwrap(), MIGRATIONS.len() as i64);
    }
}
