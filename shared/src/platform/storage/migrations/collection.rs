//! Version 23: credit notes, arrears that suspend instances, and payouts of what was collected.

/// Credit notes, arrears that suspend instances, and payouts of what was collected
/// (docs/DECISIONS.md, "After the bill"). Three tables change a CHECK constraint — an instance
/// may be `suspended`, a ledger entry a `credit`, a statement's net is its collected amount less
/// commission — and SQLite changes one only by rebuilding the table: each is copied, dropped and
/// created anew under its own name, with foreign keys checked at the commit (the rows that
/// reference it refer to the new table by name, and find their rows again). Then what was
/// billed before is given its collection: every non-test bill was deducted when it was written,
/// so it is collected, except — for a customer whose balance is below zero — its newest bills
/// not yet in a statement, up to what the balance owes (their cloud resources' fees first, since
/// a bill is collected product fees first). The collection of a bill a statement settled is
/// that statement's.
pub(super) const COLLECTION_AND_ARREARS: &[&str] = &[
    "PRAGMA defer_foreign_keys = ON",
    // A suspended instance: stopped by a bill run while its customer's arrears outlast the
    // grace, running again when a top-up ends them.
    "CREATE TABLE instances_before_suspension AS SELECT * FROM instances",
    "DROP TABLE instances",
    "CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL UNIQUE REFERENCES orders(id),
        owner_id TEXT NOT NULL REFERENCES principals(id),
        product_id TEXT NOT NULL REFERENCES products(id),
        provider_id TEXT NOT NULL REFERENCES principals(id),
        template_id TEXT NOT NULL,
        plan_id TEXT,
        region TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'suspended', 'released')),
        test INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        released_at TEXT,
        billing_timezone TEXT,
        resources TEXT
    )",
    "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id,
        plan_id, region, status, test, created_at, released_at, billing_timezone, resources)
     SELECT id, order_id, owner_id, product_id, provider_id, template_id, plan_id, region,
        status, test, created_at, released_at, billing_timezone, resources
     FROM instances_before_suspension",
    "DROP TABLE instances_before_suspension",
    "CREATE INDEX instances_by_owner ON instances (owner_id, id)",
    "CREATE INDEX instances_by_provider ON instances (provider_id, id)",
    // Each suspension of an instance and its resumption (NULL while it lasts), in Unix seconds.
    "CREATE TABLE instance_suspensions (
        instance_id TEXT NOT NULL REFERENCES instances(id),
        suspended_at BIGINT NOT NULL,
        resumed_at BIGINT,
        PRIMARY KEY (instance_id, suspended_at)
    )",
    // Since when a customer's balance is below zero, set by the bill run that took it there;
    // NULL while it is not.
    "ALTER TABLE accounts ADD COLUMN arrears_since BIGINT",
    // A ledger entry may be a credit note's credit.
    "CREATE TABLE ledger_entries_with_credits (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES accounts(customer_id),
        kind TEXT NOT NULL CHECK (kind IN ('top_up', 'bill', 'credit')),
        amount_cents INTEGER NOT NULL,
        balance_after_cents INTEGER NOT NULL,
        reference TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    )",
    // The ledger reads in the order entries were written: their rowids come along.
    "INSERT INTO ledger_entries_with_credits (rowid, id, customer_id, kind, amount_cents,
        balance_after_cents, reference, created_by, created_at)
     SELECT rowid, id, customer_id, kind, amount_cents, balance_after_cents, reference,
        created_by, created_at
     FROM ledger_entries",
    "DROP TABLE ledger_entries",
    "ALTER TABLE ledger_entries_with_credits RENAME TO ledger_entries",
    "CREATE INDEX ledger_entries_by_customer ON ledger_entries (customer_id)",
    "CREATE UNIQUE INDEX ledger_entries_one_per_bill ON ledger_entries (reference)
        WHERE kind = 'bill'",
    // What of a bill's two parts is still owed: collected as the customer's funds cover it.
    "ALTER TABLE bills ADD COLUMN uncollected_product_cents INTEGER NOT NULL DEFAULT 0
        CHECK (uncollected_product_cents >= 0)",
    "ALTER TABLE bills ADD COLUMN uncollected_resource_cents INTEGER NOT NULL DEFAULT 0
        CHECK (uncollected_resource_cents >= 0)",
    // A customer's bills still owed, oldest period first: what a top-up collects.
    "CREATE INDEX bills_uncollected ON bills (owner_id, period_start, id)
        WHERE uncollected_product_cents + uncollected_resource_cents > 0",
    // Credit notes: an operator credits part of a bill back (each part stated).
    "CREATE TABLE credit_notes (
        id TEXT PRIMARY KEY,
        bill_id TEXT NOT NULL REFERENCES bills(id),
        customer_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        product_cents BIGINT NOT NULL CHECK (product_cents >= 0),
        resource_cents BIGINT NOT NULL CHECK (resource_cents >= 0),
        reason TEXT NOT NULL,
        ledger_entry_id TEXT NOT NULL,
        issued_by TEXT NOT NULL,
        issued_at BIGINT NOT NULL,
        CHECK (product_cents + resource_cents > 0)
    )",
    "CREATE INDEX credit_notes_by_bill ON credit_notes (bill_id)",
    "CREATE INDEX credit_notes_by_customer ON credit_notes (customer_id, id)",
    "CREATE INDEX credit_notes_by_provider ON credit_notes (provider_id, issued_at)",
    "CREATE INDEX credit_notes_by_time ON credit_notes (issued_at)",
    // The money of a bill as it moved: each collection of its parts (negative: given back by a
    // credit note), when, and the ledger entry whose funds moved it (NULL: before collections
    // were recorded).
    "CREATE TABLE collections (
        id TEXT PRIMARY KEY,
        bill_id TEXT NOT NULL REFERENCES bills(id),
        customer_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        product_cents BIGINT NOT NULL,
        resource_cents BIGINT NOT NULL,
        ledger_entry_id TEXT,
        collected_at BIGINT NOT NULL
    )",
    // A month's statements sum what was collected within its instants.
    "CREATE INDEX collections_by_provider ON collections (provider_id, collected_at)",
    "CREATE INDEX collections_by_time ON collections (collected_at)",
    // A statement also sums what its month's bills still owe: the indexes its sums read hold it.
    "DROP INDEX bills_by_provider_for_settlement",
    "CREATE INDEX bills_by_provider_for_settlement ON bills
        (provider_id, period_start, product_id, test, product_fees_cents, uncollected_product_cents)",
    "DROP INDEX bills_by_period_for_settlement",
    "CREATE INDEX bills_by_period_for_settlement ON bills
        (period_start, provider_id, product_id, test, product_fees_cents, uncollected_product_cents)",
    // A statement settles what was collected in its month: its net is that less commission,
    // negative when credit notes gave back more than was collected.
    "CREATE TABLE settlements_before_collection AS SELECT * FROM settlements",
    "DROP TABLE settlements",
    "CREATE TABLE settlements (
        id TEXT PRIMARY KEY,
        provider_id TEXT NOT NULL,
        month TEXT NOT NULL REFERENCES settlement_months(month),
        rate TEXT NOT NULL,
        products TEXT NOT NULL,
        gross_cents BIGINT NOT NULL CHECK (gross_cents >= 0),
        collected_cents BIGINT NOT NULL,
        credited_cents BIGINT NOT NULL CHECK (credited_cents >= 0),
        uncollected_cents BIGINT NOT NULL CHECK (uncollected_cents >= 0),
        commission_cents BIGINT NOT NULL,
        net_cents BIGINT NOT NULL CHECK (net_cents = collected_cents - commission_cents),
        bill_count INTEGER NOT NULL,
        closed_at TEXT NOT NULL,
        paid_at TEXT,
        paid_by TEXT,
        payout_reference TEXT,
        period_start BIGINT,
        period_end BIGINT,
        write_off_count INTEGER NOT NULL DEFAULT 0,
        UNIQUE (provider_id, month)
    )",
    // Statements written before settled what was billed: that was their collected amount.
    "INSERT INTO settlements (id, provider_id, month, rate, products, gross_cents,
        collected_cents, credited_cents, uncollected_cents, commission_cents, net_cents,
        bill_count, closed_at, paid_at, paid_by, payout_reference, period_start, period_end,
        write_off_count)
     SELECT id, provider_id, month, rate, products, gross_cents, gross_cents, 0, 0,
        commission_cents, net_cents, bill_count, closed_at, paid_at, paid_by, payout_reference,
        period_start, period_end, write_off_count
     FROM settlements_before_collection",
    "DROP TABLE settlements_before_collection",
    // Each collection and each credit note belongs to one statement for ever.
    "CREATE TABLE statement_collections (
        collection_id TEXT PRIMARY KEY REFERENCES collections(id),
        statement_id TEXT NOT NULL REFERENCES settlements(id)
    )",
    "CREATE INDEX statement_collections_by_statement ON statement_collections (statement_id)",
    "CREATE TABLE statement_credit_notes (
        credit_note_id TEXT PRIMARY KEY REFERENCES credit_notes(id),
        statement_id TEXT NOT NULL REFERENCES settlements(id)
    )",
    "CREATE INDEX statement_credit_notes_by_statement ON statement_credit_notes (statement_id)",
    OWED_BY_ARREARS,
    COLLECTED_BEFORE,
    SETTLED_BEFORE,
];

