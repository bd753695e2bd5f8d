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
    // What customers in arrears still owe stays owed: their newest bills no statement settled,
    // up to the balance's debt, resource fees first.
    "UPDATE bills SET
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
     WHERE bills.id = u.id",
    // The rest of every deducted bill was collected; dated at its period's start, so that it
    // counts in the month the bill did.
    "INSERT INTO collections (id, bill_id, customer_id, provider_id, product_id, product_cents,
        resource_cents, ledger_entry_id, collected_at)
     SELECT 'col-' || id, id, owner_id, provider_id, product_id,
        product_fees_cents - uncollected_product_cents,
        resource_fees_cents - uncollected_resource_cents, NULL, period_start
     FROM bills
     WHERE test = 0
       AND total_cents > uncollected_product_cents + uncollected_resource_cents",
    "INSERT INTO statement_collections (collection_id, statement_id)
     SELECT c.id, s.statement_id FROM collections c JOIN statement_bills s ON s.bill_id = c.bill_id",
];

#[cfg(test)]
mod tests {
    use super::super::{migrate, migrate_to};
    use crate::platform::storage::Backend;
    use crate::platform::storage::native::NativeBackend;

    /// What a deployment wrote before collections: a customer 150.00 in arrears with three
    /// bills of 100.00 (the oldest settled by a written statement), another in credit, a test
    /// bill and a bill of nothing.
    const BEFORE_COLLECTIONS: &[&str] = &[
        "INSERT INTO principals (id, role, name, account_type, token_hash, created_at, token_issued_at)
         VALUES ('usr-p', 'provider', 'p', NULL, 'h1', 't', 't'),
                ('usr-c1', 'customer', 'c1', 'enterprise', 'h2', 't', 't'),
                ('usr-c2', 'customer', 'c2', 'enterprise', 'h3', 't', 't')",
        "INSERT INTO services (id, provider_id, spec, created_at) VALUES ('svc-1', 'usr-p', '{}', 't')",
        "INSERT INTO products (id, service_id, provider_id, status, created_at, updated_at)
         VALUES ('prod-1', 'svc-1', 'usr-p', 'published', 't', 't')",
        "INSERT INTO orders (id, owner_id, product_id, template_id, region, test, instance_id, created_at)
         VALUES ('ord-1', 'usr-c1', 'prod-1', 'tpl', 'r', 0, 'si-1', 't'),
                ('ord-2', 'usr-c2', 'prod-1', 'tpl', 'r', 0, 'si-2', 't')",
        "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id, region,
                                status, test, created_at)
         VALUES ('si-1', 'ord-1', 'usr-c1', 'prod-1', 'usr-p', 'tpl', 'r', 'stopped', 0, 't'),
                ('si-2', 'ord-2', 'usr-c2', 'prod-1', 'usr-p', 'tpl', 'r', 'running', 0, 't')",
        "INSERT INTO bills (id, instance_id, owner_id, provider_id, product_id, period_start,
                            period_end, currency, total_cents, test, lines, created_at,
                            product_fees_cents, resource_fees_cents)
         VALUES ('bill-1', 'si-1', 'usr-c1', 'usr-p', 'prod-1', 0, 3600, 'CNY', 10000, 0, '[]', 't', 8000, 2000),
                ('bill-2', 'si-1', 'usr-c1', 'usr-p', 'prod-1', 3600, 7200, 'CNY', 10000, 0, '[]', 't', 9000, 1000),
                ('bill-3', 'si-1', 'usr-c1', 'usr-p', 'prod-1', 7200, 10800, 'CNY', 10000, 0, '[]', 't', 7000, 3000),
                ('bill-4', 'si-2', 'usr-c2', 'usr-p', 'prod-1', 0, 3600, 'CNY', 500, 0, '[]', 't', 500, 0),
                ('bill-5', 'si-2', 'usr-c2', 'usr-p', 'prod-1', 3600, 7200, 'CNY', 700, 1, '[]', 't', 700, 0),
                ('bill-6', 'si-2', 'usr-c2', 'usr-p', 'prod-1', 7200, 10800, 'CNY', 0, 0, '[]', 't', 0, 0)",
        "INSERT INTO accounts (customer_id, balance_cents, updated_at)
         VALUES ('usr-c1', -15000, 't'), ('usr-c2', 1000, 't')",
        "INSERT INTO ledger_entries (id, customer_id, kind, amount_cents, balance_after_cents,
                                     reference, created_by, created_at)
         VALUES ('led-2', 'usr-c1', 'top_up', 15000, 15000, NULL, 'usr-admin', 't'),
                ('led-1', 'usr-c1', 'bill', -30000, -15000, 'bill-1', 'usr-admin', 't')",
        "INSERT INTO settlement_months (month, closed_by, closed_at, period_start, period_end)
         VALUES ('1970-01', 'usr-admin', 't', 0, 3600)",
        "INSERT INTO settlements (id, provider_id, month, rate, products, gross_cents,
                                  commission_cents, net_cents, bill_count, closed_at)
         VALUES ('stl-1', 'usr-p', '1970-01', '0.1', '[]', 8000, 800, 7200, 1, 't')",
        "INSERT INTO statement_bills (bill_id, statement_id) VALUES ('bill-1', 'stl-1')",
    ];

    /// Each collection: its bill, parts, instant and ledger entry, by bill.
    fn collections(
        db: &dyn crate::platform::storage::Database,
    ) -> Vec<(String, i64, i64, i64, Option<String>)> {
        db.execute(
            "SELECT bill_id, product_cents, resource_cents, collected_at, ledger_entry_id
             FROM collections ORDER BY bill_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.text(0).unwrap(),
                r.int(1).unwrap(),
                r.int(2).unwrap(),
                r.int(3).unwrap(),
                r.opt_text(4).unwrap(),
            )
        })
        .collect()
    }

    #[test]
    fn bills_before_collections_are_collected_but_what_arrears_still_owe() {
        let dir = tempfile::tempdir().unwrap();
        let backend = NativeBackend::new(dir.path().join("db.sqlite"));
        let db = backend.open_db().unwrap();
        db.execute("PRAGMA foreign_keys = ON", &[]).unwrap();
        migrate_to(db.as_ref(), 22).unwrap();
        for statement in BEFORE_COLLECTIONS {
            db.execute(statement, &[]).unwrap();
        }
        migrate(db.as_ref()).unwrap();
        let ints = |sql: &str| -> Vec<Vec<i64>> {
            db.execute(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (0..r.0.len()).map(|i| r.int(i).unwrap()).collect())
                .collect()
        };
        // The newest unsettled bills owe the 150.00, resource fees first: all of bill-3, and
        // 50.00 of bill-2 (its 10.00 of resources and 40.00 of product fees). bill-1 was settled.
        assert_eq!(
            ints(
                "SELECT uncollected_product_cents, uncollected_resource_cents FROM bills ORDER BY id"
            ),
            [[0, 0], [4000, 1000], [7000, 3000], [0, 0], [0, 0], [0, 0]]
        );
        let collected = collections(db.as_ref());
        assert_eq!(
            collected,
            [
                ("bill-1".to_owned(), 8000, 2000, 0, None),
                ("bill-2".to_owned(), 5000, 0, 3600, None),
                ("bill-4".to_owned(), 500, 0, 0, None),
            ]
        );
        // The statement settled bill-1's collection: it was its collected amount.
        assert_eq!(
            ints("SELECT COUNT(*) FROM statement_collections WHERE statement_id = 'stl-1'"),
            [[1]]
        );
        assert_eq!(
            ints(
                "SELECT gross_cents, collected_cents, credited_cents, commission_cents, net_cents
                  FROM settlements"
            ),
            [[8000, 8000, 0, 800, 7200]]
        );
        // The rebuilt tables keep their rows, the ledger its order, and the references hold.
        assert_eq!(ints("SELECT COUNT(*) FROM instances"), [[2]]);
        let ledger = db
            .execute("SELECT id FROM ledger_entries ORDER BY rowid", &[])
            .unwrap();
        assert_eq!(ledger[0].text(0).unwrap(), "led-2");
        db.execute(
            "UPDATE instances SET status = 'suspended' WHERE id = 'si-2'",
            &[],
        )
        .unwrap();
        db.execute(
            "INSERT INTO ledger_entries (id, customer_id, kind, amount_cents, balance_after_cents,
                                         reference, created_by, created_at)
             VALUES ('led-3', 'usr-c2', 'credit', 100, 1100, 'bill-4', 'usr-admin', 't')",
            &[],
        )
        .unwrap();
        let orphan = db.execute(
            "INSERT INTO statement_bills (bill_id, statement_id) VALUES ('bill-2', 'stl-none')",
            &[],
        );
        assert!(orphan.is_err(), "foreign keys still hold");
        assert!(ints("PRAGMA foreign_key_check").is_empty());
    }
}
