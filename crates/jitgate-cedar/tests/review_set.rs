//! jitgate's own actions live in a policy set of their own: the service's policies load and
//! decide as in bare Cedar (catch-all scopes, templates, several principal types), and only
//! policies that name `Jit::Action::"review"` or `"revoke"` decide reviews and revokes.

use std::sync::Arc;

use chrono::Duration;
use jitgate_cedar::{entities_from_json, CedarError, CedarPolicy, StaticEntities};
use jitgate_core::*;

const SCHEMA: &str = r#"
    entity Team in [Team];
    entity User in [Team];
    entity Bot in [Team];
    entity Db = { "owner": Team };
    action "restart" appliesTo { principal: [User, Bot], resource: [Db], context: { "ticket": String } };
    action "read" appliesTo { principal: [User, Bot], resource: [Db], context: { "ticket": String } };
"#;

const ENTITIES: &str = r#"[
    { "uid": { "type": "Team", "id": "sre" }, "attrs": {}, "parents": [] },
    { "uid": { "type": "Team", "id": "leads" }, "attrs": {}, "parents": [] },
    { "uid": { "type": "User", "id": "sam" }, "attrs": {}, "parents": [{ "type": "Team", "id": "sre" }] },
    { "uid": { "type": "User", "id": "lee" }, "attrs": {}, "parents": [{ "type": "Team", "id": "leads" }] },
    { "uid": { "type": "User", "id": "eve" }, "attrs": {}, "parents": [{ "type": "Team", "id": "leads" }] },
    { "uid": { "type": "Bot", "id": "ci" }, "attrs": {}, "parents": [{ "type": "Team", "id": "sre" }] },
    { "uid": { "type": "Db", "id": "orders" }, "attrs": { "owner": { "__entity": { "type": "Team", "id": "sre" } } }, "parents": [] }
]"#;

/// Service policies bare Cedar validates but that would not validate (or would decide
/// differently) if jitgate's actions were among theirs: a catch-all forbid reading the context,
/// one reading a resource attribute, a catch-all standing permit.
const SERVICE: &str = r#"
    @id("ticket-needed")
    forbid(principal, action, resource) unless { context.ticket like "INC-*" };
    @id("owners-only")
    forbid(principal, action, resource) unless { principal in resource.owner };
    @id("no-eve")
    forbid(principal == User::"eve", action, resource);
    @id("sre-read")
    permit(principal in Team::"sre", action == Action::"read", resource);
    @id("restart")
    @jit("approval") @reviewers("Team::\"leads\"") @max_duration("PT1H")
    permit(principal in Team::"sre", action == Action::"restart", resource);
"#;

const REVIEWS: &str = r#"
    @id("leads-review")
    permit(principal in Team::"leads", action == Jit::Action::"review", resource);
"#;

async fn load(policies: &str) -> Result<CedarPolicy, jitgate_cedar::CedarErrors> {
    CedarPolicy::builder()
        .schema("app.cedarschema", SCHEMA)
        .policies("app.cedar", policies)
        .principal_type("User")
        .entities(Arc::new(StaticEntities(entities_from_json(ENTITIES).unwrap())))
        .build()
        .await
}

fn restart(ticket: &str) -> Action {
    Action::new(EntityRef::new("Action", "restart"), EntityRef::new("Db", "orders")).with_attr("ticket", ticket)
}

fn user(id: &str) -> EntityRef {
    EntityRef::new("User", id)
}

fn gate(policy: CedarPolicy) -> Gate {
    Gate::builder()
        .policy(Arc::new(policy))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(ManualClock::default()))
        .build()
        .unwrap()
}