/// What customers in arrears still owe stays owed: their newest bills no statement settled,
/// up to the balance's debt, resource fees first.
pub(crate) const OWED_BY_ARREARS: &str = "UPDATE bills SET
        uncollected_resource_cents = CASE WHEN u.unpaid < bills.resource_fees_cents
            THEN u.unpaid ELSE bills.resource_fees_cents END,
        uncollected_product_cents = CASE WHEN u.unpaid < bills.resource_fees_cents
            THEN 0 ELSE u.unpaid - bills.resource_fees_cents END
     FROM (
        SELECT r.id, CASE WHEN a.debt - r.newer >= r.total_cents THEN r.total_cents
                          ELSE a.debt - r.newer END AS unpaid
        FROM (
            SELECT b.id, b.owner_id, b.total_cents,
                COALESCE(SUM(b.total_cents) OVER (PARTITION BY b.owner_id
                    ORDER BY b.period_start DESC, b.id DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer
            FROM bills b
            WHERE b.test = 0 AND b.total_cents > 0
              AND NOT EXISTS (SELECT 1 FROM statement_bills s WHERE s.bill_id = b.id)
        ) AS r
        JOIN (SELECT customer_id, -balance_cents AS debt FROM accounts WHERE balance_cents < 0)
            AS a ON a.customer_id = r.owner_id
        WHERE a.debt > r.newer
     ) AS u
     WHERE bills.id = u.id";

/// The rest of every deducted bill was collected; dated at its period's start, so that it
/// counts in the month the bill did.
pub(crate) const COLLECTED_BEFORE: &str =
    "INSERT INTO collections (id, bill_id, customer_id, provider_id, product_id, product_cents,
        resource_cents, ledger_entry_id, collected_at)
     SELECT 'col-' || id, id, owner_id, provider_id, product_id,
        product_fees_cents - uncollected_product_cents,
        resource_fees_cents - uncollected_resource_cents, NULL, period_start
     FROM bills
     WHERE test = 0
       AND total_cents > uncollected_product_cents + uncollected_resource_cents";

/// The collection of a bill a written statement settled is that statement's.
pub(crate) const SETTLED_BEFORE: &str = "INSERT INTO statement_collections (collection_id, statement_id)
     SELECT c.id, s.statement_id FROM collections c JOIN statement_bills s ON s.bill_id = c.bill_id";
