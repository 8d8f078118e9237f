//! `replace_policy`: a new policy in force at once, every decision, explanation and audit record
//! naming the policy set it was made under, and a policy that does not fit refused.

use super::*;
use jitgate_core::audit::AuditAction;

/// The fixture policy without standing log reading.
fn without_read_logs() -> RuleTable {
    RuleTable::builder()
        .member(sam(), team("sre"))
        .member(lee(), team("sre-leads"))
        .member(team("sre-leads"), team("sre"))
        .eligible(
            "restart",
            Pattern::In(team("sre")),
            Pattern::Is(EntityRef::new("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1)),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_replaced_policy_decides_the_next_call_and_every_answer_names_its_version() {
    let (gate, ..) = setup();
    let first = gate.policy_version().expect("a rule table has a version");
    let before = gate.authorize(&read_logs(), &sam()).await;
    assert!(before.is_allowed());
    assert_eq!(before.policy_version(), Some(first));

    let second = gate.replace_policy(Arc::new(without_read_logs())).unwrap().unwrap();
    assert_ne!(first, second, "another set, another version");
    assert_eq!(gate.policy_version(), Some(second));
    assert_eq!(gate.policy_replacements(), 1);
    let after = gate.authorize(&read_logs(), &sam()).await;
    assert_eq!(
        after,
        Decision::Deny {
            reason: DenyReason::NotEligible,
            policy_version: Some(second)
        }
    );
    let explained = gate.explain(&read_logs(), &sam()).await;
    assert_eq!(explained.policy_version, Some(second));
    assert!(
        explained.to_string().contains(&format!("policy set: {second}")),
        "{explained}"
    );

    // The same rules built again are the same version.
    assert_eq!(without_read_logs().version(), Some(second));
}

#[tokio::test]
async fn audit_records_name_the_policy_set_each_step_was_decided_under() {
    let (gate, ..) = setup();
    let first = gate.policy_version().unwrap();
    let r = pending(&gate, ask(restart("db"), 30)).await;
    let second = gate.replace_policy(Arc::new(without_read_logs())).unwrap().unwrap();
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(gate.authorize(&restart("db"), &sam()).await.is_allowed());
    gate.flush_audit_buffer().await.unwrap();
    gate.revoke(grant.id, &sam(), Some("done")).await.unwrap();
    let trail = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap().items;
    let named: Vec<_> = trail.iter().map(|r| (r.entry.action, r.entry.policy_version)).collect();
    assert_eq!(
        named,
        vec![
            (AuditAction::RequestCreated, Some(first)),
            (AuditAction::ReviewApproved, Some(second)),
            (AuditAction::RequestApproved, Some(second)),
            (AuditAction::GrantCreated, Some(second)),
            (AuditAction::GrantUsed, Some(second)),
            (AuditAction::GrantRevoked, Some(second)),
        ]
    );
    // The version is part of the hashed record: the chain verifies with it.
    gate.verify_audit().await.unwrap();
}

#[tokio::test]
async fn a_policy_that_does_not_fit_the_gate_is_refused_and_the_old_one_stays() {
    // A gate with no destination for break-glass alerts, on a policy without break-glass.
    let gate = Gate::builder()
        .policy(Arc::new(without_read_logs()))
        .store(Arc::new(MemoryStore::new()))
        .notifier(Arc::new(MemoryNotifier::new()))
        .build()
        .unwrap();
    let kept = gate.policy_version();
    // The fixture policy allows break-glass: its alerts would reach nobody.
    let refused = gate.replace_policy(Arc::new(policy())).unwrap_err();
    assert!(refused.to_string().contains("break-glass"), "{refused}");
    assert_eq!(gate.policy_version(), kept);
    assert_eq!(gate.policy_replacements(), 0);
}

/// Calls racing a swap each get an answer from one policy or the other, never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_a_swap_answer_under_one_set_or_the_other() {
    let (gate, ..) = setup();
    let first = gate.policy_version();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..2_000 {
                    seen.push(gate.authorize(&read_logs(), &sam()).await);
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();
    for _ in 0..50 {
        gate.replace_policy(Arc::new(without_read_logs())).unwrap();
        tokio::task::yield_now().await;
        gate.replace_policy(Arc::new(policy())).unwrap();
    }
    let second = without_read_logs().version();
    for caller in callers {
        for d in caller.await.unwrap() {
            match (&d, d.policy_version()) {
                (Decision::Allow { .. }, v) => assert_eq!(v, first, "{d}"),
                (
                    Decision::Deny {
                        reason: DenyReason::NotEligible,
                        ..
                    },
                    v,
                ) => assert_eq!(v, second, "{d}"),
                _ => panic!("unexpected answer during a swap: {d}"),
            }
        }
    }
}
