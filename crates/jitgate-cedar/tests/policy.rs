//! The Cedar policy's answers, annotations and load-time errors, with real Cedar text.

mod common;

use chrono::Duration;
use common::*;
use jitgate_cedar::CedarError;
use jitgate_core::{EntityRef, Policy, PolicyDecision, Requirement};

fn team(id: &str) -> EntityRef {
    EntityRef::new("Team", id)
}

#[tokio::test]
async fn one_policy_set_gives_standing_eligible_forbidden_and_not_eligible() {
    let p = policy().await;
    assert_eq!(
        p.evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing {
            policy_ids: vec!["read-logs".into()]
        }
    );
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sam"), &act("db_restart", "Database", "orders-prod"))
        .unwrap()
    else {
        panic!("expected eligible")
    };
    assert_eq!(flow.requirements, vec![Requirement::new(team("sre-leads"), 1)]);
    assert_eq!(
        p.break_glass_policies(),
        vec!["prod-db-restart".to_owned()],
        "its @break_glass"
    );
    assert_eq!(flow.max_duration, Duration::hours(1));
    assert_eq!(flow.request_ttl, Duration::minutes(30));
    assert!(flow.require_reason);
    assert_eq!(
        flow.break_glass.as_ref().map(|b| b.max_duration),
        Some(Duration::minutes(15))
    );
    assert!(!flow.auto_approve);
    assert_eq!(flow.policy_ids, vec!["prod-db-restart".to_string()]);
    assert_eq!(
        p.evaluate(&user("sam"), &act("db_drop", "Database", "orders-prod"))
            .unwrap(),
        PolicyDecision::Forbidden {
            policy_ids: vec!["no-drop-prod".into()]
        }
    );
    assert_eq!(
        p.evaluate(&user("eve"), &act("db_restart", "Database", "orders-prod"))
            .unwrap(),
        PolicyDecision::NotEligible
    );
    assert_eq!(
        p.evaluate(&user("sam"), &act("db_drop", "Database", "orders-staging"))
            .unwrap(),
        PolicyDecision::NotEligible
    );
}

#[tokio::test]
async fn every_flow_annotation_reaches_the_flow() {
    let p = policy().await;
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sam"), &act("db_restart", "Database", "orders-staging"))
        .unwrap()
    else {
        panic!()
    };
    assert!(flow.auto_approve, "@auto_approve");
    assert_eq!(flow.max_duration, Duration::hours(8));
    assert_eq!(flow.request_ttl, Duration::hours(1), "default TTL");
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sue"), &act("read_customer", "Customer", "c-42"))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(flow.max_uses, Some(1), "@one_shot");
    let two = with_policies(
        r#"@id("x") @jit("approval") @reviewers("Team::\"security\"") @min_approvals("2") @max_duration("PT10M")
           permit(principal, action == Action::"db_restart", resource);"#,
    )
    .await
    .unwrap();
    let PolicyDecision::Eligible { flow } = two
        .evaluate(&user("sam"), &act("db_restart", "Database", "orders-prod"))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        flow.requirements,
        vec![Requirement::new(team("security"), 2)],
        "@min_approvals"
    );
}

#[tokio::test]
async fn several_matching_rules_need_every_requirement_and_the_shortest_limits() {
    let p = policy().await;
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sam"), &act("db_migrate", "Database", "orders-prod"))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        flow.requirements,
        vec![
            Requirement::new(team("sre-leads"), 1),
            Requirement::new(team("security"), 1)
        ]
    );
    assert_eq!(flow.max_duration, Duration::hours(1), "the shorter of PT2H and PT1H");
    assert!(flow.require_reason, "required by one rule");
    assert_eq!(
        flow.policy_ids,
        vec!["prod-db-migrate".to_string(), "prod-db-migrate-security".to_string()]
    );
}

async fn load_error(text: &str) -> CedarError {
    with_policies(text)
        .await
        .expect_err("must not load")
        .into_iter()
        .next()
        .expect("at least one error")
}

#[tokio::test]
async fn a_malformed_policy_file_yields_line_and_column() {
    let err = load_error("@id(\"ok\")\npermit(principal, action, resource);\n\npermit(principal, action == Action::\"db_restart\" resource);\n").await;
    match &err {
        CedarError::Parse { location, .. } => {
            assert_eq!(location.source_name, "test.cedar");
            assert_eq!(location.line, 4, "{err}");
            assert!(location.column > 1, "{err}");
        }
        other => panic!("expected a parse error, got {other}"),
    }
    assert!(err.to_string().starts_with("test.cedar:4:"), "{err}");
}

