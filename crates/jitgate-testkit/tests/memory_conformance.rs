//! The in-memory store passes the conformance suite.

use std::sync::Arc;

use jitgate_core::{MemoryStore, Store};

jitgate_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>) });

mod memory_notifier {
    use std::sync::Arc;

    use jitgate_testkit::conformance::notifier::{MemoryHarness, NotifierHarness};

    jitgate_testkit::notifier_conformance!(|| async {
        Some(Arc::new(MemoryHarness::default()) as Arc<dyn NotifierHarness>)
    });
}
