//! `Gate` on `CedarPolicy`: the life cycle with Cedar deciding eligibility, reviewers and revokes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use common::*;
use jitgate_cedar::{entities_from_json, CedarError, CedarPolicy, EntityProvider};

use jitgate_core::*;

fn gate(policy: CedarPolicy, store: Arc<MemoryStore>) -> Gate {
    Gate::builder()
        .policy(Arc::new(policy))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .build()
        .unwrap()
}

fn restart_prod() -> Action {
    act("db_restart", "Database", "orders-prod")
}

async fn pending(g: &Gate, who: &str, action: Action) -> AccessRequest {
    let ask = NewRequest::new(user(who), action, Duration::minutes(30)).with_justification("INC-1");
    match g.request(ask).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("{other:?}"),
    }
}

fn transition(e: Error) -> TransitionError {
    match e {
        Error::Transition(t) => t,
        other => panic!("expected a transition error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_life_cycle_runs_on_cedar_and_the_audit_names_the_policies() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    assert!(matches!(
        g.authorize(&restart_prod(), &user("sam")).await,
        Decision::NeedsApproval { .. }
    ));
    let r = pending(&g, "sam", restart_prod()).await;
    let out = g.approve(r.id, &user("lee"), Some("go")).await.unwrap();
    let grant = out.grant.expect("one lead approves");
    assert_eq!(
        g.authorize(&restart_prod(), &user("sam")).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id),
            policy_version: g.policy_version()
        }
    );
    let trail = g.request_audit(r.id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(trail[0].entry.policy_ids, vec!["prod-db-restart".to_string()]);
    assert_eq!(
        trail[1].entry.policy_ids,
        vec!["leads-review".to_string()],
        "the review policy that let lee review"
    );
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    // Lee is a lead, and an SRE through nesting: he may ask, but not approve his own ask.
    let r = pending(&g, "lee", restart_prod()).await;
    let err = transition(g.approve(r.id, &user("lee"), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::SelfApproval { .. }), "{err}");
    assert!(g.approve(r.id, &user("lin"), None).await.unwrap().grant.is_some());
}

#[tokio::test]
async fn self_approval_is_allowed_only_by_an_explicit_policy() {
    let p = with_extra_policies(
        r#"@id("leads-self-review") @self_approval("true")
        permit(principal in Team::"sre-leads", action == Jit::Action::"review", resource);"#,
    )
    .await;
    let g = gate(p, Arc::new(MemoryStore::new()));
    let r = pending(&g, "lee", restart_prod()).await;
    let out = g.approve(r.id, &user("lee"), None).await.unwrap();
    assert!(
        out.grant.is_some(),
        "an explicit @self_approval policy lets a lead approve his own request"
    );
    assert_eq!(out.request.reviews[0].policy_ids, vec!["leads-self-review".to_string()]);
}

#[tokio::test]
async fn reviewers_outside_the_eligible_group_are_refused() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let r = pending(&g, "sam", restart_prod()).await;
    // Security may review (Cedar permits) but is not in the flow's reviewer group.
    let err = transition(g.approve(r.id, &user("sec"), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::NotEligibleReviewer { .. }), "{err}");
    // Eve may not review at all.
    let err = transition(g.approve(r.id, &user("eve"), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::NotEligibleReviewer { .. }), "{err}");
    let page = g
        .pending_for_reviewer(&user("lee"), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(g
        .pending_for_reviewer(&user("sec"), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn a_lead_and_someone_from_security_approve_a_migration() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let r = pending(&g, "sam", act("db_migrate", "Database", "orders-prod")).await;
    assert!(
        g.approve(r.id, &user("ada"), None).await.unwrap().grant.is_none(),
        "ada is both, but one person"
    );
    assert!(g.approve(r.id, &user("lee"), None).await.unwrap().grant.is_some());
}

#[tokio::test]
async fn a_forbid_beats_an_active_grant() {
    let store = Arc::new(MemoryStore::new());
    let g = gate(policy().await, store.clone());
    let r = pending(&g, "sam", restart_prod()).await;
    g.approve(r.id, &user("lee"), None).await.unwrap();
    let frozen =
        with_extra_policies(r#"@id("change-freeze") forbid(principal, action, resource in Env::"prod");"#).await;
    let g2 = gate(frozen, store);
    assert_eq!(
        g2.authorize(&restart_prod(), &user("sam")).await,
        Decision::Deny {
            reason: DenyReason::Forbidden {
                policy_ids: vec!["change-freeze".into()]
            },
            policy_version: g2.policy_version()
        }
    );
}

/// Entities that a test can change, as a directory would.
struct Directory(Mutex<String>);

#[async_trait]
impl EntityProvider for Directory {
    async fn load(&self) -> Result<Vec<cedar_policy::Entity>, CedarError> {
        let text = self.0.lock().unwrap().clone();
        entities_from_json(&text)
    }
}

#[tokio::test]
async fn leaving_the_team_ends_what_a_grant_allows_at_the_next_authorize() {
    let json = std::fs::read_to_string(dir().join("entities.json")).unwrap();
    let directory = Arc::new(Directory(Mutex::new(json.clone())));
    let p = Arc::new(common::builder().entities(directory.clone()).build().await.unwrap());
    let g = Gate::builder()
        .policy(p.clone())
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let r = pending(&g, "sam", restart_prod()).await;
    g.approve(r.id, &user("lee"), None).await.unwrap();
    assert!(g.authorize(&restart_prod(), &user("sam")).await.is_allowed());
    // Sam moves out of the SRE team.
    let mut entities: serde_json::Value = serde_json::from_str(&json).unwrap();
    for e in entities.as_array_mut().unwrap() {
        if e["uid"]["id"] == "sam" {
            e["parents"] = serde_json::json!([]);
        }
    }
    *directory.0.lock().unwrap() = entities.to_string();
    p.refresh_entities().await.unwrap();
    assert_eq!(
        g.authorize(&restart_prod(), &user("sam")).await,
        Decision::Deny {
            reason: DenyReason::NotEligible,
            policy_version: g.policy_version()
        }
    );
}

#[tokio::test]
async fn entities_older_than_their_maximum_age_deny() {
    // On a manual clock: how long loading takes on a loaded machine does not count.
    let clock = Arc::new(ManualClock::default());
    let p = common::builder()
        .entities_max_age(StdDuration::from_millis(50))
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let p = Arc::new(p);
    let g = Gate::builder()
        .policy(p.clone())
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(g
        .authorize(&act("read_logs", "Service", "orders"), &user("sam"))
        .await
        .is_allowed());
    clock.advance(Duration::milliseconds(80));
    let d = g.authorize(&act("read_logs", "Service", "orders"), &user("sam")).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::PolicyError(m), .. } if m.contains("refresh")),
        "{d:?}"
    );
    p.refresh_entities().await.unwrap();
    assert!(g
        .authorize(&act("read_logs", "Service", "orders"), &user("sam"))
        .await
        .is_allowed());
}