#[tokio::test]
async fn a_policy_that_fails_strict_validation_is_refused_with_its_id_and_place() {
    let err = load_error("@id(\"typo\")\npermit(principal, action == Action::\"db_restrat\", resource);").await;
    match &err {
        CedarError::Validation {
            policy_id, location, ..
        } => {
            assert_eq!(policy_id, "typo");
            assert_eq!(location.line, 2, "{err}");
        }
        other => panic!("expected a validation error, got {other}"),
    }
}

#[tokio::test]
async fn bad_annotations_are_load_time_errors_naming_policy_and_annotation() {
    let cases = [
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @min_approvals("two")"#,
            "min_approvals",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("forever")"#,
            "max_duration",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @max_uses("0")"#,
            "max_uses",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @max_uses("1001")"#,
            "max_uses",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @one_shot("true") @max_uses("2")"#,
            "max_uses",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @bind(" , ")"#,
            "bind",
        ),
        // Numbers and durations are bounded at load time (no huge allocation or overflow later).
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @min_approvals("101")"#,
            "min_approvals",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @min_approvals("4294967295")"#,
            "min_approvals",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("P367D")"#,
            "max_duration",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @request_ttl("P99999999D")"#,
            "request_ttl",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT0S")"#,
            "max_duration",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @request_ttl("-PT1H")"#,
            "request_ttl",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Group::\"a\"") @max_duration("PT1H")"#,
            "reviewers",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("sre-leads") @max_duration("PT1H")"#,
            "reviewers",
        ),
        (r#"@id("p") @jit("approval") @max_duration("PT1H")"#, "reviewers"),
        (r#"@id("p") @jit("approval") @reviewers("Team::\"a\"")"#, "max_duration"),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @break_glass("PT2H")"#,
            "break_glass",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @require_reason("yes")"#,
            "require_reason",
        ),
        (
            r#"@id("p") @jit("always") @reviewers("Team::\"a\"") @max_duration("PT1H")"#,
            "jit",
        ),
        (
            r#"@id("p") @reviewers("Team::\"a\"") @max_duration("PT1H")"#,
            "reviewers",
        ),
        (
            r#"@id("p") @jit("approval") @reviewers("Team::\"a\"") @max_duration("PT1H") @approvers("Team::\"a\"")"#,
            "approvers",
        ),
    ];
    for (annotations, name) in cases {
        let err = load_error(&format!(
            "{annotations}\npermit(principal, action == Action::\"db_restart\", resource);"
        ))
        .await;
        match &err {
            CedarError::Annotation {
                policy_id, annotation, ..
            } => {
                assert_eq!(policy_id, "p", "{err}");
                assert_eq!(annotation, name, "{err}");
            }
            other => panic!("{annotations}: expected an annotation error, got {other}"),
        }
    }
    let err = load_error(r#"@id("f") @max_duration("PT1H") forbid(principal, action, resource);"#).await;
    assert!(
        matches!(&err, CedarError::Annotation { annotation, .. } if annotation == "max_duration"),
        "{err}"
    );
    let err =
        load_error(r#"@id("s") @self_approval("true") permit(principal, action == Action::"db_restart", resource);"#)
            .await;
    assert!(
        matches!(&err, CedarError::Annotation { annotation, .. } if annotation == "self_approval"),
        "{err}"
    );
}

/// The annotation bounds are the builder's to set: tighter, or looser.
#[tokio::test]
async fn annotation_limits_are_configurable() {
    use jitgate_cedar::{AnnotationLimits, CedarPolicy};
    let text = r#"@id("p") @jit("approval") @reviewers("Team::\"sre-leads\"") @min_approvals("5") @max_uses("5") @max_duration("P400D")
permit(principal, action == Action::"db_restart", resource);"#;
    let load = |limits: Option<AnnotationLimits>| {
        let mut b = CedarPolicy::builder()
            .schema_file(dir().join("app.cedarschema"))
            .policies("limits.cedar", text);
        if let Some(l) = limits {
            b = b.annotation_limits(l);
        }
        b.build()
    };
    let err = load(None).await.unwrap_err().to_string();
    assert!(
        err.contains("must be at most P366D"),
        "the default is a year and a day: {err}"
    );
    let loose = AnnotationLimits::default().with_max_duration(Duration::days(400));
    assert!(load(Some(loose)).await.is_ok(), "a longer limit lets it load");
    let err = load(Some(loose.with_max_uses(4))).await.unwrap_err().to_string();
    assert!(err.contains("max_uses") && err.contains("from 1 to 4"), "{err}");
    let err = load(Some(loose.with_max_min_approvals(3)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("min_approvals") && err.contains("from 1 to 3"), "{err}");
}

#[tokio::test]
async fn duplicate_ids_and_missing_schema_are_errors() {
    let err =
        load_error("@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);")
            .await;
    assert!(matches!(err, CedarError::DuplicateId { .. }), "{err}");
    let err = jitgate_cedar::CedarPolicy::builder()
        .policies("x", "")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    assert!(matches!(err, CedarError::Schema { .. }), "{err}");
    let err = jitgate_cedar::CedarPolicy::builder()
        .schema("s", "entity User; entity Team")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    assert!(matches!(err, CedarError::Schema { .. }), "{err}");
    let err = jitgate_cedar::CedarPolicy::builder()
        .schema("s", "entity Person;")
        .principal_type("User")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    assert!(err.to_string().contains("principal type `User`"), "{err}");
}

#[tokio::test]
async fn policies_without_an_id_are_named_by_file_and_position() {
    let p = with_policies("permit(principal in Team::\"sre\", action == Action::\"read_logs\", resource);")
        .await
        .unwrap();
    assert_eq!(
        p.evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing {
            policy_ids: vec!["test.cedar#0".into()]
        }
    );
}

#[tokio::test]
async fn missing_files_are_io_errors_naming_the_path() {
    let err = jitgate_cedar::CedarPolicy::builder()
        .schema_file(dir().join("app.cedarschema"))
        .policy_file(dir().join("no-such.cedar"))
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    match &err {
        CedarError::Io { path, .. } => assert!(path.ends_with("no-such.cedar"), "{err}"),
        other => panic!("expected an I/O error, got {other}"),
    }
    let err = jitgate_cedar::CedarPolicy::builder()
        .schema_file("/nonexistent/app.cedarschema")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    assert!(matches!(err, CedarError::Io { .. }), "{err}");
}

#[tokio::test]
async fn no_load_error_repeats_its_cause_and_cedar_diagnostics_stay_reachable() {
    let parse = load_error("permit(principal, action == Action::\"db_restart\" resource);").await;
    let schema = jitgate_cedar::CedarPolicy::builder()
        .schema("bad.cedarschema", "entity User in [;")
        .policies("p.cedar", "permit(principal, action, resource);")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    let missing = jitgate_cedar::CedarPolicy::builder()
        .schema_file("/nonexistent/app.cedarschema")
        .build()
        .await
        .unwrap_err()
        .into_iter()
        .next()
        .expect("an error");
    let entities = jitgate_cedar::entities_from_json("[{\"uid\": 1}]").unwrap_err();
    for e in [&parse, &schema, &missing, &entities] {
        jitgate_testkit::assert_no_repeated_cause(e);
        assert!(std::error::Error::source(e).is_some(), "{e} keeps its cause");
    }
    let diagnostic = std::error::Error::source(&parse).expect("Cedar's parse errors");
    assert!(
        diagnostic.is::<Box<cedar_policy::ParseErrors>>() || diagnostic.is::<cedar_policy::ParseErrors>(),
        "Cedar's diagnostic, typed"
    );
    assert!(matches!(missing, CedarError::Io { .. }), "{missing}");
    assert!(matches!(schema, CedarError::Schema { .. }), "{schema}");
    assert!(matches!(entities, CedarError::Entities { .. }), "{entities}");
}

#[tokio::test]
async fn every_error_of_a_file_is_reported_at_once_each_at_its_place() {
    let text = r#"@id("a") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H") @min_approvals("two")
permit(principal in Team::"sre", action == Action::"db_restart", resource);

@id("b")
permit(principal, action == Action::"db_restrat", resource);

@id("c") @oneshot("true")
permit(principal, action == Action::"read_logs", resource);

@id("d") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H") @min_approvals("0")
permit(principal == ?principal, action == Action::"read_logs", resource);
"#;
    let errors = with_policies(text).await.expect_err("four errors");
    let summary: Vec<(String, usize)> = errors
        .errors()
        .iter()
        .map(|e| match e {
            CedarError::Annotation {
                policy_id, location, ..
            } => (
                format!("annotation {policy_id}"),
                location.as_ref().expect("located").line,
            ),
            CedarError::Validation {
                policy_id, location, ..
            } => (format!("validation {policy_id}"), location.line),
            other => panic!("unexpected {other}"),
        })
        .collect();
    let mut sorted = summary.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            ("annotation a".to_owned(), 1),
            ("annotation c".to_owned(), 7),
            ("annotation d".to_owned(), 10),
            ("validation b".to_owned(), 5),
        ],
        "{errors}"
    );
    assert!(errors.to_string().starts_with("4 errors"), "{errors}");
    // Each is a diagnostic whose label covers the offending text.
    use miette::Diagnostic;
    let related: Vec<&dyn Diagnostic> = errors.related().expect("the errors, as related diagnostics").collect();
    assert_eq!(related.len(), 4);
    for e in errors.errors() {
        let label = e.labels().and_then(|mut l| l.next()).expect("a labelled span");
        let span = &text[label.offset()..label.offset() + label.len()];
        match e {
            CedarError::Annotation { annotation, .. } => {
                assert!(span.starts_with(&format!("@{annotation}(")), "{span}")
            }
            CedarError::Validation { .. } => assert!(span.contains("db_restrat"), "{span}"),
            _ => unreachable!(),
        }
        assert!(e.source_code().is_some(), "{e} carries its source text");
        assert!(e.code().is_some(), "{e} has a code");
    }
}

