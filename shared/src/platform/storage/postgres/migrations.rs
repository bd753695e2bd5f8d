//! The PostgreSQL schema, version for version the schema of `storage::migrations` (SQLite's):
//! the same tables, columns, keys, constraints and indexes, in PostgreSQL's words. Version 22 is
//! the whole schema as SQLite's migrations had built it by their version 22 (no PostgreSQL
//! database existed before); every later version of SQLite's list has its counterpart here, with
//! the same number (a test compares both lists and the schemas they build).
//!
//! Conventions: every integer is `BIGINT` (Spin's PostgreSQL parameters are 64-bit, and bind to
//! nothing narrower); every text is `COLLATE "C"`, so it compares and sorts by code point as in
//! SQLite, whatever the database's locale; blobs are `BYTEA`; a table whose rows SQLite lists in
//! insertion order (`ORDER BY rowid`) has a `rowid` identity column, so the same SQL runs on both.

use crate::platform::storage::migrations::Migration;

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 22,
        statements: &[
            r#"CREATE TABLE principals (
            id TEXT COLLATE "C" PRIMARY KEY,
            role TEXT COLLATE "C" NOT NULL CHECK (role IN ('operator', 'provider', 'customer', 'platform')),
            name TEXT COLLATE "C" NOT NULL,
            account_type TEXT COLLATE "C" CHECK (account_type IN ('enterprise', 'individual')),
            token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
            created_at TEXT COLLATE "C" NOT NULL,
            token_issued_at TEXT COLLATE "C" NOT NULL,
            disabled_at TEXT COLLATE "C",
            CHECK ((role = 'customer') = (account_type IS NOT NULL))
        )"#,
            r#"CREATE TABLE services (
            id TEXT COLLATE "C" PRIMARY KEY,
            provider_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            spec TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL
        )"#,
            "CREATE INDEX services_by_provider ON services (provider_id, id)",
            // UNIQUE(service_id) is the one-product-per-service rule: it decides creation races.
            r#"CREATE TABLE products (
            id TEXT COLLATE "C" PRIMARY KEY,
            service_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES services(id),
            provider_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            status TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL
        )"#,
            "CREATE INDEX products_by_provider ON products (provider_id, id)",
            r#"CREATE TABLE product_steps (
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            step TEXT COLLATE "C" NOT NULL,
            data TEXT COLLATE "C" NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (product_id, step)
        )"#,
            r#"CREATE TABLE product_media (
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            kind TEXT COLLATE "C" NOT NULL,
            idx BIGINT NOT NULL,
            content_type TEXT COLLATE "C" NOT NULL,
            size BIGINT NOT NULL,
            width BIGINT,
            height BIGINT,
            blob_key TEXT COLLATE "C" NOT NULL,
            uploaded_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (product_id, kind, idx)
        )"#,
            r#"CREATE TABLE reviews (
            id TEXT COLLATE "C" PRIMARY KEY,
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            stage TEXT COLLATE "C" NOT NULL CHECK (stage IN ('category', 'feature')),
            status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            submitted_by TEXT COLLATE "C" NOT NULL,
            submitted_at TEXT COLLATE "C" NOT NULL,
            decided_by TEXT COLLATE "C",
            decided_at TEXT COLLATE "C",
            reason TEXT COLLATE "C",
            category_snapshot TEXT COLLATE "C",
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        )"#,
            // At most one open review per product, whatever races.
            "CREATE UNIQUE INDEX reviews_one_pending_per_product ON reviews (product_id)
            WHERE status = 'pending'",
            "CREATE INDEX reviews_by_product ON reviews (product_id, id)",
            r#"CREATE TABLE product_transitions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            review_id TEXT COLLATE "C" NOT NULL REFERENCES reviews(id),
            actor_id TEXT COLLATE "C" NOT NULL,
            at TEXT COLLATE "C" NOT NULL,
            from_status TEXT COLLATE "C" NOT NULL,
            to_status TEXT COLLATE "C" NOT NULL,
            reason TEXT COLLATE "C"
        )"#,
            "CREATE INDEX product_transitions_by_review ON product_transitions (review_id, seq)",
            // The history is append-only, enforced by the database rather than by convention.
            "CREATE FUNCTION product_transitions_append_only() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'product_transitions is append-only'; END $$",
            "CREATE TRIGGER product_transitions_no_update BEFORE UPDATE ON product_transitions
            FOR EACH ROW EXECUTE FUNCTION product_transitions_append_only()",
            "CREATE TRIGGER product_transitions_no_delete BEFORE DELETE ON product_transitions
            FOR EACH ROW EXECUTE FUNCTION product_transitions_append_only()",
            r#"CREATE TABLE billable_item_settings (
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            code TEXT COLLATE "C" NOT NULL,
            reporting TEXT COLLATE "C",
            associations TEXT COLLATE "C",
            updated_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (product_id, code)
        )"#,
            r#"CREATE TABLE catalog_entries (
            product_id TEXT COLLATE "C" PRIMARY KEY REFERENCES products(id),
            category TEXT COLLATE "C" NOT NULL,
            tags TEXT COLLATE "C" NOT NULL,
            search_text TEXT COLLATE "C" NOT NULL,
            summary TEXT COLLATE "C" NOT NULL,
            published_at TEXT COLLATE "C" NOT NULL
        )"#,
            "CREATE INDEX catalog_entries_by_category ON catalog_entries (category, product_id)",
            // Balances and ledger amounts are integer cents.
            r#"CREATE TABLE accounts (
            customer_id TEXT COLLATE "C" PRIMARY KEY REFERENCES principals(id),
            balance_cents BIGINT NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL
        )"#,
            r#"CREATE TABLE ledger_entries (
            id TEXT COLLATE "C" PRIMARY KEY,
            customer_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(customer_id),
            kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('top_up', 'bill')),
            amount_cents BIGINT NOT NULL,
            balance_after_cents BIGINT NOT NULL,
            reference TEXT COLLATE "C",
            created_by TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        )"#,
            // A customer's ledger is read newest first, a page at a time.
            "CREATE INDEX ledger_entries_by_customer ON ledger_entries (customer_id, rowid)",
            // A bill is deducted once: at most one ledger entry references it.
            "CREATE UNIQUE INDEX ledger_entries_one_per_bill ON ledger_entries (reference)
            WHERE kind = 'bill'",
            r#"CREATE TABLE orders (
            id TEXT COLLATE "C" PRIMARY KEY,
            owner_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            template_id TEXT COLLATE "C" NOT NULL,
            plan_id TEXT COLLATE "C",
            region TEXT COLLATE "C" NOT NULL,
            test BIGINT NOT NULL,
            instance_id TEXT COLLATE "C" NOT NULL UNIQUE,
            created_at TEXT COLLATE "C" NOT NULL,
            eula_source TEXT COLLATE "C",
            eula_template_id TEXT COLLATE "C",
            eula_digest TEXT COLLATE "C",
            eula_accepted_at TEXT COLLATE "C",
            eula TEXT COLLATE "C"
        )"#,
            r#"CREATE TABLE instances (
            id TEXT COLLATE "C" PRIMARY KEY,
            order_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES orders(id),
            owner_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
            provider_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            template_id TEXT COLLATE "C" NOT NULL,
            plan_id TEXT COLLATE "C",
            region TEXT COLLATE "C" NOT NULL,
            status TEXT COLLATE "C" NOT NULL CHECK (status IN ('running', 'stopped', 'released')),
            test BIGINT NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            released_at TEXT COLLATE "C",
            billing_timezone TEXT COLLATE "C",
            resources TEXT COLLATE "C"
        )"#,
            "CREATE INDEX instances_by_owner ON instances (owner_id, id)",
            "CREATE INDEX instances_by_provider ON instances (provider_id, id)",
            // Running intervals [started_at, ended_at) in Unix seconds; at most one open at once.
            r#"CREATE TABLE instance_intervals (
            instance_id TEXT COLLATE "C" NOT NULL REFERENCES instances(id),
            started_at BIGINT NOT NULL,
            ended_at BIGINT,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY,
            CHECK (ended_at IS NULL OR ended_at >= started_at)
        )"#,
            "CREATE INDEX instance_intervals_by_instance ON instance_intervals (instance_id, started_at)",
            "CREATE UNIQUE INDEX instance_intervals_one_open ON instance_intervals (instance_id)
            WHERE ended_at IS NULL",
            // The primary key is the record's identity, its source included (docs/RULES.md R9.10).
            r#"CREATE TABLE usage_records (
            instance_id TEXT COLLATE "C" NOT NULL REFERENCES instances(id),
            item_code TEXT COLLATE "C" NOT NULL,
            source TEXT COLLATE "C" NOT NULL,
            start_time BIGINT NOT NULL,
            end_time BIGINT NOT NULL,
            value BIGINT NOT NULL CHECK (value >= 0),
            scale BIGINT NOT NULL CHECK (scale BETWEEN 0 AND 8),
            period_start BIGINT NOT NULL,
            request_id TEXT COLLATE "C" NOT NULL,
            received_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (instance_id, item_code, source, start_time, end_time)
        )"#,
            "CREATE INDEX usage_records_totals ON usage_records
            (instance_id, period_start, item_code, scale, value)",
            // A usage page reads one instance's records in the order it lists them.
            "CREATE INDEX usage_records_in_order
            ON usage_records (instance_id, period_start, item_code, source, start_time, end_time)",
            // Each instance's next period to bill and when it closes; NULL once fully billed.
            r#"CREATE TABLE billing_cursors (
            instance_id TEXT COLLATE "C" PRIMARY KEY REFERENCES instances(id),
            next_period_start BIGINT NOT NULL,
            next_close_at BIGINT
        )"#,
            "CREATE INDEX billing_cursors_due ON billing_cursors (next_close_at, instance_id)",
            // UNIQUE (instance_id, period_start): an (instance, period) is billed at most once.
            r#"CREATE TABLE bills (
            id TEXT COLLATE "C" PRIMARY KEY,
            instance_id TEXT COLLATE "C" NOT NULL REFERENCES instances(id),
            owner_id TEXT COLLATE "C" NOT NULL,
            provider_id TEXT COLLATE "C" NOT NULL,
            product_id TEXT COLLATE "C" NOT NULL,
            period_start BIGINT NOT NULL,
            period_end BIGINT NOT NULL,
            currency TEXT COLLATE "C" NOT NULL,
            total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
            test BIGINT NOT NULL,
            lines TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            product_fees_cents BIGINT NOT NULL DEFAULT 0,
            resource_fees_cents BIGINT NOT NULL DEFAULT 0,
            resource_lines TEXT COLLATE "C" NOT NULL DEFAULT '[]',
            rowid BIGINT GENERATED ALWAYS AS IDENTITY,
            UNIQUE (instance_id, period_start)
        )"#,
            "CREATE INDEX bills_by_owner ON bills (owner_id, id)",
            "CREATE INDEX bills_by_provider ON bills (provider_id, id)",
            "CREATE INDEX bills_by_period_for_settlement
            ON bills (period_start, provider_id, product_id, test, product_fees_cents)",
            // A provider's statement reads its own bills of the month.
            "CREATE INDEX bills_by_provider_for_settlement
            ON bills (provider_id, period_start, product_id, test, product_fees_cents)",
            r#"CREATE TABLE idempotency_keys (
            principal_id TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            fingerprint TEXT COLLATE "C" NOT NULL,
            status BIGINT NOT NULL,
            content_type TEXT COLLATE "C",
            body BYTEA NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            created_unix BIGINT NOT NULL DEFAULT 0,
            location TEXT COLLATE "C",
            PRIMARY KEY (principal_id, key)
        )"#,
            // A key stands for its request 24 hours; the bill run purges the expired.
            "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_unix)",
            // Commission rates with an effective month (YYYY-MM), a decimal in [0, 1) as text
            // (never a float); a NULL rate returns the provider to the deployment's.
            r#"CREATE TABLE commission_rates (
            provider_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id),
            effective_from TEXT COLLATE "C" NOT NULL,
            rate TEXT COLLATE "C",
            set_by TEXT COLLATE "C" NOT NULL,
            set_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (provider_id, effective_from)
        )"#,
            // A month's row: the instants it was frozen with when first closed, and how many
            // providers its last close left waiting on unbilled periods.
            r#"CREATE TABLE settlement_months (
            month TEXT COLLATE "C" PRIMARY KEY,
            closed_by TEXT COLLATE "C" NOT NULL,
            closed_at TEXT COLLATE "C" NOT NULL,
            period_start BIGINT,
            period_end BIGINT,
            open_providers BIGINT NOT NULL DEFAULT 0
        )"#,
            r#"CREATE TABLE settlements (
            id TEXT COLLATE "C" PRIMARY KEY,
            provider_id TEXT COLLATE "C" NOT NULL,
            month TEXT COLLATE "C" NOT NULL REFERENCES settlement_months(month),
            rate TEXT COLLATE "C" NOT NULL,
            products TEXT COLLATE "C" NOT NULL,
            gross_cents BIGINT NOT NULL CHECK (gross_cents >= 0),
            commission_cents BIGINT NOT NULL CHECK (commission_cents >= 0),
            net_cents BIGINT NOT NULL CHECK (net_cents = gross_cents - commission_cents),
            bill_count BIGINT NOT NULL,
            closed_at TEXT COLLATE "C" NOT NULL,
            paid_at TEXT COLLATE "C",
            paid_by TEXT COLLATE "C",
            payout_reference TEXT COLLATE "C",
            period_start BIGINT,
            period_end BIGINT,
            write_off_count BIGINT NOT NULL DEFAULT 0,
            UNIQUE (provider_id, month)
        )"#,
            // The bills each statement counts: keyed by the bill, so a bill belongs to one
            // statement for ever.
            r#"CREATE TABLE statement_bills (
            bill_id TEXT COLLATE "C" PRIMARY KEY REFERENCES bills(id),
            statement_id TEXT COLLATE "C" NOT NULL REFERENCES settlements(id)
        )"#,
            "CREATE INDEX statement_bills_by_statement ON statement_bills (statement_id)",
            // Why an instance's period was left unbilled when a close last saw it.
            r#"CREATE TABLE settlement_blocks (
            instance_id TEXT COLLATE "C" PRIMARY KEY REFERENCES instances(id),
            period_start BIGINT NOT NULL,
            reason TEXT COLLATE "C" NOT NULL,
            seen_at TEXT COLLATE "C" NOT NULL
        )"#,
            // Instance-periods an operator closed without a bill, each once.
            r#"CREATE TABLE write_offs (
            id TEXT COLLATE "C" PRIMARY KEY,
            instance_id TEXT COLLATE "C" NOT NULL REFERENCES instances(id),
            provider_id TEXT COLLATE "C" NOT NULL,
            product_id TEXT COLLATE "C" NOT NULL,
            period_start BIGINT NOT NULL,
            period_end BIGINT NOT NULL,
            test BIGINT NOT NULL,
            reason TEXT COLLATE "C" NOT NULL,
            written_off_by TEXT COLLATE "C" NOT NULL,
            written_off_at TEXT COLLATE "C" NOT NULL,
            UNIQUE (instance_id, period_start)
        )"#,
            "CREATE INDEX write_offs_by_period ON write_offs (period_start, provider_id)",
            // Failed authentications per client address and minute (Unix seconds of its start).
            r#"CREATE TABLE auth_failures (
            client TEXT COLLATE "C" NOT NULL,
            minute BIGINT NOT NULL,
            failures BIGINT NOT NULL,
            PRIMARY KEY (client, minute)
        )"#,
            r#"CREATE TABLE console_sessions (
            id_hash TEXT COLLATE "C" PRIMARY KEY,
            principal_id TEXT COLLATE "C" NOT NULL,
            token_hash TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            expires_at BIGINT NOT NULL
        )"#,
            "CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at)",
        ],
    },
    Migration {
        version: 23,
        statements: COLLECTION_AND_ARREARS,
    },
    Migration {
        version: 24,
        statements: &[
            // Price changes by version, delisting, and the webhooks' outbox: SQLite's version 24.
            r#"CREATE TABLE pricing_versions (
                product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
                version BIGINT NOT NULL CHECK (version >= 1),
                pricing TEXT COLLATE "C" NOT NULL,
                raises_price BIGINT NOT NULL,
                created_by TEXT COLLATE "C" NOT NULL,
                created_at BIGINT NOT NULL,
                effective_at BIGINT NOT NULL,
                PRIMARY KEY (product_id, version)
            )"#,
            "ALTER TABLE instances ADD COLUMN pricing_version BIGINT NOT NULL DEFAULT 1",
            "ALTER TABLE bills ADD COLUMN pricing_version BIGINT NOT NULL DEFAULT 1",
            r#"CREATE TABLE delistings (
                product_id TEXT COLLATE "C" PRIMARY KEY REFERENCES products(id),
                actor_id TEXT COLLATE "C" NOT NULL,
                actor_role TEXT COLLATE "C" NOT NULL,
                reason TEXT COLLATE "C" NOT NULL,
                delisted_at BIGINT NOT NULL
            )"#,
            r#"CREATE TABLE delisting_log (
                product_id TEXT COLLATE "C" NOT NULL REFERENCES products(id),
                seq BIGINT NOT NULL,
                action TEXT COLLATE "C" NOT NULL CHECK (action IN ('delisted', 'relisted')),
                actor_id TEXT COLLATE "C" NOT NULL,
                actor_role TEXT COLLATE "C" NOT NULL,
                reason TEXT COLLATE "C",
                changed_at BIGINT NOT NULL,
                PRIMARY KEY (product_id, seq)
            )"#,
            r#"CREATE TABLE webhooks (
                id TEXT COLLATE "C" PRIMARY KEY,
                owner_id TEXT COLLATE "C" NOT NULL,
                owner_role TEXT COLLATE "C" NOT NULL,
                url TEXT COLLATE "C" NOT NULL,
                events TEXT COLLATE "C" NOT NULL,
                secret TEXT COLLATE "C" NOT NULL,
                created_at BIGINT NOT NULL,
                deleted_at BIGINT
            )"#,
            "CREATE INDEX webhooks_by_owner ON webhooks (owner_id, id)",
            r#"CREATE TABLE webhook_events (
                id TEXT COLLATE "C" PRIMARY KEY,
                type TEXT COLLATE "C" NOT NULL,
                provider_id TEXT COLLATE "C",
                customer_id TEXT COLLATE "C",
                data TEXT COLLATE "C" NOT NULL,
                created_at BIGINT NOT NULL
            )"#,
            r#"CREATE TABLE webhook_deliveries (
                webhook_id TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id),
                event_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_events(id),
                status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                attempts BIGINT NOT NULL,
                next_attempt_at BIGINT NOT NULL,
                first_attempt_at BIGINT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (webhook_id, event_id)
            )"#,
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
            "CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id)",
            r#"CREATE TABLE webhook_attempts (
                webhook_id TEXT COLLATE "C" NOT NULL,
                event_id TEXT COLLATE "C" NOT NULL,
                attempt BIGINT NOT NULL,
                attempted_at BIGINT NOT NULL,
                status_code BIGINT,
                error TEXT COLLATE "C",
                PRIMARY KEY (webhook_id, event_id, attempt)
            )"#,
        ],
    },
];

