//! The native PostgreSQL adapter of the tests and benchmarks, over the `postgres` crate: a pool
//! of sessions, as Spin's host keeps one per address, each lent to one connection at a time and
//! returned once no transaction is open on it. Parameters bind as strictly as Spin's do (an
//! integer only to a `BIGINT`, text only to text), so a statement the tests pass runs under
//! Spin too.

use std::error::Error as _;
use std::sync::{Arc, Mutex};

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};

use super::{BEGIN, error, placeholders, storable, unreachable};
use crate::platform::storage::{Database, Dialect, Row, StorageError, Value};

/// Sessions to one PostgreSQL database, reused across connections.
pub(crate) struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    pub(crate) fn new(url: &str) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A connection on an idle session, or on a new one.
    pub(crate) fn open(self: &Arc<Self>) -> Result<PgDb, StorageError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => Client::connect(&self.url, NoTls).map_err(pg_error)?,
        };
        Ok(PgDb {
            client: Mutex::new(Some(client)),
            in_transaction: Mutex::new(false),
            pool: Arc::clone(self),
        })
    }
}

/// One connection: a pooled session, returned to the pool when dropped outside a transaction
/// (inside one it is closed, and the server rolls the transaction back).
pub(crate) struct PgDb {
    client: Mutex<Option<Client>>,
    in_transaction: Mutex<bool>,
    pool: Arc<Pool>,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let open = self.in_transaction.lock().map(|t| *t).unwrap_or(true);
        if let (false, Ok(mut client)) = (open, self.client.lock())
            && let (Some(client), Ok(mut idle)) = (client.take(), self.pool.idle.lock())
            && !client.is_closed()
        {
            idle.push(client);
        }
    }
}

impl Database for PgDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        let rows = self.run(sql, params, |client, statement, params| {
            client.query(statement, params)
        })?;
        rows.iter().map(row).collect()
    }

    fn written(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
        self.run(sql, params, |client, statement, params| {
            client.execute(statement, params)
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn begin(&self) -> Result<(), StorageError> {
        self.execute(BEGIN, &[])?;
        self.set_in_transaction(true);
        Ok(())
    }

    fn commit(&self) -> Result<(), StorageError> {
        self.execute("COMMIT", &[])?;
        self.set_in_transaction(false);
        Ok(())
    }

    fn rollback(&self) -> Result<(), StorageError> {
        self.execute("ROLLBACK", &[])?;
        self.set_in_transaction(false);
        Ok(())
    }
}

impl PgDb {
    /// Runs `sql` (its placeholders translated) with `params` bound, through `run`.
    fn run<T>(
        &self,
        sql: &str,
        params: &[Value],
        run: impl FnOnce(&mut Client, &str, &[&(dyn ToSql + Sync)]) -> Result<T, postgres::Error>,
    ) -> Result<T, StorageError> {
        let mut client = self
            .client
            .lock()
            .map_err(|_| StorageError::other("a poisoned PostgreSQL session"))?;
        let client = client
            .as_mut()
            .ok_or_else(|| StorageError::other("a closed PostgreSQL session"))?;
        let bound: Vec<Param> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        run(client, &placeholders(sql), &refs).map_err(|e| pg_error(e).in_statement(sql))
    }

    fn set_in_transaction(&self, open: bool) {
        if let Ok(mut t) = self.in_transaction.lock() {
            *t = open;
        }
    }
}

/// A failure of the `postgres` crate: a database error by its SQLSTATE; a broken or refused
/// connection is the server out of reach.
fn pg_error(e: postgres::Error) -> StorageError {
    if let Some(db) = e.as_db_error() {
        return error(db.code().code(), db.message());
    }
    let io = e
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    if e.is_closed() || io {
        unreachable(e.to_string())
    } else {
        StorageError::other(e.to_string())
    }
}

/// A result row as the port's values. Only the types the schema uses come back; anything else
/// (a `NUMERIC` sum, say) is refused, as Spin's adapter refuses it: cast it in the SQL.
fn row(r: &postgres::Row) -> Result<Row, StorageError> {
    let bad = |e: postgres::Error| StorageError::other(e.to_string());
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map(Value::Integer)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|n| Value::Integer(n.into()))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|n| Value::Integer(n.into()))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|b| Value::Integer(b.into()))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map(Value::Real)
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(Value::Blob)
        } else if <String as postgres::types::FromSql>::accepts(ty) {
            r.try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Value::Text)
        } else if *ty == Type::VOID {
            None
        } else {
            return Err(StorageError::other(format!(
                "column {} is of type {ty}: cast it to BIGINT or TEXT",
                column.name()
            )));
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

/// A parameter, bound only to a column or cast of its own type, as Spin's host binds it.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("a {:?} parameter does not bind to {ty}", self.0).into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(n) if <i64 as ToSql>::accepts(ty) => n.to_sql(ty, out),
            Value::Real(f) if <f64 as ToSql>::accepts(ty) => f.to_sql(ty, out),
            Value::Text(s) if <&str as ToSql>::accepts(ty) => storable(s).as_ref().to_sql(ty, out),
            Value::Blob(b) if <&[u8] as ToSql>::accepts(ty) => b.as_slice().to_sql(ty, out),
            _ => Err(wrong()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
