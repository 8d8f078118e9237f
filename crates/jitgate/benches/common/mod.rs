//! What the `authorize` benches share: the policy and the action.

use chrono::Duration;
use jitgate::{Action, EntityRef, Flow, Pattern, RuleTable};

/// A standing rule (SREs read logs), an auto-approved eligibility rule (any user may restart a
/// database) and a forbid (nobody drops one).
pub fn policy() -> RuleTable {
    let e = EntityRef::new;
    RuleTable::builder()
        .member(e("User", "holder"), e("Team", "sre"))
        .standing(
            "read-logs",
            Pattern::In(e("Team", "sre")),
            Pattern::Is(e("Action", "read_logs")),
            Pattern::Any,
        )
        .eligible(
            "restart",
            Pattern::Type("User".into()),
            Pattern::Is(e("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(8)).with_auto_approve(true),
        )
        .forbid(
            "no-drop",
            Pattern::Any,
            Pattern::Is(e("Action", "db_drop")),
            Pattern::Any,
        )
        .build()
        .expect("valid policy")
}

/// Restarting database `db`.
pub fn restart(db: &str) -> Action {
    Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", db))
}
