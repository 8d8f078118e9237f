//! Differential tests: slicing (and the decision cache) give exactly bare Cedar's answers.

mod common;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression};
use common::*;
use jitgate_cedar::slice::{compare_with_whole, compare_within_class};
use jitgate_cedar::{CedarPolicy, JsonEntitiesFile};
use jitgate_core::{Action, AttrValue, EntityRef, Policy};
use proptest::prelude::*;

fn uid(s: &str) -> EntityUid {
    EntityUid::from_str(s).unwrap()
}

const ACTIONS: &[&str] = &["read", "edit", "delete", "write"];

/// A world: 5 teams (a random acyclic hierarchy), 6 users in random teams, each a contractor,
/// not one, or without the attribute (conditions on it can error), 3 folders, 6 documents in
/// random folders, and the action group `write` ⊇ {edit, delete}.
fn world(
    team_parents: &[Option<usize>],
    user_teams: &[Vec<usize>],
    contractors: &[Option<bool>],
    doc_folders: &[usize],
) -> Entities {
    let mut v = Vec::new();
    for (i, parent) in team_parents.iter().enumerate() {
        let parents: HashSet<EntityUid> = parent
            .filter(|p| *p < i)
            .map(|p| uid(&format!("Team::\"t{p}\"")))
            .into_iter()
            .collect();
        v.push(Entity::new_no_attrs(uid(&format!("Team::\"t{i}\"")), parents));
    }
    for (i, teams) in user_teams.iter().enumerate() {
        let parents = teams.iter().map(|t| uid(&format!("Team::\"t{t}\""))).collect();
        let attrs = contractors[i]
            .map(|c| ("contractor".to_owned(), RestrictedExpression::new_bool(c)))
            .into_iter()
            .collect();
        v.push(Entity::new(uid(&format!("User::\"u{i}\"")), attrs, parents).unwrap());
    }
    for f in 0..3 {
        v.push(Entity::new_no_attrs(uid(&format!("Folder::\"f{f}\"")), HashSet::new()));
    }
    for (i, f) in doc_folders.iter().enumerate() {
        // Even documents carry a level; odd ones do not, so conditions on it can also error.
        let attrs = if i % 2 == 0 {
            std::collections::HashMap::from([("level".to_owned(), RestrictedExpression::new_long(i as i64))])
        } else {
            std::collections::HashMap::new()
        };
        v.push(
            Entity::new(
                uid(&format!("Doc::\"d{i}\"")),
                attrs,
                HashSet::from([uid(&format!("Folder::\"f{f}\""))]),
            )
            .unwrap(),
        );
    }
    v.push(Entity::new_no_attrs(uid("Action::\"write\""), HashSet::new()));
    v.push(Entity::new_no_attrs(uid("Action::\"read\""), HashSet::new()));
    for a in ["edit", "delete"] {
        v.push(Entity::new_no_attrs(
            uid(&format!("Action::\"{a}\"")),
            HashSet::from([uid("Action::\"write\"")]),
        ));
    }
    Entities::from_entities(v, None).unwrap()
}

fn principal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..6usize).prop_map(|u| format!("principal == User::\"u{u}\"")),
        (0..5usize).prop_map(|t| format!("principal in Team::\"t{t}\"")),
        Just("principal is User".to_owned()),
        (0..5usize).prop_map(|t| format!("principal is User in Team::\"t{t}\"")),
        (0..5usize).prop_map(|t| format!("principal == Team::\"t{t}\"")),
    ]
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        (0..ACTIONS.len()).prop_map(|a| format!("action == Action::\"{}\"", ACTIONS[a])),
        (0..ACTIONS.len(), 0..ACTIONS.len())
            .prop_map(|(a, b)| format!("action in [Action::\"{}\", Action::\"{}\"]", ACTIONS[a], ACTIONS[b])),
        Just("action in Action::\"write\"".to_owned()),
    ]
}

