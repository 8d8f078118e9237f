//! The PostgreSQL store passes the shared conformance suite against a real database.

mod common;

use std::sync::Arc;

use jitgate_core::Store;

jitgate_testkit::store_conformance!(|| async { common::store().await.map(|s| Arc::new(s) as Arc<dyn Store>) });
