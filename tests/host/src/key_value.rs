//! `fermyon:spin/key-value@2.0.0`: one in-memory store per label, shared by every instance of the app
//! (Spin's default store is a SQLite file in `.spin/`; only the lifetime matters to tests, and each
//! `SpinApp` is a fresh app).
use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::host::HostState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use wasmtime::component::Resource;

type Entries = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Default)]
pub(crate) struct KeyValueStores {
    stores: Mutex<HashMap<String, Entries>>,
}

impl KeyValueStores {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entries>> {
        // A panicking test thread must not poison the store for the others.
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The host side of a guest's `store` resource.
pub struct OpenStore {
    label: String,
}

impl HostState {
    fn with_store<T>(
        &mut self,
        store: &Resource<OpenStore>,
        f: impl FnOnce(&mut Entries) -> T,
    ) -> wasmtime::Result<T> {
        let label = &self.table.get(store)?.label;
        let mut stores = self.app.key_value.lock();
        Ok(f(stores.entry(label.clone()).or_default()))
    }
}

impl Host for HostState {}

impl HostStore for HostState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        // Spin checks the component's grant before it even looks the label up.
        if !self.component.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(OpenStore { label })?))
    }

    fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.with_store(&store, |entries| Ok(entries.get(&key).cloned()))
    }

    fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.with_store(&store, |entries| {
            entries.insert(key, value);
            Ok(())
        })
    }

    fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.with_store(&store, |entries| {
            entries.remove(&key);
            Ok(())
        })
    }

    fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.with_store(&store, |entries| Ok(entries.contains_key(&key)))
    }

    fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.with_store(&store, |entries| Ok(entries.keys().cloned().collect()))
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
