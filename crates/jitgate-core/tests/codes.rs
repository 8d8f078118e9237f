//! Error codes, categories and problem details, as a service behind HTTP meets them: each
//! failure below is produced through the gate (not built by hand), and its code, status and
//! problem document are pinned.

use std::sync::Arc;

use chrono::Duration;
use jitgate_core::*;
use jitgate_testkit::faulty::{Capabilities, FaultyStore};
use jitgate_testkit::fixtures::{self, ask, drop_db, eve, lee, restart, sam};

async fn code_of<T: std::fmt::Debug>(r: Result<T, Error>) -> (&'static str, u16) {
    let e = r.expect_err("the gate refuses this");
    (e.code(), e.category().http_status())
}

#[tokio::test]
async fn each_refusal_has_its_code_and_status() {
    let (g, _clock, _n) = fixtures::gate(Arc::new(MemoryStore::new()));
    let RequestOutcome::Pending(req) = g.request(ask(restart("orders"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let cases = [
        (
            code_of(g.read_request(RequestId::new_random()).await).await,
            ("request_not_found", 404),
        ),
        (
            code_of(g.revoke(GrantId::new_random(), &lee(), None).await).await,
            ("grant_not_found", 404),
        ),
        (
            code_of(g.request(ask(drop_db("orders"), 30)).await).await,
            ("forbidden", 403),
        ),
        (
            code_of(
                g.request(NewRequest::new(eve(), restart("orders"), Duration::minutes(5)))
                    .await,
            )
            .await,
            ("forbidden", 403),
        ),
        (
            code_of(g.approve(req.id, &sam(), None).await).await,
            ("self_approval", 403),
        ),
        (
            code_of(
                g.request(NewRequest::new(sam(), restart("a"), Duration::minutes(-5)))
                    .await,
            )
            .await,
            ("non_positive_duration", 400),
        ),
        (
            code_of(
                g.request(ask(restart("b"), 30).with_justification("x".repeat(100_000)))
                    .await,
            )
            .await,
            ("too_long", 400),
        ),
        (
            code_of(g.request(ask(restart("c"), 30).with_justification("bell\u{7}")).await).await,
            ("control_character", 400),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    g.approve(req.id, &lee(), None).await.unwrap();
    assert_eq!(
        code_of(g.approve(req.id, &fixtures::lin(), None).await).await,
        ("request_closed", 409),
        "a decided request"
    );
}

#[tokio::test]
async fn a_store_that_fails_or_hangs_says_so_and_a_problem_hides_its_causes() {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    let g = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(fixtures::security_alerts())
        .store(store.clone())
        .verb_deadline(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    store.fail("commit");
    let failed = g.request(ask(restart("orders"), 30)).await.unwrap_err();
    assert_eq!(
        (failed.code(), failed.category()),
        ("store_failed", ErrorCategory::Internal)
    );
    let problem = Problem::from_error(&failed);
    assert_eq!(problem.status, 500);
    assert_eq!(
        problem.detail,
        failed.to_string(),
        "the message only, not the backend's causes"
    );
    assert!(ErrorChain(&failed).to_string().len() > problem.detail.len());

    store.heal();
    store.hang("commit");
    let hung = g.request(ask(restart("billing"), 30)).await.unwrap_err();
    assert_eq!((hung.code(), hung.category().http_status()), ("store_timeout", 504));

    let unavailable = Error::Store(StoreError::Unavailable("no writable server".into()));
    assert_eq!(
        (unavailable.code(), unavailable.category().http_status()),
        ("store_unavailable", 503)
    );
}

/// The shape of a problem document is part of the API: pinned here.
#[tokio::test]
async fn a_problem_document_has_the_rfc_9457_members_and_jitgate_s_own() {
    let (g, _clock, _n) = fixtures::gate(Arc::new(MemoryStore::new()));
    let RequestOutcome::Pending(req) = g.request(ask(restart("orders"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let e = g.approve(req.id, &sam(), None).await.unwrap_err();
    let problem = Problem::from_error(&e).with_instance(format!("/requests/{}", req.id));
    let json = serde_json::to_value(&problem).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "type": "urn:jitgate:error:self_approval",
            "title": "Forbidden",
            "status": 403,
            "detail": e.to_string(),
            "code": "self_approval",
            "category": "forbidden",
            "instance": format!("/requests/{}", req.id),
        })
    );
    assert!(
        problem.detail.contains("self-approval is not allowed"),
        "{}",
        problem.detail
    );
    let back: Problem = serde_json::from_value(json).unwrap();
    assert_eq!(back, problem);
    assert_eq!(Problem::CONTENT_TYPE, "application/problem+json");
}

#[test]
fn every_category_maps_to_its_status() {
    use ErrorCategory::*;
    let statuses: Vec<(ErrorCategory, u16, bool)> = [
        InvalidInput,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        LimitReached,
        Internal,
        Unsupported,
        Unavailable,
        Timeout,
    ]
    .into_iter()
    .map(|c| (c, c.http_status(), c.is_client_error()))
    .collect();
    assert_eq!(
        statuses,
        vec![
            (InvalidInput, 400, true),
            (Unauthenticated, 401, true),
            (Forbidden, 403, true),
            (NotFound, 404, true),
            (Conflict, 409, true),
            (LimitReached, 429, true),
            (Internal, 500, false),
            (Unsupported, 501, false),
            (Unavailable, 503, false),
            (Timeout, 504, false),
        ]
    );
    assert_eq!(serde_json::to_string(&LimitReached).unwrap(), "\"limit_reached\"");
}
