//! `VecStore` passes the core conformance group, and a gate on it serves the core verbs.

use std::sync::Arc;

use jitgate::{Capability, Store};
use jitgate_example_custom_store::VecStore;

jitgate_testkit::store_conformance!(|| async { Some(Arc::new(VecStore::default()) as Arc<dyn Store>) }; core);

#[test]
fn a_gate_on_it_reports_every_capability_missing() {
    let (gate, _, _) = jitgate_testkit::fixtures::gate(Arc::new(VecStore::default()));
    assert_eq!(gate.missing_capabilities(), Capability::ALL.to_vec());
}
