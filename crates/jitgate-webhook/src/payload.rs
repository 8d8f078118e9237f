//! What is POSTed: jitgate's JSON, or a Slack incoming-webhook message.

use jitgate_core::{Delivery, EventKind};
use serde_json::{json, Value};

/// The body format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The [`Delivery`] as JSON: `{"event": {"id", "type", "at", "principal", "scope", ...}, "to", "except", "attempt"}`.
    #[default]
    Json,
    /// A Slack incoming-webhook message: `text` plus `blocks`.
    Slack,
}

fn names(v: &[jitgate_core::EntityRef]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// One line saying what happened.
pub fn summary(d: &Delivery) -> String {
    let e = &d.event;
    let who = &e.principal;
    let what = &e.scope;
    match &e.kind {
        EventKind::ApprovalNeeded { .. } => format!("{who} asks to {what}: approval needed"),
        EventKind::Approved => format!("Approved: {who} may {what}"),
        EventKind::Denied { by, .. } => format!("Denied by {by}: {who} may not {what}"),
        EventKind::Cancelled => format!("{who} cancelled the request to {what}"),
        EventKind::RequestExpired => format!("The request of {who} to {what} expired undecided"),
        EventKind::RequestResolved { state, by, .. } => match by {
            Some(by) => format!("The request of {who} to {what} is {state} (by {by}); no action needed"),
            None => format!("The request of {who} to {what} is {state}; no action needed"),
        },
        EventKind::GrantActive => format!("Grant active: {who} may now {what}"),
        EventKind::GrantExpiring { expires_at } => format!("Grant ending at {expires_at}: {who} on {what}"),
        EventKind::GrantExpired => format!("Grant expired: {who} on {what}"),
        EventKind::Revoked { by, .. } => format!("Grant revoked by {by}: {who} on {what}"),
        EventKind::GrantExhausted => format!("Grant used up: {who} on {what}"),
        EventKind::BreakGlassUsed { .. } => format!(":rotating_light: BREAK-GLASS: {who} took {what} without approval"),
        EventKind::BreakGlassAcknowledged { by } => format!("Break-glass use of {who} on {what} reviewed by {by}"),
        other => format!("{other:?}: {who} on {what}"),
    }
}

/// The body for `d` in `format`.
pub fn body(d: &Delivery, format: PayloadFormat) -> Value {
    match format {
        PayloadFormat::Json => serde_json::to_value(d).unwrap_or(Value::Null),
        PayloadFormat::Slack => slack(d),
    }
}

fn slack(d: &Delivery) -> Value {
    let e = &d.event;
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Request*\n`{}`", e.request_id)}),
        json!({"type": "mrkdwn", "text": format!("*For*\n{}", names(&d.to))}),
    ];
    let mut lines = vec![format!("*{}*", summary(d))];
    if let EventKind::ApprovalNeeded {
        reviewers,
        flow,
        justification,
    } = &e.kind
    {
        lines.push(format!(
            "*Reason:* {}",
            justification.as_deref().unwrap_or("(none given)")
        ));
        lines.push(format!("*Flow:* {flow}"));
        lines.push(format!("*Who may approve:* {}", names(reviewers)));
    }
    if let EventKind::BreakGlassUsed { justification } = &e.kind {
        lines.push(format!(
            "*Reason:* {}",
            justification.as_deref().unwrap_or("(none given)")
        ));
    }
    if let Some(g) = e.grant_id {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Grant*\n`{g}`")}));
    }
    json!({
        "text": summary(d),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("jitgate event `{}` · attempt {}", e.id, d.attempt)}]}
        ]
    })
}
