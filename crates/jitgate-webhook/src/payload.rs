//! What is POSTed: jitgate's JSON, or a Slack incoming-webhook message.

use jitgate_core::{Delivery, EventKind};
use serde_json::Value;

use crate::slack::{escape, review_buttons, Block, Message, TextBuilder};

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
        EventKind::BreakGlassUsed { .. } => format!("\u{1F6A8} BREAK-GLASS: {who} took {what} without approval"),
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
    serde_json::to_value(slack_message(d)).unwrap_or(Value::Null)
}

/// The Slack message for `d`: every piece of text that is not jitgate's own is escaped
/// ([`crate::slack::escape`]).
pub fn slack_message(d: &Delivery) -> Message {
    let e = &d.event;
    let line = |label: &'static str, value: &str| TextBuilder::default().label(label).space().value(value);
    let mut lines = vec![TextBuilder::default().value(&summary(d))];
    let mut add = |t: TextBuilder| lines.push(t);
    match &e.kind {
        EventKind::ApprovalNeeded {
            reviewers,
            flow,
            justification,
        } => {
            add(line("Reason:", justification.as_deref().unwrap_or("(none given)")));
            add(line("Flow:", flow));
            add(line("Who may approve:", &names(reviewers)));
        }
        EventKind::BreakGlassUsed { justification } => {
            add(line("Reason:", justification.as_deref().unwrap_or("(none given)")));
        }
        EventKind::RequestResolved { by: Some(by), .. } | EventKind::BreakGlassAcknowledged { by } => {
            add(line("Decided by:", &by.to_string()));
        }
        EventKind::Denied { by, comment } => {
            add(line("Decided by:", &by.to_string()));
            if let Some(c) = comment {
                add(line("Comment:", c));
            }
        }
        EventKind::Revoked { by, reason } => {
            add(line("Decided by:", &by.to_string()));
            if let Some(r) = reason {
                add(line("Comment:", r));
            }
        }
        _ => {}
    }
    let main = lines
        .into_iter()
        .reduce(|text, next| TextBuilder::join(text.newline(), next))
        .unwrap_or_default();
    let field = |label: &'static str, value: &str| TextBuilder::default().label(label).newline().value(value).build();
    let mut fields = vec![field("Request", &e.request_id.to_string()), field("For", &names(&d.to))];
    if let Some(g) = e.grant_id {
        fields.push(field("Grant", &g.to_string()));
    }
    let mut blocks = vec![
        Block::Section {
            text: main.build(),
            fields,
        },
        Block::Context {
            elements: vec![TextBuilder::default()
                .value(&format!("jitgate event {} · attempt {}", e.id, d.attempt))
                .build()],
        },
    ];
    if matches!(e.kind, EventKind::ApprovalNeeded { .. }) {
        blocks.push(review_buttons(&e.request_id.to_string()));
    }
    Message {
        text: escape(&summary(d)),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use jitgate_core::{Delivery, EntityRef, Event, EventKind, RequestState, Routing, Scope};
    use proptest::prelude::*;

    use super::*;
    use crate::slack::{is_inert, LABELS};

    /// Every kind of event, with `s` in every piece of text a user can choose.
    fn hostile_events(s: &str) -> Vec<Delivery> {
        let who = EntityRef::new("User", s);
        let team = EntityRef::new(s, s);
        let kinds = vec![
            EventKind::ApprovalNeeded {
                reviewers: vec![team.clone()],
                flow: s.to_owned(),
                justification: Some(s.to_owned()),
            },
            EventKind::Approved,
            EventKind::Denied {
                by: who.clone(),
                comment: Some(s.to_owned()),
            },
            EventKind::Cancelled,
            EventKind::RequestExpired,
            EventKind::GrantActive,
            EventKind::GrantExpired,
            EventKind::Revoked {
                by: who.clone(),
                reason: Some(s.to_owned()),
            },
            EventKind::GrantExhausted,
            EventKind::BreakGlassUsed {
                justification: Some(s.to_owned()),
            },
            EventKind::BreakGlassAcknowledged { by: who.clone() },
            EventKind::RequestResolved {
                state: RequestState::Approved,
                by: Some(who.clone()),
                reviewers: vec![team.clone()],
            },
            EventKind::GrantExpiring {
                expires_at: chrono::DateTime::default(),
            },
        ];
        kinds
            .into_iter()
            .map(|kind| {
                let event: Event = serde_json::from_value(serde_json::json!({
                    "id": s, "at": "2026-11-27T09:00:00Z",
                    "principal": who, "scope": Scope::new(EntityRef::new("Action", s), EntityRef::new(s, s)),
                    "request_id": jitgate_core::RequestId::new_random(), "grant_id": jitgate_core::GrantId::new_random(),
                }))
                .and_then(|mut v: Value| {
                    let kind = serde_json::to_value(&kind)?;
                    v.as_object_mut().expect("an object").extend(kind.as_object().expect("tagged").clone());
                    serde_json::from_value(v)
                })
                .expect("a valid event");
                Delivery::first(event, &Routing::default().with_security(team.clone()))
            })
            .collect()
    }

    /// Every text Slack would parse: the notification text and each text object.
    fn texts(message: &Value) -> Vec<String> {
        let mut out = vec![message["text"].as_str().unwrap_or_default().to_owned()];
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if o.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                        out.push(o["text"].as_str().unwrap_or_default().to_owned());
                    }
                    o.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&message["blocks"], &mut out);
        out
    }

    proptest! {
        /// No mention, link or formatting from user-supplied text reaches Slack: once
        /// jitgate's own bold labels are removed, every text is inert.
        #[test]
        fn no_user_text_escapes_into_slack_markup(
            s in prop_oneof![
                any::<String>(),
                "[<>&*_~`!@#|:/. a-zA-Z]{1,30}",
                Just("<!channel> <https://evil.example/approve|Approve in one click> *now* `x`".to_owned()),
            ]
        ) {
            for d in hostile_events(&s) {
                let message = body(&d, PayloadFormat::Slack);
                for text in texts(&message) {
                    let mut bare = text.clone();
                    for label in LABELS {
                        bare = bare.replace(&format!("*{label}*"), "");
                    }
                    prop_assert!(is_inert(&bare), "{text:?} from {s:?}");
                }
            }
        }
    }

    #[test]
    fn the_approval_message_says_who_what_why_flow_and_who_may_approve() {
        let d = &hostile_events("sam")[0];
        let message = slack_message(d);
        let section = serde_json::to_value(&message.blocks[0]).unwrap();
        let text = section["text"]["text"].as_str().unwrap();
        assert!(
            text.starts_with(r#"User::"sam" asks to Action::"sam" on sam::"sam": approval needed"#),
            "{text}"
        );
        for line in ["*Reason:* sam", "*Flow:* sam", "*Who may approve:* sam::\"sam\""] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let buttons = serde_json::to_value(message.blocks.last().unwrap()).unwrap();
        let id = d.event.request_id.to_string();
        assert_eq!(
            buttons,
            serde_json::json!({
                "type": "actions",
                "block_id": "jitgate_review",
                "elements": [
                    { "type": "button", "text": { "type": "plain_text", "text": "Approve", "emoji": false },
                      "action_id": "jitgate_approve", "value": id, "style": "primary" },
                    { "type": "button", "text": { "type": "plain_text", "text": "Deny", "emoji": false },
                      "action_id": "jitgate_deny", "value": id, "style": "danger" },
                ]
            }),
            "Approve and Deny, each naming the request"
        );
        let resolved = slack_message(&hostile_events("lee")[11]);
        assert!(
            !resolved.blocks.iter().any(|b| matches!(b, Block::Actions { .. })),
            "buttons only where a review is asked for"
        );
        let text = serde_json::to_value(&resolved.blocks[0]).unwrap()["text"]["text"].clone();
        assert!(text.as_str().unwrap().contains("*Decided by:* User::\"lee\""), "{text}");
    }
}