#[tokio::test]
async fn a_parse_error_renders_with_its_snippet() {
    let err = load_error("@id(\"ok\")\npermit(principal, action, resource);\n\npermit(principal, action == Action::\"db_restart\" resource);\n").await;
    let mut out = String::new();
    miette::NarratableReportHandler::new()
        .render_report(&mut out, &err)
        .expect("renders");
    assert!(out.contains("test.cedar"), "{out}");
    assert!(out.contains("resource"), "{out}");
}

#[tokio::test]
async fn other_annotations_are_the_authors_metadata_and_misspellings_are_errors() {
    let p = with_policies(
        r#"@id("logs") @owner("team-observability") @advice("ask in #sre first")
permit(principal in Team::"sre", action == Action::"read_logs", resource);"#,
    )
    .await
    .expect("an annotation of the authors' own is metadata, not an error");
    assert_eq!(
        p.evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
            .unwrap(),
        PolicyDecision::Standing {
            policy_ids: vec!["logs".into()]
        }
    );
    let err = load_error(
        r#"@id("p") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H") @min_approval("2")
permit(principal in Team::"sre", action == Action::"db_restart", resource);"#,
    )
    .await;
    match &err {
        CedarError::Annotation {
            annotation, problem, ..
        } => {
            assert_eq!(annotation, "min_approval");
            assert!(problem.contains("did you mean @min_approvals"), "{err}");
        }
        other => panic!("expected an annotation error, got {other}"),
    }
}

