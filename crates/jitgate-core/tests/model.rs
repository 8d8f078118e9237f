//! Model-based test: random sequences of request / approve / deny / cancel / revoke /
//! advance-clock / sweep / authorize are run against the engine and against a small
//! reference model, and every answer must agree. Invariants checked after every step:
//! no grant without every requirement met by distinct eligible approvers; no `Allow`
//! through a grant after its expiry or revocation; a closed request never changes; the
//! audit chain verifies.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jitgate_core::TimeError;
use jitgate_core::TransitionError;
use jitgate_core::*;
use jitgate_testkit::fixtures::{self, user};
use proptest::prelude::*;

/// What the model knows of each scope the test uses: the fixture policy's flows.
struct ScopeSpec {
    action: Action,
    requirements: Vec<&'static [&'static str]>,
    max_minutes: i64,
    ttl_minutes: i64,
    break_glass_minutes: Option<i64>,
    uses: Option<u32>,
}

fn scopes() -> Vec<ScopeSpec> {
    const LEADS: &[&str] = &["lee", "lin", "ada"];
    const SECURITY: &[&str] = &["sec", "ada"];
    vec![
        ScopeSpec {
            action: fixtures::restart("db0"),
            requirements: vec![LEADS],
            max_minutes: 60,
            ttl_minutes: 30,
            break_glass_minutes: Some(15),
            uses: None,
        },
        ScopeSpec {
            action: fixtures::restart("db1"),
            requirements: vec![LEADS],
            max_minutes: 60,
            ttl_minutes: 30,
            break_glass_minutes: Some(15),
            uses: None,
        },
        ScopeSpec {
            action: fixtures::migrate("db0"),
            requirements: vec![LEADS, SECURITY],
            max_minutes: 120,
            ttl_minutes: 60,
            break_glass_minutes: None,
            uses: None,
        },
        ScopeSpec {
            action: fixtures::read_customer("c0"),
            requirements: vec![LEADS],
            max_minutes: 60,
            ttl_minutes: 60,
            break_glass_minutes: None,
            uses: Some(2),
        },
    ]
}

const REQUESTERS: &[&str] = &["sam", "lin"];
const PEOPLE: &[&str] = &["sam", "lee", "lin", "ada", "sec", "eve"];

