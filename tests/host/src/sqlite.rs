//! `fermyon:spin/sqlite@2.0.0` as Spin implements it for the `default` database: every `open` is a new
//! rusqlite connection to `<state dir>/sqlite_db.db` (default journal mode), statements are prepared
//! (cached) on that connection, parameters and column values map one to one onto rusqlite's values, and
//! every SQLite failure is reported as `io(<message>)`.
use crate::bindings::fermyon::spin::sqlite::{
    Error, Host, HostConnection, QueryResult, RowResult, Value,
};
use crate::host::HostState;
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

/// The host side of a guest's `connection` resource.
pub struct OpenConnection {
    connection: rusqlite::Connection,
}

impl Host for HostState {}

impl HostConnection for HostState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.component.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let connection = match rusqlite::Connection::open(self.app.sqlite_path()) {
            Ok(connection) => connection,
            Err(e) => return Ok(Err(Error::Io(e.to_string()))),
        };
        Ok(Ok(self.table.push(OpenConnection { connection })?))
    }

    fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let connection = &self.table.get(&connection)?.connection;
        Ok(execute(connection, &statement, parameters).map_err(|e| Error::Io(e.to_string())))
    }

    fn drop(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn execute(
    connection: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> rusqlite::Result<QueryResult> {
    let mut statement = connection.prepare_cached(statement)?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let params = rusqlite::params_from_iter(parameters.into_iter().map(SqlValue));
    let rows = statement
        .query_map(params, |row| {
            (0..columns.len())
                .map(|i| row.get_ref(i).map(from_sql))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|values| RowResult { values })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(QueryResult { columns, rows })
}

/// A guest parameter bound as the rusqlite value of the same kind.
struct SqlValue(Value);

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match &self.0 {
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null => ValueRef::Null,
        }))
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        // SQLite hands back whatever bytes were stored as TEXT; Spin's host assumes UTF-8 too.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