async fn pending(g: &Gate, who: &str) -> AccessRequest {
    let ask = NewRequest::new(user(who), restart("INC-1"), Duration::minutes(30));
    match g.request(ask).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn catch_all_service_policies_load_and_decide_the_services_actions_only() {
    let policy = load(&format!("{SERVICE}{REVIEWS}"))
        .await
        .expect("bare Cedar validates it");
    assert!(matches!(
        policy.evaluate(&user("sam"), &restart("INC-1")).unwrap(),
        PolicyDecision::Eligible { .. }
    ));
    assert_eq!(
        policy.evaluate(&user("sam"), &restart("later")).unwrap(),
        PolicyDecision::Forbidden {
            policy_ids: vec!["ticket-needed".into()]
        }
    );
    // Reviews: only the review policies decide. The catch-all forbids (which a review's empty
    // context and `Jit::AccessRequest` resource could not even evaluate) do not apply: eve is
    // not in the database's owning team, is named by `no-eve`, and still reviews; a forbid on
    // reviews names jitgate's action.
    let g = gate(policy);
    let r = pending(&g, "sam").await;
    let out = g.approve(r.id, &user("eve"), None).await.unwrap();
    assert!(out.grant.is_some(), "eve reviews: {out:?}");

    let policy = load(&format!(
        "{SERVICE}{REVIEWS}\n@id(\"eve-no-review\") forbid(principal == User::\"eve\", action == Jit::Action::\"review\", resource);"
    ))
    .await
    .unwrap();
    let g = gate(policy);
    let r = pending(&g, "sam").await;
    assert!(
        g.approve(r.id, &user("eve"), None).await.is_err(),
        "eve is forbidden to review"
    );
    assert!(g.approve(r.id, &user("lee"), None).await.is_ok());
}

#[tokio::test]
async fn a_policy_naming_both_kinds_of_action_or_a_template_of_jitgates_actions_is_refused() {
    let mixed = r#"@id("both") permit(principal, action in [Action::"read", Jit::Action::"review"], resource);"#;
    let template = r#"@id("t") permit(principal == ?principal, action == Jit::Action::"review", resource);"#;
    for (text, id, says) in [(mixed, "both", "together"), (template, "t", "template")] {
        let errors = load(text).await.expect_err(text);
        let e = errors.first();
        assert!(
            matches!(e, CedarError::Validation { policy_id, .. } if policy_id == id),
            "{e}"
        );
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!(e.location().expect("located").line, 1);
    }
}

#[tokio::test]
async fn principal_types_default_to_the_schemas_principals_and_type_the_requester_only_when_one() {
    let policy = CedarPolicy::builder()
        .schema("app.cedarschema", SCHEMA)
        .policies("app.cedar", SERVICE)
        .build()
        .await
        .unwrap();
    assert_eq!(policy.principal_types(), ["Bot".to_owned(), "User".to_owned()]);
    assert!(policy.is_principal(&EntityRef::new("Bot", "ci")));
    assert!(policy.is_principal(&user("sam")));
    assert!(!policy.is_principal(&EntityRef::new("Team", "sre")));

    let self_review = r#"@id("not-own") permit(principal, action == Jit::Action::"review", resource) when { resource.requester != principal };"#;
    let both = CedarPolicy::builder()
        .schema("app.cedarschema", SCHEMA)
        .policies("app.cedar", self_review)
        .build()
        .await
        .expect_err("requester has no single type with two principal types");
    assert!(
        both.to_string().contains("requester"),
        "the validation error names the attribute: {both}"
    );
    let one = load(self_review)
        .await
        .expect("with one principal type, requester is a User");
    assert_eq!(one.principal_types(), ["User".to_owned()]);
    assert!(!one.is_principal(&EntityRef::new("Bot", "ci")));
}

#[tokio::test]
async fn templates_and_their_links_load_and_decide_under_the_links_ids() {
    let text = r#"
        @id("on-call")
        @jit("approval") @reviewers("Team::\"leads\"") @max_duration("PT30M")
        permit(principal == ?principal, action == Action::"restart", resource == ?resource);
    "#;
    let links = r#"[{ "template_id": "on-call", "link_id": "on-call-sam-orders",
        "args": { "?principal": "User::\"sam\"", "?resource": "Db::\"orders\"" } }]"#;
    let policy = CedarPolicy::builder()
        .schema("app.cedarschema", SCHEMA)
        .policies("app.cedar", &format!("{text}{REVIEWS}"))
        .template_links("links.json", links)
        .principal_type("User")
        .entities(Arc::new(StaticEntities(entities_from_json(ENTITIES).unwrap())))
        .build()
        .await
        .unwrap();
    match policy.evaluate(&user("sam"), &restart("INC-1")).unwrap() {
        PolicyDecision::Eligible { flow } => {
            assert_eq!(flow.policy_ids, vec!["on-call-sam-orders".to_owned()]);
            assert_eq!(flow.max_duration, Duration::minutes(30), "the template's annotations");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        policy.evaluate(&user("lee"), &restart("INC-1")).unwrap(),
        PolicyDecision::NotEligible,
        "only the linked principal"
    );
    // Through the gate: asked, approved, used.
    let g = gate(policy);
    let r = pending(&g, "sam").await;
    assert!(g.approve(r.id, &user("lee"), None).await.unwrap().grant.is_some());
    assert!(matches!(
        g.authorize(&restart("INC-1"), &user("sam")).await,
        jitgate_core::Decision::Allow { .. }
    ));

    // Bad links: each a typed error naming the link and what is wrong.
    for (links, says) in [
        ("not json", "not a JSON list"),
        (
            r#"[{"template_id": "nope", "link_id": "l", "args": {"?principal": "User::\"sam\"", "?resource": "Db::\"orders\""}}]"#,
            "cannot link template `nope`",
        ),
        (
            r#"[{"template_id": "on-call", "link_id": "l", "args": {"?who": "User::\"sam\""}}]"#,
            "`?who` is not a slot",
        ),
        (
            r#"[{"template_id": "on-call", "link_id": "l", "args": {"?principal": "sam", "?resource": "Db::\"orders\""}}]"#,
            "is not an entity",
        ),
    ] {
        let errors = CedarPolicy::builder()
            .schema("app.cedarschema", SCHEMA)
            .policies("app.cedar", text)
            .template_links("links.json", links)
            .build()
            .await
            .expect_err(links);
        let e = errors.first();
        assert!(e.to_string().contains(says), "{e}");
        assert!(matches!(e, CedarError::Link { .. }), "{e}");
        assert!(e.to_string().contains("links.json"), "{e}");
    }
}