#[tokio::test]
async fn use_limits_and_attribute_bindings_reach_the_flow() {
    let p = with_policies(
        r#"@id("runbook") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H")
@max_uses("3") @bind("ticket, command")
permit(principal in Team::"sre", action == Action::"db_restart", resource);
@id("exact") @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H") @bind("*")
permit(principal in Team::"sre", action == Action::"read_logs", resource);"#,
    )
    .await
    .expect("loads");
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sam"), &act("db_restart", "Database", "orders-prod"))
        .unwrap()
    else {
        panic!("expected eligible")
    };
    assert_eq!(flow.max_uses, Some(3));
    assert_eq!(flow.bind_attributes, vec!["ticket".to_owned(), "command".to_owned()]);
    assert!(!flow.bind_parameters);
    let PolicyDecision::Eligible { flow } = p
        .evaluate(&user("sam"), &act("read_logs", "Service", "orders"))
        .unwrap()
    else {
        panic!("expected eligible")
    };
    assert!(flow.bind_parameters, "@bind(\"*\") binds every parameter");
}

/// `@break_glass` takes its documented boolean forms as well as a duration: `"true"` allows
/// break-glass up to `@max_duration`, `"false"` none.
#[tokio::test]
async fn break_glass_is_a_duration_or_a_boolean() {
    let flow_of = |bg: &'static str| async move {
        let text = format!(
            r#"@id("x") @jit("approval") @reviewers("Team::\"security\"") @max_duration("PT2H") @break_glass("{bg}")
               permit(principal, action == Action::"db_restart", resource);"#
        );
        let p = with_policies(&text).await.unwrap();
        let PolicyDecision::Eligible { flow } = p
            .evaluate(&user("sam"), &act("db_restart", "Database", "orders-prod"))
            .unwrap()
        else {
            panic!("eligible")
        };
        flow.break_glass.as_ref().map(|b| b.max_duration)
    };
    assert_eq!(flow_of("true").await, Some(Duration::hours(2)));
    assert_eq!(flow_of("false").await, None);
    assert_eq!(flow_of("PT15M").await, Some(Duration::minutes(15)));
    let err = load_error(
        r#"@id("x") @jit("approval") @reviewers("Team::\"security\"") @max_duration("PT2H") @break_glass("yes")
           permit(principal, action == Action::"db_restart", resource);"#,
    )
    .await;
    assert!(err.to_string().contains("break_glass"), "{err}");
}