#[tokio::test]
async fn who_may_revoke_is_cedar() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let r = pending(&g, "sam", restart_prod()).await;
    let grant = g.approve(r.id, &user("lee"), None).await.unwrap().grant.unwrap();
    assert!(matches!(
        g.revoke(grant.id, &user("sec"), None).await,
        Err(Error::NotPermittedToRevoke { .. })
    ));
    assert_eq!(
        g.revoke(grant.id, &user("lin"), Some("done")).await.unwrap().state,
        GrantState::Revoked
    );
    let r = pending(&g, "sam", act("db_restart", "Database", "billing-prod")).await;
    let grant = g.approve(r.id, &user("lee"), None).await.unwrap().grant.unwrap();
    assert!(
        g.revoke(grant.id, &user("sam"), None).await.is_ok(),
        "a holder may give up their own grant"
    );
}

#[tokio::test]
async fn explain_says_which_policies_and_which_reviewers() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let text = g
        .explain(&act("db_migrate", "Database", "orders-prod"), &user("sam"))
        .await
        .to_string();
    assert!(text.contains("prod-db-migrate, prod-db-migrate-security"), "{text}");
    assert!(text.contains(r#"candidate reviewers: Team::"sre-leads""#), "{text}");
    assert!(text.contains(r#"candidate reviewers: Team::"security""#), "{text}");
    assert!(g
        .explain(&act("db_drop", "Database", "orders-prod"), &user("sam"))
        .await
        .to_string()
        .contains("forbidden by no-drop-prod"));
    assert!(g
        .explain(&act("read_logs", "Service", "orders"), &user("sam"))
        .await
        .to_string()
        .contains("standing permission from read-logs"));

    let restart = g.explain(&restart_prod(), &user("sam")).await;
    assert_eq!(
        restart.metadata["prod-db-restart"].get("advice").map(String::as_str),
        Some("Try a rolling restart of the replicas first: runbook DB-7"),
        "the authors' annotations are kept and shown"
    );
    assert_eq!(
        restart.metadata["prod-db-restart"].keys().collect::<Vec<_>>(),
        ["advice", "owner"],
        "jitgate's own annotations are not metadata"
    );
    assert!(
        restart
            .to_string()
            .contains(r#"prod-db-restart: @owner("team-databases")"#),
        "{restart}"
    );
}

#[tokio::test]
async fn a_reviewers_groups_are_the_reviewer_and_every_ancestor() {
    let p = policy().await;
    let groups = p
        .reviewer_groups(&user("lee"))
        .unwrap()
        .expect("Cedar knows the groups");
    assert_eq!(groups[0], user("lee"));
    assert!(groups.contains(&EntityRef::new("Team", "sre-leads")), "{groups:?}");
    let nobody = p.reviewer_groups(&user("not-in-the-directory")).unwrap().unwrap();
    assert_eq!(nobody, vec![user("not-in-the-directory")]);
}

#[tokio::test]
async fn one_shot_grants_are_used_up_by_their_first_use_and_auto_approval_grants_at_once() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let read = act("read_customer", "Customer", "c-42");
    let r = pending(&g, "sue", read.clone()).await;
    g.approve(r.id, &user("sol"), None).await.unwrap();
    assert!(g.authorize(&read, &user("sue")).await.is_allowed());
    assert!(!g.authorize(&read, &user("sue")).await.is_allowed(), "one shot");
    let ask = NewRequest::new(
        user("sam"),
        act("db_restart", "Database", "orders-staging"),
        Duration::hours(1),
    );
    assert!(matches!(g.request(ask).await.unwrap(), RequestOutcome::Granted { .. }));
}

#[tokio::test]
async fn context_attributes_reach_cedar() {
    let p = with_policies(
        r#"@id("ticketed") permit(principal, action == Action::"db_restart", resource) when { context has ticket && context.ticket like "INC-*" };"#,
    )
    .await
    .unwrap();
    let g = gate(p, Arc::new(MemoryStore::new()));
    assert!(g
        .authorize(&restart_prod().with_attr("ticket", "INC-7"), &user("sam"))
        .await
        .is_allowed());
    assert!(!g
        .authorize(&restart_prod().with_attr("ticket", "CHG-7"), &user("sam"))
        .await
        .is_allowed());
    assert!(!g.authorize(&restart_prod(), &user("sam")).await.is_allowed());
}

#[tokio::test]
async fn only_the_principal_type_requests_and_reviews() {
    let g = gate(policy().await, Arc::new(MemoryStore::new()));
    let req = pending(&g, "sam", restart_prod()).await;
    let group = EntityRef::new("Team", "sre-leads");
    assert!(matches!(
        g.approve(req.id, &group, None).await,
        Err(Error::NotAPrincipal { .. })
    ));
    let ask =
        NewRequest::new(EntityRef::new("Team", "sre"), restart_prod(), Duration::minutes(30)).with_justification("x");
    assert!(matches!(g.request(ask).await, Err(Error::NotAPrincipal { .. })));
}

/// Entities that load once, then fail to refresh.
struct FailsAfterFirst(Mutex<u32>, Vec<cedar_policy::Entity>);

#[async_trait]
impl EntityProvider for FailsAfterFirst {
    async fn load(&self) -> Result<Vec<cedar_policy::Entity>, CedarError> {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        if *n > 1 {
            return Err(CedarError::Entities {
                message: "directory unreachable".into(),
                source: None,
            });
        }
        Ok(self.1.clone())
    }
}

#[tokio::test]
async fn entities_have_a_default_maximum_age_on_the_injected_clock() {
    let entities = entities_from_json(&std::fs::read_to_string(dir().join("entities.json")).unwrap()).unwrap();
    let clock = Arc::new(ManualClock::default());
    let p = Arc::new(
        common::builder()
            .entities(Arc::new(FailsAfterFirst(Mutex::new(0), entities.clone())))
            .clock(clock.clone())
            .build()
            .await
            .unwrap(),
    );
    let logs = act("read_logs", "Service", "orders");
    let g = Gate::builder()
        .policy(p.clone())
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    assert!(g.authorize(&logs, &user("sam")).await.is_allowed());
    clock.advance(Duration::minutes(59));
    assert!(p.refresh_entities().await.is_err(), "the directory is down");
    assert!(
        g.authorize(&logs, &user("sam")).await.is_allowed(),
        "the old entities stay in use until they are too old"
    );
    clock.advance(Duration::minutes(2));
    assert!(
        matches!(g.authorize(&logs, &user("sam")).await, Decision::Deny { .. }),
        "an hour by default, measured on the injected clock"
    );

    let forever = common::builder()
        .entities(Arc::new(jitgate_cedar::StaticEntities(entities)))
        .clock(clock.clone())
        .entities_never_expire()
        .build()
        .await
        .unwrap();
    clock.advance(Duration::days(400));
    assert!(matches!(
        forever.evaluate(&user("sam"), &logs).unwrap(),
        PolicyDecision::Standing { .. }
    ));
}

/// Entities that load once, then hang on every refresh.
struct HangsAfterFirst(Mutex<u32>, Vec<cedar_policy::Entity>);

#[async_trait]
impl EntityProvider for HangsAfterFirst {
    async fn load(&self) -> Result<Vec<cedar_policy::Entity>, CedarError> {
        let first = {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            *n == 1
        };
        if !first {
            std::future::pending::<()>().await;
        }
        Ok(self.1.clone())
    }
}

#[tokio::test]
async fn a_hanging_entity_provider_fails_the_refresh_and_keeps_the_old_entities() {
    let entities = entities_from_json(&std::fs::read_to_string(dir().join("entities.json")).unwrap()).unwrap();
    let p = common::builder()
        .entities(Arc::new(HangsAfterFirst(Mutex::new(0), entities)))
        .entities_deadline(std::time::Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let err = p.refresh_entities().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the entity provider did not answer within 50ms"),
        "{err}"
    );
    assert!(matches!(
        p.evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing { .. }
    ));
}
