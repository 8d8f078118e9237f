//! The wire format (`jitgate_core::wire`, `docs/wire.md`) pinned: each answer of a whole story
//! (authorize → request → approve → authorize, and a forbidden one), serialized and compared
//! with the exact JSON a client receives.

use std::collections::BTreeMap;
use std::sync::Arc;

use jitgate_core::*;
use jitgate_testkit::fixtures::{self, ask, drop_db, lee, restart, sam};
use serde_json::json;

fn to_json(v: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("wire types serialize")
}

fn restart_flow() -> serde_json::Value {
    json!({
        "requirements": [{ "reviewers": { "type": "Team", "id": "sre-leads" }, "min_approvals": 1 }],
        "max_duration_seconds": 3600,
        "request_ttl_seconds": 1800,
        "require_reason": false,
        "break_glass_max_duration_seconds": 900,
        "auto_approve": false,
        "allow_self_approval": false,
        "bind_parameters": false,
        "policy_ids": ["prod-db-restart"],
    })
}

#[tokio::test]
async fn a_whole_story_on_the_wire() {
    let (g, _clock, _n) = fixtures::gate(Arc::new(MemoryStore::new()));
    let version = g
        .policy_version()
        .map(|v| v.to_string())
        .expect("a rule table has a version");

    let before = g.authorize(&restart("orders"), &sam()).await;
    assert_eq!(
        to_json(wire::Decision::from(&before)),
        json!({ "outcome": "needs_approval", "flow": restart_flow(), "policy_version": version })
    );

    let mut action = restart("orders");
    action.context.insert("ticket".into(), AttrValue::from("INC-1"));
    let outcome = g
        .request(NewRequest::new(sam(), action, chrono::Duration::minutes(30)).with_justification("INC-1: on call"))
        .await
        .unwrap();
    let RequestOutcome::Pending(req) = &outcome else {
        panic!("{outcome:?}")
    };
    let request_json = |state: &str, reviews: serde_json::Value, extra: &[(&str, serde_json::Value)]| {
        let mut v = json!({
            "id": req.id.to_string(),
            "principal": { "type": "User", "id": "sam" },
            "action": {
                "action": { "type": "Action", "id": "db_restart" },
                "resource": { "type": "Database", "id": "orders" },
                "context": { "ticket": "INC-1" },
            },
            "justification": "INC-1: on call",
            "duration_seconds": 1800,
            "break_glass": false,
            "flow": restart_flow(),
            "state": state,
            "reviews": reviews,
            "created_at": "2026-01-01T00:00:00Z",
            "deadline": "2026-01-01T00:30:00Z",
            "version": 1,
        });
        for (k, x) in extra {
            v[*k] = x.clone();
        }
        v
    };
    assert_eq!(
        to_json(wire::RequestOutcome::from(&outcome)),
        json!({ "outcome": "pending", "request": request_json("pending", json!([]), &[]) })
    );
    assert!(req.id.to_string().starts_with("req_"));

    let reviewed = g.approve(req.id, &lee(), Some("go")).await.unwrap();
    let grant = reviewed.grant.clone().expect("one lead approves");
    let grant_json = json!({
        "id": grant.id.to_string(),
        "request": req.id.to_string(),
        "principal": { "type": "User", "id": "sam" },
        "action": { "type": "Action", "id": "db_restart" },
        "resource": { "type": "Database", "id": "orders" },
        "not_before": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:30:00Z",
        "state": "active",
        "break_glass": false,
        "created_at": "2026-01-01T00:00:00Z",
        "version": 1,
    });
    let review = json!([{
        "reviewer": { "type": "User", "id": "lee" },
        "verdict": "approve",
        "comment": "go",
        "at": "2026-01-01T00:00:00Z",
        "policy_ids": ["prod-db-restart"],
    }]);
    assert_eq!(
        to_json(wire::ReviewOutcome::from(&reviewed)),
        json!({
            "request": request_json("approved", review, &[
                ("closed_at", json!("2026-01-01T00:00:00Z")),
                ("grant", json!(grant.id.to_string())),
                ("version", json!(2)),
            ]),
            "grant": grant_json,
        })
    );

    let after = g.authorize(&restart("orders"), &sam()).await;
    assert_eq!(
        to_json(wire::Decision::from(&after)),
        json!({ "outcome": "allow", "basis": "grant", "grant": grant.id.to_string(), "policy_version": version })
    );

    let forbidden = g.authorize(&drop_db("orders"), &sam()).await;
    assert_eq!(
        to_json(wire::Decision::from(&forbidden)),
        json!({
            "outcome": "deny",
            "reason": "forbidden",
            "message": "forbidden by no-drop",
            "policy_ids": ["no-drop"],
            "policy_version": version,
        })
    );

    let again = g.request(ask(restart("orders"), 30)).await.unwrap();
    assert_eq!(
        to_json(wire::RequestOutcome::from(&again)),
        json!({ "outcome": "already_covered", "grant": grant_json })
    );

    let explained = g.explain(&restart("orders"), &sam()).await;
    let e = to_json(wire::Explanation::from(&explained));
    assert_eq!(e["decision"]["outcome"], "allow");
    assert_eq!(e["policy"], "eligible");
    assert_eq!(e["flow"], restart_flow());
    assert_eq!(e["grants"], json!([grant_json]));
}

