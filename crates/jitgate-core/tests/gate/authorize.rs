//! `authorize` and `explain`: the three answers, grants in and out of force, forbids.

use super::*;

#[tokio::test]
async fn authorize_gives_each_of_the_three_answers() {
    let (gate, ..) = setup();
    assert_eq!(
        gate.authorize(&read_logs(), &sam()).await,
        Decision::Allow {
            basis: Basis::Standing,
            policy_version: gate.policy_version()
        }
    );
    match gate.authorize(&restart("orders-prod"), &sam()).await {
        Decision::NeedsApproval { flow, .. } => {
            assert_eq!(flow.requirements, vec![Requirement::new(team("sre-leads"), 1)]);
            assert_eq!(flow.policy_ids, vec!["prod-db-restart".to_string()]);
        }
        other => panic!("expected NeedsApproval, got {other:?}"),
    }
    assert_eq!(
        gate.authorize(&drop_db("orders-prod"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::Forbidden {
                policy_ids: vec!["no-drop".into()]
            },
            policy_version: gate.policy_version()
        }
    );
    assert_eq!(
        gate.authorize(&read_logs(), &user("nobody")).await,
        Decision::Deny {
            reason: DenyReason::NotEligible,
            policy_version: gate.policy_version()
        }
    );
}

#[tokio::test]
async fn a_scheduled_grant_allows_only_from_its_start() {
    let (gate, clock, notifier, _) = setup();
    let start = clock.now() + Duration::hours(2);
    let req = pending(&gate, ask(restart("db"), 30).starting_at(start)).await;
    let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    assert_eq!(grant.state, GrantState::Scheduled);
    assert_eq!(
        (grant.window.not_before(), grant.window.expires_at()),
        (start, start + Duration::minutes(30))
    );
    assert!(!gate.authorize(&restart("db"), &sam()).await.is_allowed());
    clock.set(start);
    assert!(
        gate.authorize(&restart("db"), &sam()).await.is_allowed(),
        "allowed from its start, sweep or not"
    );
    assert_eq!(gate.sweep().await.unwrap().grants_activated, 1);
    assert!(notifier
        .wait_for(StdDuration::from_secs(1), |e| e.kind == EventKind::GrantActive)
        .await
        .is_some());
}

#[tokio::test]
async fn a_grant_allows_only_while_policy_still_makes_its_holder_eligible() {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    // Sam leaves the SRE team: a policy without his membership.
    let without_sam = RuleTable::builder()
        .member(lee(), team("sre-leads"))
        .eligible(
            "prod-db-restart",
            Pattern::In(team("sre")),
            Pattern::Is(EntityRef::new("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1)),
        )
        .build()
        .unwrap();
    let after = gate_on(Arc::new(without_sam), store, clock, notifier);
    assert_eq!(
        after.authorize(&restart("db"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::NotEligible,
            policy_version: after.policy_version()
        }
    );
}

#[tokio::test]
async fn forbid_beats_an_active_grant() {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    let freeze = RuleTable::builder()
        .member(sam(), team("sre"))
        .eligible(
            "prod-db-restart",
            Pattern::In(team("sre")),
            Pattern::Any,
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1)),
        )
        .forbid(
            "change-freeze",
            Pattern::Any,
            Pattern::Any,
            Pattern::Is(EntityRef::new("Database", "db")),
        )
        .build()
        .unwrap();
    let frozen = gate_on(Arc::new(freeze), store, clock, notifier);
    assert_eq!(
        frozen.authorize(&restart("db"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::Forbidden {
                policy_ids: vec!["change-freeze".into()]
            },
            policy_version: frozen.policy_version()
        }
    );
}

#[tokio::test]
async fn explain_names_the_flow_and_reviewers_without_consuming_uses() {
    let (gate, ..) = setup();
    let text = gate.explain(&restart("db"), &sam()).await.to_string();
    assert!(text.contains("NeedsApproval"), "{text}");
    assert!(text.contains("prod-db-restart"), "{text}");
    assert!(text.contains(r#"candidate reviewers: Team::"sre-leads""#), "{text}");
    assert!(gate
        .explain(&drop_db("x"), &sam())
        .await
        .to_string()
        .contains("forbidden by no-drop"));

    let action = read_customer("c-1");
    let req = pending(&gate, ask(action.clone(), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    for _ in 0..5 {
        assert!(gate.explain(&action, &sam()).await.decision.is_allowed());
    }
    assert!(gate.authorize(&action, &sam()).await.is_allowed());
    assert!(gate.authorize(&action, &sam()).await.is_allowed());
    assert!(
        !gate.authorize(&action, &sam()).await.is_allowed(),
        "two uses, not seven"
    );
}

#[tokio::test]
async fn a_grant_bound_to_named_attributes_allows_only_those_values() {
    let e = EntityRef::new;
    let policy = RuleTable::builder()
        .eligible(
            "run-with-ticket",
            Pattern::Any,
            Pattern::Is(e("Action", "run")),
            Pattern::Any,
            Flow::new(Duration::hours(1))
                .with_auto_approve(true)
                .with_max_uses(3, false)
                .with_bound_attributes(["ticket"]),
        )
        .build()
        .unwrap();
    let gate = Gate::builder()
        .policy(Arc::new(policy))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let run = |ticket: Option<&str>, command: &str| {
        let a = Action::new(e("Action", "run"), e("Host", "db-1")).with_attr("command", command);
        match ticket {
            Some(t) => a.with_attr("ticket", t),
            None => a,
        }
    };
    let ask = NewRequest::new(sam(), run(Some("INC-1"), "vacuum"), Duration::minutes(30));
    let RequestOutcome::Granted { grant, .. } = gate.request(ask).await.unwrap() else {
        panic!("auto-approved")
    };
    assert_eq!(grant.bound_attributes, vec!["ticket".to_owned()]);
    assert_eq!(
        gate.authorize(&run(Some("INC-1"), "reindex"), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id),
            policy_version: gate.policy_version()
        },
        "another command under the same ticket"
    );
    assert!(
        matches!(
            gate.authorize(&run(Some("INC-2"), "vacuum"), &sam()).await,
            Decision::NeedsApproval { .. }
        ),
        "another ticket is another request"
    );
    assert!(
        matches!(
            gate.authorize(&run(None, "vacuum"), &sam()).await,
            Decision::NeedsApproval { .. }
        ),
        "no ticket, no match"
    );
    assert!(gate.authorize(&run(Some("INC-1"), "x"), &sam()).await.is_allowed());
    assert!(gate.authorize(&run(Some("INC-1"), "y"), &sam()).await.is_allowed());
    assert!(
        !gate.authorize(&run(Some("INC-1"), "z"), &sam()).await.is_allowed(),
        "three uses, one by each allowed call above; refused calls use none"
    );
}