/// Version 23: credit notes, arrears that suspend instances, and payouts of what was collected —
/// SQLite's `storage::migrations::collection`, whose data statements are the same SQL. A
/// CHECK constraint changes here by name.
const COLLECTION_AND_ARREARS: &[&str] = &[
    "ALTER TABLE instances DROP CONSTRAINT instances_status_check",
    "ALTER TABLE instances ADD CONSTRAINT instances_status_check
        CHECK (status IN ('running', 'stopped', 'suspended', 'released'))",
    r#"CREATE TABLE instance_suspensions (
        instance_id TEXT COLLATE "C" NOT NULL REFERENCES instances(id),
        suspended_at BIGINT NOT NULL,
        resumed_at BIGINT,
        PRIMARY KEY (instance_id, suspended_at)
    )"#,
    "ALTER TABLE accounts ADD COLUMN arrears_since BIGINT",
    "ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check",
    "ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
        CHECK (kind IN ('top_up', 'bill', 'credit'))",
    "ALTER TABLE bills ADD COLUMN uncollected_product_cents BIGINT NOT NULL DEFAULT 0
        CHECK (uncollected_product_cents >= 0)",
    "ALTER TABLE bills ADD COLUMN uncollected_resource_cents BIGINT NOT NULL DEFAULT 0
        CHECK (uncollected_resource_cents >= 0)",
    "CREATE INDEX bills_uncollected ON bills (owner_id, period_start, id)
        WHERE uncollected_product_cents + uncollected_resource_cents > 0",
    r#"CREATE TABLE credit_notes (
        id TEXT COLLATE "C" PRIMARY KEY,
        bill_id TEXT COLLATE "C" NOT NULL REFERENCES bills(id),
        customer_id TEXT COLLATE "C" NOT NULL,
        provider_id TEXT COLLATE "C" NOT NULL,
        product_id TEXT COLLATE "C" NOT NULL,
        product_cents BIGINT NOT NULL CHECK (product_cents >= 0),
        resource_cents BIGINT NOT NULL CHECK (resource_cents >= 0),
        reason TEXT COLLATE "C" NOT NULL,
        ledger_entry_id TEXT COLLATE "C" NOT NULL,
        issued_by TEXT COLLATE "C" NOT NULL,
        issued_at BIGINT NOT NULL,
        CHECK (product_cents + resource_cents > 0)
    )"#,
    "CREATE INDEX credit_notes_by_bill ON credit_notes (bill_id)",
    "CREATE INDEX credit_notes_by_customer ON credit_notes (customer_id, id)",
    "CREATE INDEX credit_notes_by_provider ON credit_notes (provider_id, issued_at)",
    "CREATE INDEX credit_notes_by_time ON credit_notes (issued_at)",
    r#"CREATE TABLE collections (
        id TEXT COLLATE "C" PRIMARY KEY,
        bill_id TEXT COLLATE "C" NOT NULL REFERENCES bills(id),
        customer_id TEXT COLLATE "C" NOT NULL,
        provider_id TEXT COLLATE "C" NOT NULL,
        product_id TEXT COLLATE "C" NOT NULL,
        product_cents BIGINT NOT NULL,
        resource_cents BIGINT NOT NULL,
        ledger_entry_id TEXT COLLATE "C",
        collected_at BIGINT NOT NULL
    )"#,
    "CREATE INDEX collections_by_provider ON collections (provider_id, collected_at)",
    "CREATE INDEX collections_by_time ON collections (collected_at)",
    "DROP INDEX bills_by_provider_for_settlement",
    "CREATE INDEX bills_by_provider_for_settlement ON bills
        (provider_id, period_start, product_id, test, product_fees_cents, uncollected_product_cents)",
    "DROP INDEX bills_by_period_for_settlement",
    "CREATE INDEX bills_by_period_for_settlement ON bills
        (period_start, provider_id, product_id, test, product_fees_cents, uncollected_product_cents)",
    // A statement's net is its collected amount less commission, negative when credit notes
    // gave back more than was collected; statements written before settled what was billed.
    "ALTER TABLE settlements DROP CONSTRAINT settlements_commission_cents_check",
    // (A CHECK over several columns is named after its table alone.)
    "ALTER TABLE settlements DROP CONSTRAINT settlements_check",
    "ALTER TABLE settlements ADD COLUMN collected_cents BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE settlements ADD COLUMN credited_cents BIGINT NOT NULL DEFAULT 0
        CHECK (credited_cents >= 0)",
    "ALTER TABLE settlements ADD COLUMN uncollected_cents BIGINT NOT NULL DEFAULT 0
        CHECK (uncollected_cents >= 0)",
    "UPDATE settlements SET collected_cents = gross_cents",
    "ALTER TABLE settlements ADD CONSTRAINT settlements_net_cents_check
        CHECK (net_cents = collected_cents - commission_cents)",
    r#"CREATE TABLE statement_collections (
        collection_id TEXT COLLATE "C" PRIMARY KEY REFERENCES collections(id),
        statement_id TEXT COLLATE "C" NOT NULL REFERENCES settlements(id)
    )"#,
    "CREATE INDEX statement_collections_by_statement ON statement_collections (statement_id)",
    r#"CREATE TABLE statement_credit_notes (
        credit_note_id TEXT COLLATE "C" PRIMARY KEY REFERENCES credit_notes(id),
        statement_id TEXT COLLATE "C" NOT NULL REFERENCES settlements(id)
    )"#,
    "CREATE INDEX statement_credit_notes_by_statement ON statement_credit_notes (statement_id)",
    crate::platform::storage::migrations::collection::OWED_BY_ARREARS,
    crate::platform::storage::migrations::collection::COLLECTED_BEFORE,
    crate::platform::storage::migrations::collection::SETTLED_BEFORE,
];