#[derive(Clone, Debug)]
enum Op {
    Request {
        who: usize,
        scope: usize,
        minutes: i64,
        break_glass: bool,
    },
    Approve {
        req: usize,
        who: usize,
    },
    Deny {
        req: usize,
        who: usize,
    },
    Cancel {
        req: usize,
        who: usize,
    },
    Revoke {
        grant: usize,
        who: usize,
    },
    Advance {
        minutes: i64,
    },
    Sweep,
    Authorize {
        who: usize,
        scope: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..REQUESTERS.len(), 0..4usize, 1..90i64, prop::bool::weighted(0.15))
            .prop_map(|(who, scope, minutes, break_glass)| Op::Request { who, scope, minutes, break_glass }),
        4 => (0..16usize, 0..PEOPLE.len()).prop_map(|(req, who)| Op::Approve { req, who }),
        1 => (0..16usize, 0..PEOPLE.len()).prop_map(|(req, who)| Op::Deny { req, who }),
        1 => (0..16usize, 0..PEOPLE.len()).prop_map(|(req, who)| Op::Cancel { req, who }),
        1 => (0..16usize, 0..PEOPLE.len()).prop_map(|(grant, who)| Op::Revoke { grant, who }),
        2 => (0..40i64).prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::Sweep),
        4 => (0..REQUESTERS.len(), 0..4usize).prop_map(|(who, scope)| Op::Authorize { who, scope }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum MState {
    Pending,
    Approved,
    Denied,
    Cancelled,
    Expired,
}

struct MReq {
    id: RequestId,
    who: &'static str,
    scope: usize,
    minutes: i64,
    deadline: DateTime<Utc>,
    state: MState,
    reviewers: Vec<&'static str>,
    approvals: Vec<Vec<usize>>,
}

struct MGrant {
    id: GrantId,
    who: &'static str,
    scope: usize,
    not_before: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked: bool,
    uses_left: Option<u32>,
}

impl MGrant {
    fn allows(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.not_before <= now && now < self.expires_at && self.uses_left != Some(0)
    }
}

/// Brute force: can approvers be assigned injectively to requirement slots?
fn reference_quorum(requirements: &[usize], approvals: &[Vec<usize>]) -> bool {
    fn go(slots: &[usize], approvals: &[Vec<usize>], used: &mut Vec<bool>) -> bool {
        let Some((&slot, rest)) = slots.split_first() else {
            return true;
        };
        for (i, a) in approvals.iter().enumerate() {
            if !used[i] && a.contains(&slot) {
                used[i] = true;
                if go(rest, approvals, used) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    let slots: Vec<usize> = requirements.to_vec();
    go(&slots, approvals, &mut vec![false; approvals.len()])
}

fn eligible_for(spec: &ScopeSpec, who: &str) -> Vec<usize> {
    spec.requirements
        .iter()
        .enumerate()
        .filter(|(_, set)| set.contains(&who))
        .map(|(i, _)| i)
        .collect()
}

fn is_transition<T: std::fmt::Debug>(r: &Result<T, Error>, pred: impl Fn(&TransitionError) -> bool) -> bool {
    matches!(r, Err(Error::Transition(t)) if pred(t))
}

async fn run(ops: Vec<Op>) {
    let specs = scopes();
    let store = Arc::new(MemoryStore::new());
    // The model is the state machine's: the input limits on one principal (pending requests,
    // unacknowledged break-glass; tested on their own) are lifted here.
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store.clone())
        .clock(clock.clone())
        .limits(
            Limits::default()
                .with_unacknowledged_break_glass(usize::MAX)
                .with_pending_per_principal(usize::MAX),
        )
        .build()
        .expect("gate");
    let mut reqs: Vec<MReq> = Vec::new();
    let mut grants: Vec<MGrant> = Vec::new();
    let mut closed: HashMap<RequestId, AccessRequest> = HashMap::new();

    for op in ops {
        let now = clock.now();
        match op {
            Op::Request {
                who,
                scope,
                minutes,
                break_glass,
            } => {
                let who = REQUESTERS[who];
                let spec = &specs[scope];
                let mut ask = NewRequest::new(user(who), spec.action.clone(), Duration::minutes(minutes))
                    .with_justification("model");
                ask.break_glass = break_glass;
                let got = gate.request(ask).await;
                let covered = grants
                    .iter()
                    .find(|g| g.who == who && g.scope == scope && g.allows(now));
                let open = reqs
                    .iter_mut()
                    .find(|r| r.who == who && r.scope == scope && r.state == MState::Pending);
                if let Some(g) = covered {
                    assert!(
                        matches!(&got, Ok(RequestOutcome::AlreadyCovered(x)) if x.id == g.id),
                        "{got:?}"
                    );
                    continue;
                }
                if let Some(r) = open {
                    if now < r.deadline {
                        assert!(
                            matches!(&got, Ok(RequestOutcome::AlreadyPending(x)) if x.id == r.id),
                            "{got:?}"
                        );
                        continue;
                    }
                    r.state = MState::Expired;
                }
                if break_glass && spec.break_glass_minutes.is_none() {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::BreakGlassNotAllowed { .. })),
                        "{got:?}"
                    );
                } else if !break_glass && minutes > spec.max_minutes {
                    assert!(
                        is_transition(&got, |t| matches!(
                            t,
                            TransitionError::Time(TimeError::DurationAboveMaximum { .. })
                        )),
                        "{got:?}"
                    );
                } else if break_glass {
                    let Ok(RequestOutcome::Granted { request, grant }) = got else {
                        panic!("break-glass: {got:?}")
                    };
                    let len = minutes.min(spec.break_glass_minutes.unwrap_or(0));
                    assert_eq!(grant.window.expires_at(), now + Duration::minutes(len));
                    reqs.push(MReq {
                        id: request.id,
                        who,
                        scope,
                        minutes,
                        deadline: request.deadline,
                        state: MState::Approved,
                        reviewers: vec![],
                        approvals: vec![],
                    });
                    grants.push(MGrant {
                        id: grant.id,
                        who,
                        scope,
                        not_before: now,
                        expires_at: now + Duration::minutes(len),
                        revoked: false,
                        uses_left: spec.uses,
                    });
                } else {
                    let Ok(RequestOutcome::Pending(request)) = got else {
                        panic!("pending: {got:?}")
                    };
                    assert_eq!(request.deadline, now + Duration::minutes(spec.ttl_minutes));
                    reqs.push(MReq {
                        id: request.id,
                        who,
                        scope,
                        minutes,
                        deadline: request.deadline,
                        state: MState::Pending,
                        reviewers: vec![],
                        approvals: vec![],
                    });
                }
            }
            Op::Approve { req, who } | Op::Deny { req, who } if reqs.is_empty() => {
                let _ = (req, who);
            }
            Op::Approve { req, who } | Op::Deny { req, who } => {
                let approve = matches!(op, Op::Approve { .. });
                let n = req % reqs.len();
                let reviewer = PEOPLE[who];
                let r = &mut reqs[n];
                let spec = &specs[r.scope];
                let got = if approve {
                    gate.approve(r.id, &user(reviewer), None).await
                } else {
                    gate.deny(r.id, &user(reviewer), None).await
                };
                let elig = eligible_for(spec, reviewer);
                if r.state != MState::Pending {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::RequestClosed { .. })),
                        "{got:?}"
                    );
                } else if now >= r.deadline {
                    assert!(
                        is_transition(&got, |t| matches!(
                            t,
                            TransitionError::Time(TimeError::RequestExpired { .. })
                        )),
                        "{got:?}"
                    );
                } else if reviewer == r.who {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::SelfApproval { .. })),
                        "{got:?}"
                    );
                } else if r.reviewers.contains(&reviewer) {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::DuplicateReview { .. })),
                        "{got:?}"
                    );
                } else if elig.is_empty() {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::NotEligibleReviewer { .. })),
                        "{got:?}"
                    );
                } else if !approve {
                    r.state = MState::Denied;
                    assert_eq!(got.expect("deny").request.state, RequestState::Denied);
                } else {
                    r.reviewers.push(reviewer);
                    r.approvals.push(elig);
                    let slots: Vec<usize> = (0..spec.requirements.len()).collect();
                    let out = got.expect("approve");
                    if reference_quorum(&slots, &r.approvals) {
                        r.state = MState::Approved;
                        let g = out.grant.expect("quorum met: a grant");
                        let len = r.minutes.min(spec.max_minutes);
                        assert_eq!(
                            (g.window.not_before(), g.window.expires_at()),
                            (now, now + Duration::minutes(len))
                        );
                        grants.push(MGrant {
                            id: g.id,
                            who: r.who,
                            scope: r.scope,
                            not_before: now,
                            expires_at: now + Duration::minutes(len),
                            revoked: false,
                            uses_left: spec.uses,
                        });
                    } else {
                        assert!(out.grant.is_none(), "a grant before every requirement was met");
                    }
                }
            }
            Op::Cancel { req, who } => {
                if reqs.is_empty() {
                    continue;
                }
                let n = req % reqs.len();
                let r = &mut reqs[n];
                let actor = PEOPLE[who];
                let got = gate.cancel(r.id, &user(actor)).await;
                if actor != r.who {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::NotRequester { .. })),
                        "{got:?}"
                    );
                } else if r.state != MState::Pending {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::RequestClosed { .. })),
                        "{got:?}"
                    );
                } else {
                    r.state = MState::Cancelled;
                    assert_eq!(got.expect("cancel").state, RequestState::Cancelled);
                }
            }
            Op::Revoke { grant, who } => {
                if grants.is_empty() {
                    continue;
                }
                let n = grant % grants.len();
                let g = &mut grants[n];
                let actor = PEOPLE[who];
                let spec = &specs[g.scope];
                let got = gate.revoke(g.id, &user(actor), Some("model")).await;
                let may = actor == g.who || spec.requirements.iter().any(|set| set.contains(&actor));
                let ended = g.revoked || now >= g.expires_at || g.uses_left == Some(0);
                if !may {
                    assert!(matches!(got, Err(Error::NotPermittedToRevoke { .. })), "{got:?}");
                } else if ended {
                    assert!(
                        is_transition(&got, |t| matches!(t, TransitionError::GrantNotActive { .. })),
                        "{got:?}"
                    );
                } else {
                    g.revoked = true;
                    assert_eq!(got.expect("revoke").state, GrantState::Revoked);
                }
            }
            Op::Advance { minutes } => clock.advance(Duration::minutes(minutes)),
            Op::Sweep => {
                let report = gate.sweep().await.expect("sweep");
                let mut expired = 0;
                for r in reqs
                    .iter_mut()
                    .filter(|r| r.state == MState::Pending && r.deadline <= now)
                {
                    r.state = MState::Expired;
                    expired += 1;
                }
                assert_eq!(report.requests_expired, expired);
            }
            Op::Authorize { who, scope } => {
                let who = REQUESTERS[who];
                let got = gate.authorize(&specs[scope].action, &user(who)).await;
                let usable: Vec<&mut MGrant> = grants
                    .iter_mut()
                    .filter(|g| g.who == who && g.scope == scope && g.allows(now))
                    .collect();
                match got {
                    Decision::Allow {
                        basis: Basis::Grant(id),
                        ..
                    } => {
                        let g = usable
                            .into_iter()
                            .find(|g| g.id == id)
                            .expect("Allow through a grant the model says cannot allow");
                        if let Some(n) = g.uses_left.as_mut() {
                            *n -= 1;
                        }
                    }
                    Decision::NeedsApproval { .. } => assert!(usable.is_empty(), "a usable grant was ignored"),
                    other => panic!("unexpected decision {other:?}"),
                }
            }
        }

        // Invariants.
        for r in &reqs {
            let stored = store.read_request(r.id).await.unwrap().expect("stored");
            if let Some(before) = closed.get(&r.id) {
                assert_eq!(&stored, before, "a closed request changed");
            } else if stored.state.is_closed() {
                closed.insert(r.id, stored.clone());
            }
            if let Some(gid) = stored.grant_id {
                let grant = store.read_grant(gid).await.unwrap().expect("grant stored");
                if !grant.break_glass {
                    let approvals: Vec<Vec<usize>> = stored
                        .reviews
                        .iter()
                        .filter(|v| v.verdict == Verdict::Approve)
                        .map(|v| v.eligible_for.clone())
                        .collect();
                    let mut names: Vec<_> = stored.reviews.iter().map(|v| v.reviewer.clone()).collect();
                    names.dedup();
                    assert_eq!(names.len(), stored.reviews.len(), "distinct approvers");
                    assert!(!names.contains(&stored.principal), "the requester approved");
                    let slots: Vec<usize> = (0..stored.flow.requirements.len()).collect();
                    assert!(
                        reference_quorum(&slots, &approvals),
                        "a grant without every requirement met"
                    );
                }
            }
        }
        gate.verify_audit().await.expect("audit chain verifies");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn the_engine_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops));
    }
}
