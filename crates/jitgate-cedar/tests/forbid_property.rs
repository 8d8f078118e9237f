//! Property: for random requests, `authorize` never returns `Allow` when bare Cedar, on the
//! same policies and entities, evaluates a matching `forbid` — whatever grants exist.

mod common;

use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request};
use chrono::Duration;
use common::*;

use jitgate_core::*;
use proptest::prelude::*;

const USERS: &[&str] = &["sam", "lee", "ada", "sec", "sue", "eve"];
const ACTIONS: &[(&str, &str, &[&str])] = &[
    (
        "db_restart",
        "Database",
        &["orders-prod", "billing-prod", "orders-staging"],
    ),
    ("db_migrate", "Database", &["orders-prod", "orders-staging"]),
    ("db_drop", "Database", &["orders-prod", "orders-staging"]),
    ("read_logs", "Service", &["orders"]),
    ("read_customer", "Customer", &["c-42"]),
];
const SCOPES: &[&str] = &["Env::\"prod\"", "Env::\"staging\"", "Team::\"payments\""];
const PRINCIPALS: &[&str] = &[
    "User::\"sam\"",
    "Team::\"sre\"",
    "Team::\"sre-leads\"",
    "Team::\"support\"",
];

fn forbid() -> impl Strategy<Value = String> {
    (0..PRINCIPALS.len(), 0..ACTIONS.len(), 0..SCOPES.len(), any::<bool>()).prop_map(|(p, a, s, any_action)| {
        let action = if any_action {
            "action".to_owned()
        } else {
            format!("action == Action::\"{}\"", ACTIONS[a].0)
        };
        format!(
            "forbid(principal in {}, {action}, resource in {});",
            PRINCIPALS[p], SCOPES[s]
        )
    })
}

fn request() -> impl Strategy<Value = (usize, usize, usize)> {
    (0..USERS.len(), 0..ACTIONS.len(), 0..3usize)
}

fn action_of(a: usize, r: usize) -> Action {
    let (name, ty, ids) = ACTIONS[a];
    act(name, ty, ids[r % ids.len()])
}

async fn check(forbids: Vec<String>, requests: Vec<(usize, usize, usize)>) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    // Grants first, under the example policies.
    let base = Gate::builder()
        .policy(Arc::new(policy().await))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    for (who, a, r) in &requests {
        let ask =
            NewRequest::new(user(USERS[*who]), action_of(*a, *r), Duration::minutes(20)).with_justification("prop");
        if let Ok(RequestOutcome::Pending(req)) = base.request(ask).await {
            for reviewer in ["lee", "lin", "sec", "sol"] {
                let _ = base.approve(req.id, &user(reviewer), None).await;
            }
        }
    }
    // Then the same store under the example policies plus random forbids.
    let p = with_extra_policies(&forbids.join("\n")).await;
    let bare_set = PolicySet::from_policies(p.policies().cloned()).unwrap();
    let entities = Entities::from_json_str(
        &std::fs::read_to_string(dir().join("entities.json")).unwrap(),
        Some(p.schema()),
    )
    .unwrap();
    let gate = Gate::builder()
        .policy(Arc::new(p))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock)
        .build()
        .unwrap();
    for (who, a, r) in requests {
        let action = action_of(a, r);
        let uid = |e: &EntityRef| EntityUid::from_str(&e.to_string()).unwrap();
        let req = Request::new(
            uid(&user(USERS[who])),
            uid(&action.scope.action),
            uid(&action.scope.resource),
            Context::empty(),
            None,
        )
        .unwrap();
        let bare = Authorizer::new().is_authorized(&req, &bare_set, &entities);
        let forbidden = bare.decision() == CedarDecision::Deny && bare.diagnostics().reason().next().is_some();
        let decision = gate.authorize(&action, &user(USERS[who])).await;
        if forbidden {
            assert!(
                !decision.is_allowed(),
                "{} {}: Cedar forbids, jitgate said {decision}",
                USERS[who],
                action.scope
            );
            assert!(
                matches!(
                    decision,
                    Decision::Deny {
                        reason: DenyReason::Forbidden { .. },
                        ..
                    }
                ),
                "{decision}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn authorize_never_allows_what_a_cedar_forbid_matches(
        forbids in prop::collection::vec(forbid(), 0..4),
        requests in prop::collection::vec(request(), 1..12),
    ) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(check(forbids, requests));
    }
}
