//! The two schemas are one: PostgreSQL's migrations build the tables, columns, keys and indexes
//! SQLite's build, so a version added to one list and forgotten in the other fails here.

use std::collections::{BTreeMap, BTreeSet};

use nestmarket::platform::storage::native::NativeBackend;
use nestmarket::platform::storage::{Database, Storage};
use testkit::engine::PostgresSchema;

/// A table as both engines must have it: each column's name, type class and whether it may be
/// NULL; its primary key; its unique keys; and its named indexes (name, unique, columns).
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, (&'static str, bool)>,
    primary_key: Vec<String>,
    unique: BTreeSet<Vec<String>>,
    indexes: BTreeMap<String, (bool, Vec<String>)>,
}

/// The same type on both engines: SQLite's declared type, PostgreSQL's data type.
fn type_class(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => panic!("a column of an unexpected type {other}"),
    }
}

/// `(a, b, c)` of an index's definition, its expressions' column names.
fn columns_of(definition: &str) -> Vec<String> {
    let open = definition.find('(').expect("an index's columns");
    let close = open + definition[open..].find(')').expect("their end");
    definition[open + 1..close]
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        // PostgreSQL's tables listed in insertion order carry it as a column: SQLite's indexes
        // hold it implicitly.
        .filter(|c| c != "rowid")
        .collect()
}

fn sqlite_schema(db: &dyn Database) -> BTreeMap<String, Table> {
    let mut tables = BTreeMap::new();
    let names = db
        .execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'",
            &[],
        )
        .unwrap();
    for name in names.iter().map(|r| r.text(0).unwrap()) {
        let mut table = Table::default();
        let mut key: Vec<(i64, String)> = Vec::new();
        for c in db
            .execute(&format!("PRAGMA table_info(\"{name}\")"), &[])
            .unwrap()
        {
            let column = c.text(1).unwrap();
            let not_null = c.int(3).unwrap() != 0 || c.int(5).unwrap() > 0;
            table
                .columns
                .insert(column.clone(), (type_class(&c.text(2).unwrap()), !not_null));
            if c.int(5).unwrap() > 0 {
                key.push((c.int(5).unwrap(), column));
            }
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        for index in db
            .execute(&format!("PRAGMA index_list(\"{name}\")"), &[])
            .unwrap()
        {
            let (index_name, unique, origin) = (
                index.text(1).unwrap(),
                index.int(2).unwrap() != 0,
                index.text(3).unwrap(),
            );
            let mut columns: Vec<(i64, String)> = db
                .execute(&format!("PRAGMA index_info(\"{index_name}\")"), &[])
                .unwrap()
                .iter()
                .map(|c| (c.int(0).unwrap(), c.text(2).unwrap()))
                .collect();
            columns.sort();
            let columns: Vec<String> = columns.into_iter().map(|(_, c)| c).collect();
            match origin.as_str() {
                "u" => {
                    table.unique.insert(columns);
                }
                "c" => {
                    table.indexes.insert(index_name, (unique, columns));
                }
                _ => {} // the primary key's own index
            }
        }
        tables.insert(name, table);
    }
    tables
}

fn postgres_schema(db: &dyn Database) -> BTreeMap<String, Table> {
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for c in db
        .execute(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT), CAST(is_nullable AS TEXT),
                    CAST(data_type AS TEXT)
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name != 'schema_migrations'
               AND column_name != 'rowid'",
            &[],
        )
        .unwrap()
    {
        tables
            .entry(c.text(0).unwrap())
            .or_default()
            .columns
            .insert(
                c.text(1).unwrap(),
                (type_class(&c.text(3).unwrap()), c.text(2).unwrap() == "YES"),
            );
    }
    for index in db
        .execute(
            "SELECT CAST(i.tablename AS TEXT), CAST(i.indexname AS TEXT), i.indexdef,
                    COALESCE(CAST(c.contype AS TEXT), '')
             FROM pg_indexes i
             LEFT JOIN pg_constraint c ON c.conname = i.indexname
               AND c.connamespace = CAST(CAST(i.schemaname AS TEXT) AS regnamespace)
             WHERE i.schemaname = current_schema() AND i.tablename != 'schema_migrations'",
            &[],
        )
        .unwrap()
    {
        let table = tables.entry(index.text(0).unwrap()).or_default();
        let definition = index.text(2).unwrap();
        let columns = columns_of(&definition);
        match index.text(3).unwrap().as_str() {
            "p" => table.primary_key = columns,
            "u" => {
                table.unique.insert(columns);
            }
            _ => {
                let unique = definition.starts_with("CREATE UNIQUE");
                table
                    .indexes
                    .insert(index.text(1).unwrap(), (unique, columns));
            }
        }
    }
    tables
}

#[test]
fn postgres_migrations_build_the_schema_sqlite_migrations_build() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Storage::new(NativeBackend::new(dir.path().join("db.sqlite")));
    let schema = PostgresSchema::new();
    let postgres = Storage::new(NativeBackend::postgres(schema.url()));
    let (sqlite, postgres) = (sqlite.db().unwrap(), postgres.db().unwrap());
    let version = |db: &dyn Database| {
        db.execute("SELECT MAX(version) FROM schema_migrations", &[])
            .unwrap()[0]
            .int(0)
            .unwrap()
    };
    assert_eq!(
        version(postgres),
        version(sqlite),
        "each SQLite migration has its PostgreSQL counterpart"
    );
    let (sqlite, postgres) = (sqlite_schema(sqlite), postgres_schema(postgres));
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the tables"
    );
    for (name, table) in &sqlite {
        assert_eq!(table, &postgres[name], "table {name} (SQLite, PostgreSQL)");
    }
}
