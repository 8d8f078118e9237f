//! Every domain type survives a JSON round trip, so adapters can store and ship them.

use std::sync::Arc;

use jitgate_core::*;
use jitgate_testkit::fixtures::*;

#[tokio::test]
async fn requests_grants_events_and_audit_records_round_trip_through_json() {
    let store = Arc::new(MemoryStore::new());
    let (gate, _, notifier) = gate(store.clone());
    let RequestOutcome::Pending(req) = gate
        .request(ask(read_customer("c1").with_attr("ticket", "T-1"), 30))
        .await
        .unwrap()
    else {
        panic!()
    };
    let out = gate.approve(req.id, &lee(), Some("ok")).await.unwrap();
    let grant = out.grant.unwrap();
    let request = out.request;

    let back: AccessRequest = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
    assert_eq!(back, request);
    let back: Grant = serde_json::from_str(&serde_json::to_string(&grant).unwrap()).unwrap();
    assert_eq!(back, grant);
    for e in notifier.events() {
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
    for r in store.audit_records() {
        let back: audit::AuditRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
    let flow = Flow::clone(&request.flow);
    let back: Flow = serde_json::from_str(&serde_json::to_string(&flow).unwrap()).unwrap();
    assert_eq!(back, flow);
}
