//! Upgrading a deployment's database: what an older version wrote is there, and means what it
//! meant, after the migrations that followed — on both engines.

use nestmarket::platform::storage::native::{NativeBackend, migrate_to};
use nestmarket::platform::storage::{Backend, Database};
use testkit::engine::{Engine, PostgresSchema, engine};

/// A database of this process's engine, empty, and what keeps it alive.
fn empty_database() -> (NativeBackend, Box<dyn std::any::Any>) {
    match engine() {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let backend = NativeBackend::new(dir.path().join("db.sqlite"));
            (backend, Box::new(dir))
        }
        Engine::Postgres => {
            let schema = PostgresSchema::new();
            (NativeBackend::postgres(schema.url()), Box::new(schema))
        }
    }
}

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

/// The rows of `sql`, every column an integer.
fn ints(db: &dyn Database, sql: &str) -> Vec<Vec<i64>> {
    db.execute(sql, &[])
        .unwrap()
        .iter()
        .map(|r| (0..r.0.len()).map(|i| r.int(i).unwrap()).collect())
        .collect()
}

/// Each collection: its bill, parts, instant and ledger entry, by bill.
fn collections(db: &dyn Database) -> Vec<(String, i64, i64, i64, Option<String>)> {
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
    let (backend, _database) = empty_database();
    let db = backend.open_db().unwrap();
    if engine() == Engine::Sqlite {
        db.execute("PRAGMA foreign_keys = ON", &[]).unwrap();
    }
    migrate_to(db.as_ref(), 22).unwrap();
    for statement in BEFORE_COLLECTIONS {
        db.execute(statement, &[]).unwrap();
    }
    migrate_to(db.as_ref(), 23).unwrap();
    let db = db.as_ref();
    // The newest unsettled bills owe the 150.00, resource fees first: all of bill-3, and
    // 50.00 of bill-2 (its 10.00 of resources and 40.00 of product fees). bill-1 was settled.
    assert_eq!(
        ints(
            db,
            "SELECT uncollected_product_cents, uncollected_resource_cents FROM bills ORDER BY id"
        ),
        [[0, 0], [4000, 1000], [7000, 3000], [0, 0], [0, 0], [0, 0]]
    );
    assert_eq!(
        collections(db),
        [
            ("bill-1".to_owned(), 8000, 2000, 0, None),
            ("bill-2".to_owned(), 5000, 0, 3600, None),
            ("bill-4".to_owned(), 500, 0, 0, None),
        ]
    );
    // The statement settled bill-1's collection: it was its collected amount.
    assert_eq!(
        ints(
            db,
            "SELECT COUNT(*) FROM statement_collections WHERE statement_id = 'stl-1'"
        ),
        [[1]]
    );
    assert_eq!(
        ints(
            db,
            "SELECT gross_cents, collected_cents, credited_cents, commission_cents, net_cents
             FROM settlements"
        ),
        [[8000, 8000, 0, 800, 7200]]
    );
    // The changed tables keep their rows, the ledger its order, and the references hold.
    assert_eq!(ints(db, "SELECT COUNT(*) FROM instances"), [[2]]);
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
    if engine() == Engine::Sqlite {
        assert!(ints(db, "PRAGMA foreign_key_check").is_empty());
    }
}
