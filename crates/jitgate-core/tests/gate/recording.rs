//! Every `Allow` through a grant leaves a `GrantUsed` record: buffered and written in batches
//! by default, synchronously on request; a full buffer or a failing store never loses one.

use jitgate_core::audit::{AuditAction, AuditRecord};
use jitgate_testkit::faulty::{Capabilities, FaultyStore};

use super::*;

fn gate_recording(store: Arc<dyn Store>, recording: UseRecording) -> (Gate, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock.clone())
        .use_recording(recording)
        .replica("orders-api-1")
        .build()
        .unwrap();
    (gate, clock)
}

/// A grant without a use limit (staging restarts are auto-approved).
async fn unlimited_grant(gate: &Gate) -> Grant {
    match gate.request(ask(restart_staging(), 30)).await.unwrap() {
        RequestOutcome::Granted { grant, .. } => grant,
        other => panic!("expected a grant, got {other:?}"),
    }
}

async fn uses_of(gate: &Gate, grant: &Grant) -> Vec<AuditRecord> {
    let trail = gate
        .request_audit(grant.request_id, &PageRequest::first(1000))
        .await
        .unwrap()
        .items;
    trail
        .into_iter()
        .filter(|r| r.entry.action == AuditAction::GrantUsed)
        .collect()
}

#[tokio::test]
async fn a_use_is_buffered_then_written_with_the_grant_the_parameters_the_time_and_the_replica() {
    let (gate, clock) = gate_recording(Arc::new(MemoryStore::new()), UseRecording::default());
    let grant = unlimited_grant(&gate).await;
    let call = restart_staging().with_attr("ticket", "INC-7");
    clock.advance(Duration::minutes(3));
    assert!(gate.authorize(&call, &sam()).await.is_allowed());
    assert!(
        uses_of(&gate, &grant).await.is_empty(),
        "no store write on the hot path"
    );
    assert_eq!(gate.audit_buffer_len(), 1);
    let _ = gate.explain(&call, &sam()).await;
    assert_eq!(gate.audit_buffer_len(), 1, "explain uses nothing and records nothing");

    assert_eq!(gate.flush_audit_buffer().await.unwrap(), 1);
    assert_eq!(gate.audit_buffer_len(), 0);
    let uses = uses_of(&gate, &grant).await;
    assert_eq!(uses.len(), 1);
    let e = &uses[0].entry;
    assert_eq!(e.grant_id, Some(grant.id));
    assert_eq!((&e.actor, &e.principal), (&sam(), &sam()));
    assert_eq!(e.scope, call.scope);
    assert_eq!(e.at, gate.now());
    assert_eq!(e.binding.as_deref(), Some(call.binding().0.as_str()));
    assert_ne!(
        e.binding,
        Some(restart_staging().binding().0),
        "the digest covers the parameters"
    );
    assert_eq!(e.replica.as_deref(), Some("orders-api-1"));
    gate.verify_audit().await.unwrap();
}

#[tokio::test]
async fn a_synchronous_use_is_in_the_chain_when_authorize_returns_and_a_failed_write_denies() {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    let (gate, _) = gate_recording(store.clone(), UseRecording::Synchronous);
    let grant = unlimited_grant(&gate).await;
    assert!(gate.authorize(&restart_staging(), &sam()).await.is_allowed());
    assert_eq!(uses_of(&gate, &grant).await.len(), 1);
    assert_eq!(gate.audit_buffer_len(), 0);

    store.fail("commit");
    let decision = gate.authorize(&restart_staging(), &sam()).await;
    assert!(
        matches!(&decision, Decision::Deny { reason: DenyReason::StoreError(why), .. } if why.contains("commit")),
        "an allow that cannot be recorded is not given: {decision:?}"
    );
    store.heal();
    assert_eq!(uses_of(&gate, &grant).await.len(), 1);
}

#[tokio::test]
async fn a_full_buffer_makes_authorize_write_its_own_record_and_deny_if_it_cannot() {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    let buffer = UseBuffer::default().capacity(2).batch(2);
    let (gate, _) = gate_recording(store.clone(), UseRecording::Buffered(buffer));
    let grant = unlimited_grant(&gate).await;
    for _ in 0..3 {
        assert!(gate.authorize(&restart_staging(), &sam()).await.is_allowed());
    }
    assert_eq!(
        gate.audit_buffer_len(),
        2,
        "the buffer never holds more than its capacity"
    );
    assert_eq!(
        uses_of(&gate, &grant).await.len(),
        1,
        "the third call wrote its own record"
    );

    store.fail("commit");
    assert!(!gate.authorize(&restart_staging(), &sam()).await.is_allowed());
    assert!(gate.flush_audit_buffer().await.is_err());
    assert_eq!(gate.audit_buffer_len(), 2, "records not written stay buffered");
    store.heal();
    assert_eq!(gate.flush_audit_buffer().await.unwrap(), 2);
    let uses = uses_of(&gate, &grant).await;
    assert_eq!(uses.len(), 3, "every allowed call has its record, the denied one none");
    gate.verify_audit().await.unwrap();
}

#[tokio::test]
async fn the_writer_writes_a_full_batch_at_once_and_the_rest_at_shutdown() {
    let buffer = UseBuffer::default().batch(3).interval(StdDuration::from_secs(3600));
    let (gate, _) = gate_recording(Arc::new(MemoryStore::new()), UseRecording::Buffered(buffer));
    let grant = unlimited_grant(&gate).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn({
        let gate = gate.clone();
        async move {
            gate.run_audit_writer(async {
                stopped.await.ok();
            })
            .await
        }
    });
    for _ in 0..4 {
        assert!(gate.authorize(&restart_staging(), &sam()).await.is_allowed());
    }
    // The third use woke the writer (the interval is an hour).
    tokio::time::timeout(StdDuration::from_secs(10), async {
        while uses_of(&gate, &grant).await.len() < 3 {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .expect("a full batch is written without waiting for the interval");
    stop.send(()).unwrap();
    writer.await.unwrap();
    assert_eq!(uses_of(&gate, &grant).await.len(), 4, "shutdown writes what is left");
    assert_eq!(gate.audit_buffer_len(), 0);
}

#[tokio::test]
async fn a_use_limited_grant_records_each_use_once_with_its_count_parameters_and_replica() {
    let (gate, _) = gate_recording(Arc::new(MemoryStore::new()), UseRecording::default());
    let r = pending(&gate, ask(read_customer("c-42"), 30)).await;
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(gate.authorize(&read_customer("c-42"), &sam()).await.is_allowed());
    assert_eq!(gate.audit_buffer_len(), 0, "written in the commit that counts the use");
    let uses = uses_of(&gate, &grant).await;
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].entry.text.as_deref(), Some("use 1 of 2"));
    assert_eq!(
        uses[0].entry.binding.as_deref(),
        Some(read_customer("c-42").binding().0.as_str())
    );
    assert_eq!(uses[0].entry.replica.as_deref(), Some("orders-api-1"));
}

#[tokio::test]
async fn with_recording_off_nothing_is_recorded_for_unlimited_grants() {
    let (gate, _) = gate_recording(Arc::new(MemoryStore::new()), UseRecording::Off);
    let grant = unlimited_grant(&gate).await;
    assert!(gate.authorize(&restart_staging(), &sam()).await.is_allowed());
    assert_eq!(gate.audit_buffer_len(), 0);
    assert_eq!(gate.flush_audit_buffer().await.unwrap(), 0);
    assert!(uses_of(&gate, &grant).await.is_empty());
}
