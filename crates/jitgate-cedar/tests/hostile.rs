//! Hostile policy text and entities: deep nesting and long chains are located errors, never a
//! stack overflow; what loads evaluates on an ordinary thread.

mod common;

use std::sync::Arc;

use common::*;
use jitgate_cedar::{CedarError, CedarPolicy, StaticEntities};
use jitgate_core::{Policy, PolicyDecision};

fn too_complex(errors: jitgate_cedar::CedarErrors) -> (usize, String) {
    match errors.first() {
        CedarError::TooComplex { location, problem } => (location.line, problem.clone()),
        other => panic!("expected TooComplex, got {other}"),
    }
}

#[tokio::test]
async fn deeply_nested_brackets_are_a_located_error_not_a_crash() {
    let text = format!(
        "@id(\"ok\")\npermit(principal, action, resource);\npermit(principal, action, resource) when {{ {}1{} == 1 }};",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let (line, problem) = too_complex(with_policies(&text).await.expect_err("refused"));
    assert_eq!(line, 3, "{problem}");
    assert!(problem.contains("over the limit of 64"), "{problem}");
}

#[tokio::test]
async fn a_very_long_policy_is_refused_before_parsing() {
    let text = format!(
        "permit(principal, action, resource) when {{ 1{} == 1 }};",
        " + 1".repeat(20_000)
    );
    let (_, problem) = too_complex(with_policies(&text).await.expect_err("refused"));
    assert!(problem.contains("bytes long"), "{problem}");
}

#[tokio::test]
async fn a_deep_expression_tree_is_refused_and_a_shallow_one_evaluates() {
    let deep = format!(
        "@id(\"deep\") permit(principal in Team::\"sre\", action == Action::\"read_logs\", resource) when {{ 1{} > 0 }};",
        " + 1".repeat(500)
    );
    let (_, problem) = too_complex(with_policies(&deep).await.expect_err("refused"));
    assert!(problem.contains("`deep`"), "{problem}");
    let shallow = format!(
        "@id(\"shallow\") permit(principal in Team::\"sre\", action == Action::\"read_logs\", resource) when {{ 1{} > 0 }};",
        " + 1".repeat(8)
    );
    let p = with_policies(&shallow).await.expect("loads");
    // Evaluated on this (ordinary, 2 MiB) test thread. (Cedar's evaluator checks the stack it
    // has left and errs rather than overflow, so a deep condition that loads fails closed.)
    assert_eq!(
        p.evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing {
            policy_ids: vec!["shallow".into()]
        }
    );
}

#[tokio::test]
async fn a_deep_team_hierarchy_loads_without_a_crash() {
    let depth = 200;
    let mut json = Vec::new();
    json.push(serde_json::json!({"uid": {"type": "User", "id": "deep"}, "attrs": {}, "parents": [{"type": "Team", "id": "t0"}]}));
    for i in 0..depth {
        let parent = if i + 1 < depth {
            format!("t{}", i + 1)
        } else {
            "sre".to_owned()
        };
        json.push(serde_json::json!({"uid": {"type": "Team", "id": format!("t{i}")}, "attrs": {}, "parents": [{"type": "Team", "id": parent}]}));
    }
    json.push(serde_json::json!({"uid": {"type": "Team", "id": "sre"}, "attrs": {}, "parents": []}));
    let entities = jitgate_cedar::entities_from_json(&serde_json::Value::Array(json).to_string()).expect("parses");
    let p = CedarPolicy::builder()
        .schema_file(dir().join("app.cedarschema"))
        .policies(
            "p.cedar",
            "@id(\"logs\") permit(principal in Team::\"sre\", action == Action::\"read_logs\", resource);",
        )
        .entities(Arc::new(StaticEntities(entities)))
        .build()
        .await
        .expect("a deep hierarchy loads");
    assert_eq!(
        p.evaluate(&user("deep"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing {
            policy_ids: vec!["logs".into()]
        }
    );
}

#[tokio::test]
async fn a_hierarchy_deeper_than_the_limit_is_an_error_not_a_crash() {
    let depth = jitgate_cedar::MAX_HIERARCHY_DEPTH + 5;
    let mut json = Vec::new();
    for i in 0..depth {
        json.push(serde_json::json!({"uid": {"type": "Team", "id": format!("t{i}")}, "attrs": {}, "parents": [{"type": "Team", "id": format!("t{}", i + 1)}]}));
    }
    match jitgate_cedar::entities_from_json(&serde_json::Value::Array(json).to_string()) {
        Err(CedarError::Entities { message, .. }) => assert!(message.contains("levels deep"), "{message}"),
        other => panic!("expected a depth error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flood_of_distinct_contexts_cannot_grow_the_decision_cache_past_its_bytes() {
    let p = builder()
        .decision_cache(100_000)
        .decision_cache_bytes(64 * 1024)
        .build()
        .await
        .unwrap();
    for i in 0..2_000 {
        let a = act("read_logs", "Service", "orders").with_attr("ticket", format!("{i}-{}", "x".repeat(2_000)));
        let _ = p.evaluate(&user("sam"), &a);
    }
    // No policy reads `ticket`: the flood is one cache entry. (A flood of distinct values of an
    // attribute a policy reads is bounded by bytes: `decisions.rs` tests.)
    let stats = p.decision_cache_stats();
    assert!(stats.bytes <= 64 * 1024, "{stats:?}");
    assert_eq!((stats.entries, stats.misses, stats.hits), (1, 1, 1_999), "{stats:?}");
}