fn resource() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        (0..6usize).prop_map(|d| format!("resource == Doc::\"d{d}\"")),
        (0..3usize).prop_map(|f| format!("resource in Folder::\"f{f}\"")),
        Just("resource is Doc".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" when { context.flag }".to_owned()),
        Just(" when { context.n > 3 }".to_owned()),
        Just(" when { resource.level > 1 }".to_owned()),
        Just(" when { resource has level && resource.level < 4 }".to_owned()),
        (0..5usize).prop_map(|t| format!(" when {{ principal in Team::\"t{t}\" }}")),
        (0..3usize).prop_map(|f| format!(" unless {{ resource in Folder::\"f{f}\" }}")),
        // Conditions that open the policy and read only the principal (decided per principal
        // with the snapshot), alone, before and after others, and erroring where the
        // attribute is missing.
        Just(" when { principal.contractor }".to_owned()),
        Just(" unless { principal.contractor }".to_owned()),
        Just(" when { principal has contractor && principal.contractor && context.flag }".to_owned()),
        Just(" when { context.flag && principal.contractor }".to_owned()),
        Just(" when { principal.contractor } when { resource.level > 1 }".to_owned()),
        Just(" when { resource.level > 1 } when { principal.contractor }".to_owned()),
        (0..5usize).prop_map(|t| format!(" when {{ principal in Team::\"t{t}\" }} unless {{ principal.contractor }}")),
        (0..5usize).prop_map(|t| format!(" unless {{ principal in Team::\"t{t}\" || principal.contractor }}")),
        // Opening principal conditions, then the principal read again after something else:
        // principals of a class can decide differently.
        (0..5usize)
            .prop_map(|t| format!(" when {{ principal in Team::\"t{t}\" && context.flag && principal.contractor }}")),
        (0..5usize).prop_map(|t| format!(
            " when {{ principal.contractor }} when {{ context.flag }} unless {{ principal in Team::\"t{t}\" }}"
        )),
    ]
}

fn policy_text() -> impl Strategy<Value = String> {
    (any::<bool>(), principal(), action(), resource(), condition())
        .prop_map(|(permit, p, a, r, c)| format!("{}({p}, {a}, {r}){c};", if permit { "permit" } else { "forbid" }))
}

