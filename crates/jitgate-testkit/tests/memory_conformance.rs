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

/// The faulty store (healthy here) with every capability, whose reviewer queue is the
/// trait's default `Listings::pending_requests_for` (a scan of every pending request): it passes
/// the same checks as the in-memory store's index.
mod faulty_store {
    use std::sync::Arc;

    use jitgate_core::Store;
    use jitgate_testkit::faulty::{Capabilities, FaultyStore};

    jitgate_testkit::store_conformance!(|| async {
        Some(Arc::new(FaultyStore::new(Capabilities::All)) as Arc<dyn Store>)
    });
}

/// A memory store that lets streamed audit records go passes the same checks.
mod releasing_memory_store {
    use std::sync::Arc;

    use jitgate_core::{MemoryStore, Store};

    jitgate_testkit::store_conformance!(|| async {
        Some(Arc::new(MemoryStore::new().releasing_streamed_audit()) as Arc<dyn Store>)
    });
}
