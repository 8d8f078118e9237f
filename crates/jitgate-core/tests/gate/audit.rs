//! The audit trail: who, why, which policies.

use super::*;

#[tokio::test]
async fn the_audit_trail_records_who_why_and_which_policies() {
    let (gate, ..) = setup();
    let r = pending(&gate, ask(migrate("a"), 30)).await;
    gate.approve(r.id, &lee(), Some("lgtm")).await.unwrap();
    gate.approve(r.id, &sec(), Some("ok by security")).await.unwrap();
    let trail = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap().items;
    let actions: Vec<_> = trail.iter().map(|a| a.entry.action).collect();
    use jitgate_core::audit::AuditAction::*;
    assert_eq!(
        actions,
        vec![
            RequestCreated,
            ReviewApproved,
            ReviewApproved,
            RequestApproved,
            GrantCreated
        ]
    );
    assert_eq!(trail[0].entry.text.as_deref(), Some("INC-1: on call"));
    assert_eq!(trail[0].entry.policy_ids, vec!["prod-db-migrate".to_string()]);
    assert_eq!(trail[2].entry.actor, sec());
    assert_eq!(trail[2].entry.text.as_deref(), Some("ok by security"));
    let mut out = Vec::new();
    let n = gate.export_audit(&mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count() as u64, n);
    assert_eq!(gate.verify_audit().await.unwrap().seq, n);
}