fn context(choice: u8) -> Context {
    match choice % 3 {
        0 => Context::empty(),
        1 => Context::from_pairs([
            ("flag".to_owned(), RestrictedExpression::new_bool(true)),
            ("n".to_owned(), RestrictedExpression::new_long(5)),
        ])
        .unwrap(),
        _ => Context::from_pairs([("flag".to_owned(), RestrictedExpression::new_bool(false))]).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_slice_decides_exactly_as_the_whole_set(
        policies in prop::collection::vec(policy_text(), 1..14),
        team_parents in prop::collection::vec(prop::option::of(0..5usize), 5),
        user_teams in prop::collection::vec(prop::collection::vec(0..5usize, 0..3), 6),
        contractors in prop::collection::vec(prop::option::of(any::<bool>()), 6),
        doc_folders in prop::collection::vec(0..3usize, 6),
        requests in prop::collection::vec((0..6usize, 0..ACTIONS.len(), 0..6usize, any::<u8>()), 1..10),
    ) {
        let all = PolicySet::from_str(&policies.join("\n")).unwrap();
        let entities = world(&team_parents, &user_teams, &contractors, &doc_folders);
        for (u, a, d, c) in requests {
            let (p, act, r) = (uid(&format!("User::\"u{u}\"")), uid(&format!("Action::\"{}\"", ACTIONS[a])), uid(&format!("Doc::\"d{d}\"")));
            let req = Request::new(p.clone(), act.clone(), r, context(c), None).unwrap();
            let diff = compare_with_whole(&all, &p, &act, &req, &entities);
            prop_assert!(diff.is_none(), "{:?} on {:?}", diff, policies);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The decision cache's claim: where every policy of an action reads the principal only in
    /// its scope and opening principal conditions, two principals of one class get the same
    /// decision, determining policies and errors from bare Cedar on the whole set.
    #[test]
    fn principals_of_a_class_decide_alike(
        policies in prop::collection::vec(policy_text(), 1..5),
        team_parents in prop::collection::vec(prop::option::of(0..5usize), 5),
        user_teams in prop::collection::vec(prop::collection::vec(0..5usize, 0..3), 6),
        contractors in prop::collection::vec(prop::option::of(any::<bool>()), 6),
        doc_folders in prop::collection::vec(0..3usize, 6),
        requests in prop::collection::vec((0..ACTIONS.len(), 0..6usize, any::<u8>()), 1..6),
    ) {
        let all = PolicySet::from_str(&policies.join("\n")).unwrap();
        let entities = world(&team_parents, &user_teams, &contractors, &doc_folders);
        let users: Vec<EntityUid> = (0..6).map(|u| uid(&format!("User::\"u{u}\""))).collect();
        for (a, d, c) in requests {
            let (act, r) = (uid(&format!("Action::\"{}\"", ACTIONS[a])), uid(&format!("Doc::\"d{d}\"")));
            let diff = compare_within_class(&all, &entities, &users, &act, &r, &context(c));
            prop_assert!(diff.is_none(), "{:?} on {:?}", diff, policies);
        }
    }
}

const USERS: &[&str] = &["sam", "lee", "ada", "sec", "sue", "eve"];
const REQUESTS: &[(&str, &str, &str)] = &[
    ("db_restart", "Database", "orders-prod"),
    ("db_restart", "Database", "orders-staging"),
    ("db_migrate", "Database", "orders-prod"),
    ("db_drop", "Database", "orders-prod"),
    ("read_logs", "Service", "orders"),
    ("read_customer", "Customer", "c-42"),
];

async fn example(cache: usize) -> CedarPolicy {
    builder()
        .decision_cache(cache)
        .entities(Arc::new(JsonEntitiesFile::new(dir().join("entities.json"))))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn cached_decisions_equal_uncached_ones_and_are_counted() {
    let (plain, cached) = (example(0).await, example(256).await);
    for _round in 0..2 {
        for who in USERS {
            for (a, ty, id) in REQUESTS {
                for ticket in [None, Some("INC-1")] {
                    let mut action = Action::new(EntityRef::new("Action", *a), EntityRef::new(*ty, *id));
                    if let Some(t) = ticket {
                        action = action.with_attr("ticket", AttrValue::from(t));
                    }
                    let user = EntityRef::new("User", *who);
                    assert_eq!(
                        cached.evaluate(&user, &action).unwrap(),
                        plain.evaluate(&user, &action).unwrap()
                    );
                }
            }
        }
    }
    // No example policy reads `context.ticket`: with or without one, a call shares its cache
    // entry, so only first-round calls without a ticket miss — one per principal class and
    // request, not one per user (every example policy reads the principal only in its scope).
    let n = (USERS.len() * REQUESTS.len()) as u64;
    let stats = cached.decision_cache_stats();
    assert_eq!(stats.misses + stats.hits, 4 * n);
    assert!(stats.misses < n, "users of one class share their decisions: {stats:?}");
    let first_round = stats.misses;
    for who in USERS {
        for (a, ty, id) in REQUESTS {
            let action = Action::new(EntityRef::new("Action", *a), EntityRef::new(*ty, *id))
                .with_attr("ticket", AttrValue::from("INC-2"));
            cached.evaluate(&EntityRef::new("User", *who), &action).unwrap();
        }
    }
    assert_eq!(
        cached.decision_cache_stats().misses,
        first_round,
        "a ticket no policy reads does not defeat the cache"
    );
    let n = first_round;
    assert_eq!(
        plain.decision_cache_stats().hits + plain.decision_cache_stats().misses,
        0,
        "off by default"
    );
    cached.refresh_entities().await.unwrap();
    let action = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    );
    cached.evaluate(&EntityRef::new("User", "sam"), &action).unwrap();
    assert_eq!(
        cached.decision_cache_stats().misses,
        n + 1,
        "an entity refresh empties the cache"
    );
}

/// 1,000 users in two teams, one request each: where the action's policies read the principal
/// only in their scopes and opening principal conditions, the decision is cached per principal
/// class (two misses); where one of them reads it further on (a forbid on a user attribute
/// after a context test), per principal — and both answer as without a cache.
#[tokio::test]
async fn the_cache_answers_a_principal_class_from_one_member() {
    let schema = r#"
        entity Team in [Team];
        entity User in [Team] { "contractor": Bool };
        entity Database;
        action "db_restart" appliesTo { principal: [User], resource: [Database], context: { "ticket"?: String } };
        action "db_drop" appliesTo { principal: [User], resource: [Database], context: { "ticket"?: String } };
    "#;
    let policies = r#"
        @id("restart") @jit("approval") @reviewers("Team::\"leads\"") @max_duration("PT1H")
        permit(principal in Team::"sre", action == Action::"db_restart", resource);
        @id("no-contractor-restart")
        forbid(principal, action == Action::"db_restart", resource) when { principal.contractor };
        @id("drop") permit(principal in Team::"sre", action == Action::"db_drop", resource);
        @id("no-contractor-drop-with-ticket")
        forbid(principal, action == Action::"db_drop", resource) when { context has ticket && principal.contractor };
    "#;
    let mut entities = vec![
        serde_json::json!({ "uid": { "type": "Team", "id": "sre" }, "attrs": {}, "parents": [] }),
        serde_json::json!({ "uid": { "type": "Team", "id": "support" }, "attrs": {}, "parents": [] }),
        serde_json::json!({ "uid": { "type": "Database", "id": "orders" }, "attrs": {}, "parents": [] }),
    ];
    for i in 0..1_000 {
        entities.push(serde_json::json!({
            "uid": { "type": "User", "id": format!("u{i}") },
            "attrs": { "contractor": i % 10 == 0 },
            "parents": [{ "type": "Team", "id": if i % 2 == 0 { "sre" } else { "support" } }],
        }));
    }
    let entities = jitgate_cedar::entities_from_json(&serde_json::Value::Array(entities).to_string()).unwrap();
    let build = |cache: usize| {
        let entities = entities.clone();
        async move {
            CedarPolicy::builder()
                .schema("app.cedarschema", schema)
                .policies("app.cedar", policies)
                .entities(Arc::new(jitgate_cedar::StaticEntities(entities)))
                .decision_cache(cache)
                .build()
                .await
                .unwrap()
        }
    };
    let (plain, cached) = (build(0).await, build(4_096).await);
    let db = EntityRef::new("Database", "orders");
    let restart = Action::new(EntityRef::new("Action", "db_restart"), db.clone()).with_attr("ticket", "INC-1");
    let drop = Action::new(EntityRef::new("Action", "db_drop"), db).with_attr("ticket", "INC-1");
    for i in 0..1_000 {
        let who = EntityRef::new("User", format!("u{i}"));
        assert_eq!(
            cached.evaluate(&who, &restart).unwrap(),
            plain.evaluate(&who, &restart).unwrap(),
            "u{i}"
        );
    }
    let stats = cached.decision_cache_stats();
    // Classes: sre, sre contractors (every tenth user), support (the contractor forbid's
    // opening condition tells the contractors apart).
    assert_eq!((stats.misses, stats.hits), (3, 997), "one miss per class");
    for i in 0..1_000 {
        let who = EntityRef::new("User", format!("u{i}"));
        assert_eq!(
            cached.evaluate(&who, &drop).unwrap(),
            plain.evaluate(&who, &drop).unwrap(),
            "u{i}"
        );
    }
    let stats = cached.decision_cache_stats();
    assert_eq!(
        (stats.misses, stats.hits),
        (1_003, 997),
        "a policy reading the principal past its opening conditions: one miss per user"
    );
    // A principal the snapshot does not hold is never answered for a class: here the
    // contractor forbid cannot be evaluated for it, so both deny with an error.
    let ghost = EntityRef::new("User", "ghost");
    assert!(plain.evaluate(&ghost, &restart).is_err());
    assert!(cached.evaluate(&ghost, &restart).is_err(), "not a class's answer");
    assert_eq!(cached.decision_cache_stats().misses, 1_004);
}

/// The decision cache keys on the context attributes some policy reads: a ticket read by a
/// forbid is part of the key (each ticket decides on its own, as bare Cedar does), one that no
/// policy reads is not.
#[tokio::test]
async fn the_cache_keys_on_the_context_attributes_policies_read() {
    let text = r#"
        @id("restart") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H")
        permit(principal in Team::"sre", action == Action::"db_restart", resource);
        @id("no-blocked-ticket")
        forbid(principal, action == Action::"db_restart", resource) when { context has ticket && context.ticket == "BLOCKED" };
    "#;
    let build = |cache: usize| async move {
        jitgate_cedar::CedarPolicy::builder()
            .schema_file(dir().join("app.cedarschema"))
            .policies("test.cedar", text)
            .entities(Arc::new(JsonEntitiesFile::new(dir().join("entities.json"))))
            .decision_cache(cache)
            .build()
            .await
            .unwrap()
    };
    let (plain, cached) = (build(0).await, build(64).await);
    let sam = EntityRef::new("User", "sam");
    let restart = |ticket: &str| {
        Action::new(
            EntityRef::new("Action", "db_restart"),
            EntityRef::new("Database", "orders-prod"),
        )
        .with_attr("ticket", AttrValue::from(ticket))
    };
    for ticket in ["INC-1", "BLOCKED", "INC-2", "BLOCKED", "INC-1"] {
        assert_eq!(
            cached.evaluate(&sam, &restart(ticket)).unwrap(),
            plain.evaluate(&sam, &restart(ticket)).unwrap(),
            "{ticket}"
        );
    }
    let stats = cached.decision_cache_stats();
    assert_eq!(
        (stats.misses, stats.hits),
        (3, 2),
        "one entry per ticket value read by the forbid"
    );
    // What no policy of the action reads never reaches Cedar, cached or not: a malformed value
    // there changes nothing; the same value where a policy reads it fails the call.
    let note = |a: Action| a.with_attr("note", AttrValue::Ip("not an address".into()));
    for policy in [&plain, &cached] {
        assert!(matches!(
            policy.evaluate(&sam, &note(restart("INC-1"))).unwrap(),
            jitgate_core::PolicyDecision::Eligible { .. }
        ));
        let bad_ticket = restart("INC-1").with_attr("ticket", AttrValue::Ip("not an address".into()));
        assert!(
            policy.evaluate(&sam, &bad_ticket).is_err(),
            "a malformed value policies read"
        );
    }
}

/// Slices are built with the entity snapshot, one per principal class and action: users in the
/// same groups (as far as the policies' scopes name them) share one, and a known user's first
/// call computes nothing. A principal the snapshot does not know gets its slice on first use.
#[tokio::test]
async fn slices_are_built_with_the_snapshot_once_per_principal_class() {
    // 1,000 users in two teams; the policies name `sre` and `support` (and others).
    let mut entities: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("entities.json")).unwrap()).unwrap();
    for i in 0..1_000 {
        let team = if i % 2 == 0 { "sre" } else { "support" };
        entities.push(serde_json::json!({
            "uid": { "type": "User", "id": format!("u{i}") },
            "attrs": {},
            "parents": [{ "type": "Team", "id": team }],
        }));
    }
    let policy = CedarPolicy::builder()
        .schema_file(dir().join("app.cedarschema"))
        .policy_dir(dir())
        .entities(Arc::new(jitgate_cedar::StaticEntities(
            jitgate_cedar::entities_from_json(&serde_json::Value::Array(entities).to_string()).unwrap(),
        )))
        .build()
        .await
        .unwrap();
    let stats = policy.slice_stats();
    let actions = 5;
    // The example's 8 users fall into a few classes; the 1,000 new ones add none beyond theirs.
    assert_eq!(stats.keys % actions, 0, "{stats:?}");
    assert!(stats.keys / actions <= 8, "classes, not users: {stats:?}");
    assert!(stats.distinct <= stats.keys, "{stats:?}");
    assert_eq!(stats.overflow, 0);
    let restart = act("db_restart", "Database", "orders-prod");
    for i in 0..1_000 {
        let d = policy.evaluate(&user(&format!("u{i}")), &restart).unwrap();
        let expected = i % 2 == 0;
        assert_eq!(
            matches!(d, jitgate_core::PolicyDecision::Eligible { .. }),
            expected,
            "u{i}: {d:?}"
        );
    }
    assert_eq!(policy.slice_stats().overflow, 0, "known users compute no slice");
    // A user not in the entities, in no group: the class of every known groupless user.
    policy.evaluate(&user("ghost"), &restart).unwrap();
    assert_eq!(policy.slice_stats().overflow, 0, "the class is known");
    // A team asking: no principal type, so no class was built for it.
    policy.evaluate(&EntityRef::new("Team", "sre"), &restart).unwrap();
    assert_eq!(
        policy.slice_stats().overflow,
        1,
        "an unknown class's slice, on first use"
    );
}
