//! The in-memory store passes the conformance suite.

use std::sync::Arc;

use jitgate_core::{MemoryStore, Store};

jitgate_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>) });
