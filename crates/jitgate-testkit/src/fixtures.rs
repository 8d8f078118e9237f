//! Ready-made principals, actions, a policy and gates for tests and examples.

use std::sync::Arc;

use chrono::Duration;
use jitgate_core::{
    Action, Clock, Destination, EntityRef, Flow, Gate, ManualClock, MemoryNotifier, NewRequest, NullNotifier, Pattern,
    Policy, Requirement, RuleTable, Store,
};

/// `User::"<id>"`.
pub fn user(id: &str) -> EntityRef {
    EntityRef::new("User", id)
}

/// `Team::"<id>"`.
pub fn team(id: &str) -> EntityRef {
    EntityRef::new("Team", id)
}

/// The requester: `User::"sam"`, in `Team::"sre"`.
pub fn sam() -> EntityRef {
    user("sam")
}

/// A lead: `User::"lee"`, in `Team::"sre-leads"`.
pub fn lee() -> EntityRef {
    user("lee")
}

/// Another lead: `User::"lin"`, in `Team::"sre-leads"`.
pub fn lin() -> EntityRef {
    user("lin")
}

/// In security only: `User::"sec"`.
pub fn sec() -> EntityRef {
    user("sec")
}

/// Both a lead and in security: `User::"ada"`.
pub fn ada() -> EntityRef {
    user("ada")
}

/// Outside every team: `User::"eve"`.
pub fn eve() -> EntityRef {
    user("eve")
}

/// `db_restart` on `Database::"<db>"`: one lead approves, at most 1 h, TTL 30 min.
pub fn restart(db: &str) -> Action {
    Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", db))
}

/// `db_migrate` on `Database::"<db>"`: one lead AND one from security, reason required.
pub fn migrate(db: &str) -> Action {
    Action::new(EntityRef::new("Action", "db_migrate"), EntityRef::new("Database", db))
}

/// `read_customer` on `Customer::"<id>"`: a two-use grant bound to the exact parameters.
pub fn read_customer(id: &str) -> Action {
    Action::new(
        EntityRef::new("Action", "read_customer"),
        EntityRef::new("Customer", id),
    )
}

/// `db_restart` on `StagingDatabase::"orders"`: auto-approved.
pub fn restart_staging() -> Action {
    Action::new(
        EntityRef::new("Action", "db_restart"),
        EntityRef::new("StagingDatabase", "orders"),
    )
}

/// `read_logs` on `Service::"orders"`: standing permission for the SRE team.
pub fn read_logs() -> Action {
    Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    )
}

/// `db_drop` on any database: forbidden for everyone.
pub fn drop_db(db: &str) -> Action {
    Action::new(EntityRef::new("Action", "db_drop"), EntityRef::new("Database", db))
}

/// A request by sam for `action` lasting `minutes`, with a justification.
pub fn ask(action: Action, minutes: i64) -> NewRequest {
    NewRequest::new(sam(), action, Duration::minutes(minutes)).with_justification("INC-1: on call")
}

/// The test policy:
/// - `read-logs`: the SRE team may read logs (standing);
/// - `prod-db-restart`: SREs may ask to restart databases, one lead approves, at most 1 h,
///   TTL 30 min, break-glass up to 15 min;
/// - `staging-restart`: restarting a `StagingDatabase` is auto-approved;
/// - `prod-db-migrate`: SREs may ask to migrate, one lead AND one from security, reason required;
/// - `customer-read`: SREs may ask to read a customer, two uses bound to the parameters;
/// - `no-drop`: nobody drops a database; `no-eve`: eve may do nothing.
pub fn policy() -> RuleTable {
    let act = |a: &str| Pattern::Is(EntityRef::new("Action", a));
    RuleTable::builder()
        .member(sam(), team("sre"))
        .member(lee(), team("sre-leads"))
        .member(lin(), team("sre-leads"))
        .member(team("sre-leads"), team("sre"))
        .member(sec(), team("security"))
        .member(ada(), team("sre-leads"))
        .member(ada(), team("security"))
        .standing("read-logs", Pattern::In(team("sre")), act("read_logs"), Pattern::Any)
        .eligible(
            "prod-db-restart",
            Pattern::In(team("sre")),
            act("db_restart"),
            Pattern::Type("Database".into()),
            Flow::new(Duration::hours(1))
                .with_requirement(Requirement::new(team("sre-leads"), 1))
                .with_request_ttl(Duration::minutes(30))
                .with_break_glass(Duration::minutes(15)),
        )
        .eligible(
            "staging-restart",
            Pattern::In(team("sre")),
            act("db_restart"),
            Pattern::Type("StagingDatabase".into()),
            Flow::new(Duration::hours(8)).with_auto_approve(true),
        )
        .eligible(
            "prod-db-migrate",
            Pattern::In(team("sre")),
            act("db_migrate"),
            Pattern::Any,
            Flow::new(Duration::hours(2))
                .with_requirement(Requirement::new(team("sre-leads"), 1))
                .with_requirement(Requirement::new(team("security"), 1))
                .with_reason_required(true),
        )
        .eligible(
            "customer-read",
            Pattern::In(team("sre")),
            act("read_customer"),
            Pattern::Any,
            Flow::new(Duration::hours(1))
                .with_requirement(Requirement::new(team("sre-leads"), 1))
                .with_max_uses(2, true),
        )
        .forbid("no-drop", Pattern::Any, act("db_drop"), Pattern::Any)
        .forbid("no-eve", Pattern::Is(eve()), Pattern::Any, Pattern::Any)
        .auditor(Pattern::In(team("security")))
        .build()
        .expect("the fixture policy is valid")
}

/// Where the fixture policy's break-glass alerts go in tests (a gate over a policy with
/// break-glass needs a destination for them): a destination named `security-alerts` taking
/// `break_glass_used` and `break_glass_acknowledged`, through a [`NullNotifier`].
pub fn security_alerts() -> Destination {
    Destination::new("security-alerts", Arc::new(NullNotifier)).kinds(["break_glass_used", "break_glass_acknowledged"])
}

/// A gate over `store` with the fixture [`policy`], a fresh [`ManualClock`] and a
/// [`MemoryNotifier`]; returns all three handles.
pub fn gate(store: Arc<dyn Store>) -> (Gate, Arc<ManualClock>, Arc<MemoryNotifier>) {
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = gate_with(store, clock.clone(), notifier.clone());
    (gate, clock, notifier)
}

/// A gate over `store` with the fixture [`policy`] and the given clock and notifier.
pub fn gate_with(store: Arc<dyn Store>, clock: Arc<dyn Clock>, notifier: Arc<MemoryNotifier>) -> Gate {
    gate_on(Arc::new(policy()), store, clock, notifier)
}

/// A gate over `store` with another policy (e.g. after someone left a team), the given clock
/// and notifier.
pub fn gate_on(
    policy: Arc<dyn Policy>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    notifier: Arc<MemoryNotifier>,
) -> Gate {
    Gate::builder()
        .policy(policy)
        .store(store)
        .clock(clock)
        .notifier(notifier)
        .destination(security_alerts())
        .build()
        .expect("policy and store are set")
}