#[test]
fn attribute_values_are_plain_json() {
    let mut record = BTreeMap::new();
    record.insert("level".to_owned(), AttrValue::Long(3));
    let values = [
        (AttrValue::Bool(true), json!(true)),
        (AttrValue::Long(-7), json!(-7)),
        (AttrValue::from("INC-1"), json!("INC-1")),
        (
            AttrValue::Entity(EntityRef::new("User", "sam")),
            json!({ "__entity": { "type": "User", "id": "sam" } }),
        ),
        (
            AttrValue::Set(vec![AttrValue::Long(1), AttrValue::from("a")]),
            json!([1, "a"]),
        ),
        (AttrValue::Record(record), json!({ "level": 3 })),
        (
            AttrValue::Ip("10.0.0.1".into()),
            json!({ "__extn": { "fn": "ip", "arg": "10.0.0.1" } }),
        ),
        (
            AttrValue::Decimal("1.5".into()),
            json!({ "__extn": { "fn": "decimal", "arg": "1.5" } }),
        ),
        (
            AttrValue::Datetime("2026-01-01".into()),
            json!({ "__extn": { "fn": "datetime", "arg": "2026-01-01" } }),
        ),
        (
            AttrValue::Duration("1h".into()),
            json!({ "__extn": { "fn": "duration", "arg": "1h" } }),
        ),
    ];
    for (value, expected) in values {
        assert_eq!(wire::attr_json(&value), expected, "{value:?}");
    }
}

#[test]
fn plain_json_reads_back_as_the_attribute_values_it_shows() {
    let mut record = BTreeMap::new();
    record.insert("level".to_owned(), AttrValue::Long(3));
    for value in [
        AttrValue::Bool(false),
        AttrValue::Long(i64::MIN),
        AttrValue::from("x"),
        AttrValue::Entity(EntityRef::new("Team", "sre")),
        AttrValue::Set(vec![
            AttrValue::Ip("10.0.0.0/8".into()),
            AttrValue::Record(record.clone()),
        ]),
        AttrValue::Decimal("0.25".into()),
        AttrValue::Datetime("2026-01-01T00:00:00Z".into()),
        AttrValue::Duration("90m".into()),
    ] {
        assert_eq!(wire::attr_from_json(&wire::attr_json(&value), "v"), Ok(value));
    }
}

#[test]
fn a_bad_body_is_refused_where_it_is_wrong() {
    let refused = |v: serde_json::Value| wire::attr_from_json(&v, "context.x").unwrap_err().to_string();
    assert!(
        refused(json!(null)).starts_with("context.x: null"),
        "{}",
        refused(json!(null))
    );
    assert!(refused(json!(1.5)).contains("decimal"), "{}", refused(json!(1.5)));
    assert!(
        refused(json!([1, null])).starts_with("context.x[1]:"),
        "{}",
        refused(json!([1, null]))
    );
    assert!(refused(json!({"__extn": {"fn": "sha", "arg": "1"}})).starts_with("context.x.__extn.fn:"));
    assert!(refused(json!({"__entity": {"kind": "User"}})).starts_with("context.x.__entity:"));

    let body = |v: serde_json::Value| serde_json::from_value::<wire::NewRequestBody>(v);
    let base = json!({
        "action": { "type": "Action", "id": "db_restart" },
        "resource": { "type": "Database", "id": "orders" },
        "duration_seconds": 600,
    });
    let mut unknown = base.clone();
    unknown["principal"] = json!({ "type": "User", "id": "lee" });
    let e = body(unknown).expect_err("who the caller is never comes from the body");
    assert!(e.to_string().contains("principal"), "{e}");
    let mut zero = base.clone();
    zero["duration_seconds"] = json!(0);
    let e = body(zero).unwrap().into_request(sam()).unwrap_err();
    assert_eq!((e.path.as_str(), e.code()), ("duration_seconds", "invalid_body"));
    assert_eq!(Problem::from_error(&e).status, 400);
}

#[tokio::test]
async fn a_request_body_makes_the_request_a_client_asked_for() {
    let (g, _clock, _n) = fixtures::gate(Arc::new(MemoryStore::new()));
    let body: wire::NewRequestBody = serde_json::from_value(json!({
        "action": { "type": "Action", "id": "db_restart" },
        "resource": { "type": "Database", "id": "orders" },
        "context": { "ticket": "INC-7", "source": { "__extn": { "fn": "ip", "arg": "10.1.2.3" } } },
        "duration_seconds": 900,
        "justification": "INC-7",
    }))
    .unwrap();
    let outcome = g.request(body.into_request(sam()).unwrap()).await.unwrap();
    let shown = to_json(wire::RequestOutcome::from(&outcome));
    assert_eq!(shown["outcome"], "pending");
    assert_eq!(shown["request"]["duration_seconds"], 900);
    assert_eq!(
        shown["request"]["action"]["context"],
        json!({ "ticket": "INC-7", "source": { "__extn": { "fn": "ip", "arg": "10.1.2.3" } } })
    );
    let review: wire::ReviewBody = serde_json::from_value(json!({ "comment": "ok" })).unwrap();
    let RequestOutcome::Pending(req) = outcome else {
        unreachable!()
    };
    g.approve(req.id, &lee(), review.comment.as_deref()).await.unwrap();

    let report = g.sweep().await.unwrap();
    assert_eq!(
        to_json(report),
        json!({ "requests_expired": 0, "grants_activated": 0, "grants_expired": 0, "reminders_sent": 0 })
    );
}