/// Who may read the audit trail is a `Jit::Action::"read_audit"` decision on the policies of
/// jitgate's own actions: nobody without a permit (the service's catch-all permits do not
/// count), the permitted group's members with one, and a forbid wins.
#[tokio::test]
async fn auditors_are_who_a_read_audit_permit_names() {
    let catch_all = r#"
        @id("anything") permit(principal, action, resource);
    "#;
    let none = load(&format!("{SERVICE}{REVIEWS}{catch_all}")).await.unwrap();
    assert!(
        !none.may_read_audit(&user("sam")).unwrap(),
        "no read_audit permit: nobody"
    );
    assert!(!none.may_read_audit(&user("lee")).unwrap());

    let audit = r#"
        @id("leads-audit")
        permit(principal in Team::"leads", action == Jit::Action::"read_audit", resource);
        @id("not-eve")
        forbid(principal == User::"eve", action == Jit::Action::"read_audit", resource);
    "#;
    let policy = load(&format!("{SERVICE}{REVIEWS}{audit}")).await.unwrap();
    assert!(policy.may_read_audit(&user("lee")).unwrap(), "a lead");
    assert!(!policy.may_read_audit(&user("sam")).unwrap(), "not a lead");
    assert!(!policy.may_read_audit(&user("eve")).unwrap(), "a lead, but forbidden");
    assert!(!policy.may_read_audit(&user("nobody")).unwrap(), "an unknown user");

    let g = gate(policy);
    g.ensure_auditor(&user("lee")).unwrap();
    assert!(matches!(
        g.ensure_auditor(&user("sam")),
        Err(Error::NotPermittedToReadAudit { .. })
    ));
    let trail = g.audit_records_as(&user("lee"), &PageRequest::first(10)).await.unwrap();
    assert!(trail.items.is_empty() && trail.next.is_none());
}
