//! Slack messages from types: the few Block Kit blocks jitgate sends, and the escaping that
//! keeps user-supplied text (justifications, comments, entity ids, context) from becoming a
//! mention, a link or formatting.
//!
//! Every text object is `mrkdwn` with `verbatim: true` (Slack turns no bare URL or channel
//! name into a link). jitgate's own labels are bold; every other piece of text goes through
//! [`escape`], which HTML-escapes `&`, `<` and `>` (so `<!channel>`, `<@U123>` and
//! `<https://…|Approve>` are shown, not parsed) and replaces the mrkdwn formatting characters
//! `*`, `_`, `~` and `` ` `` with look-alikes that Slack does not interpret.

use serde::Serialize;

/// A Slack incoming-webhook message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The notification text (shown where blocks are not), escaped like the blocks.
    pub text: String,
    /// The blocks.
    pub blocks: Vec<Block>,
}

/// The Block Kit blocks jitgate uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A section: a text, and up to 10 fields shown in two columns.
    Section {
        /// The main text.
        text: Text,
        /// Short label/value pairs.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text>,
    },
    /// Small print under the message.
    Context {
        /// Its texts.
        elements: Vec<Text>,
    },
    /// Buttons: Approve and Deny on an approval message ([`review_buttons`]).
    Actions {
        /// [`REVIEW_BLOCK`]: how the interaction endpoint finds (and removes) it.
        block_id: &'static str,
        /// The buttons.
        elements: Vec<Button>,
    },
}

/// The `block_id` of the Approve/Deny buttons.
pub const REVIEW_BLOCK: &str = "jitgate_review";
/// The `action_id` of the Approve button; its `value` is the request id (`req_…`).
pub const APPROVE_ACTION: &str = "jitgate_approve";
/// The `action_id` of the Deny button; its `value` is the request id (`req_…`).
pub const DENY_ACTION: &str = "jitgate_deny";

/// A Block Kit button.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    #[serde(rename = "type")]
    kind: &'static str,
    text: PlainText,
    action_id: &'static str,
    value: String,
    style: &'static str,
}

/// A `plain_text` text object (a button's label: jitgate's own words only).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct PlainText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'static str,
    emoji: bool,
}

/// The Approve and Deny buttons for request `request_id` (its display form, `req_…`).
/// Slack sends a click to the app's interactivity URL, signed; jitgate-axum's `slack` module
/// verifies it and reviews as the Slack user's principal.
pub fn review_buttons(request_id: &str) -> Block {
    let button = |label: &'static str, action_id: &'static str, style: &'static str| Button {
        kind: "button",
        text: PlainText {
            kind: "plain_text",
            text: label,
            emoji: false,
        },
        action_id,
        value: request_id.to_owned(),
        style,
    };
    Block::Actions {
        block_id: REVIEW_BLOCK,
        elements: vec![
            button("Approve", APPROVE_ACTION, "primary"),
            button("Deny", DENY_ACTION, "danger"),
        ],
    }
}

/// A `mrkdwn` text object with `verbatim: true`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    verbatim: bool,
}

impl Text {
    /// The text, as Slack receives it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Builds one text object from jitgate's labels and escaped values.
#[derive(Debug, Default)]
pub struct TextBuilder {
    text: String,
}

impl TextBuilder {
    /// A label of jitgate's own, in bold (`label` must be one of [`LABELS`]).
    #[must_use]
    pub fn label(mut self, label: &'static str) -> Self {
        debug_assert!(LABELS.contains(&label), "labels are jitgate's own: {label}");
        self.text.push('*');
        self.text.push_str(label);
        self.text.push('*');
        self
    }

    /// Any text not written by jitgate, escaped.
    #[must_use]
    pub fn value(mut self, value: &str) -> Self {
        self.text.push_str(&escape(value));
        self
    }

    /// A line break.
    #[must_use]
    pub fn newline(mut self) -> Self {
        self.text.push('\n');
        self
    }

    /// A space.
    #[must_use]
    pub fn space(mut self) -> Self {
        self.text.push(' ');
        self
    }

    /// `first` then `then`.
    #[must_use]
    pub fn join(mut first: Self, then: Self) -> Self {
        first.text.push_str(&then.text);
        first
    }

    /// The text object. Slack refuses an empty one: an empty text becomes a dash.
    pub fn build(self) -> Text {
        Text {
            kind: "mrkdwn",
            text: if self.text.is_empty() { "-".into() } else { self.text },
            verbatim: true,
        }
    }
}

/// Every bold label jitgate writes; nothing else in a message is formatted.
pub const LABELS: &[&str] = &[
    "Reason:",
    "Flow:",
    "Who may approve:",
    "Request",
    "Grant",
    "For",
    "Decided by:",
    "Reviewed by:",
    "Comment:",
];

/// Escapes `text` for Slack mrkdwn: `&`, `<`, `>` as HTML entities; `` ` `` always, and `*`,
/// `_`, `~` wherever they could open or close formatting (anywhere but between two letters
/// or digits, so `db_restart` stays as it is), as look-alikes (ˋ ∗ ＿ ∼) that Slack does not
/// interpret.
pub fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let inside_word = || {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            let after = chars.get(i + 1);
            before.is_some_and(|b| b.is_alphanumeric()) && after.is_some_and(|a| a.is_alphanumeric())
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\u{02CB}'),
            '*' if !inside_word() => out.push('\u{2217}'),
            '_' if !inside_word() => out.push('\u{FF3F}'),
            '~' if !inside_word() => out.push('\u{223C}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether `text` (escaped by [`escape`]) holds nothing Slack would parse: no `<`, `>` or
/// `` ` ``, every `&` starts an entity, and every `*`, `_`, `~` sits between two letters or
/// digits. The property tests check every payload with it.
pub fn is_inert(text: &str) -> bool {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let alnum = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|(_, c)| c.is_alphanumeric());
    chars.iter().enumerate().all(|(i, &(at, c))| match c {
        '<' | '>' | '`' => false,
        '&' => ["&amp;", "&lt;", "&gt;"]
            .iter()
            .any(|entity| text[at..].starts_with(entity)),
        '*' | '_' | '~' => alnum(i.checked_sub(1)) && alnum(Some(i + 1)),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_links_and_formatting_are_shown_not_parsed() {
        assert_eq!(
            escape("<!channel> <https://evil.example|Approve in one click> *bold* _it_ ~s~ `c` & db_restart"),
            "&lt;!channel&gt; &lt;https://evil.example|Approve in one click&gt; \u{2217}bold\u{2217} \u{FF3F}it\u{FF3F} \u{223C}s\u{223C} \u{02CB}c\u{02CB} &amp; db_restart"
        );
        assert!(is_inert(&escape("*_~`<>&x_y")));
        assert!(!is_inert("*bold*") && !is_inert("&copy;") && !is_inert("<@U1>"));
        let text = TextBuilder::default().label("Reason:").space().value("<@U123>").build();
        assert_eq!(
            serde_json::to_value(&text).unwrap(),
            serde_json::json!({"type": "mrkdwn", "text": "*Reason:* &lt;@U123&gt;", "verbatim": true})
        );
    }

    proptest::proptest! {
        /// Whatever a requester writes, its escaped form holds nothing Slack parses.
        #[test]
        fn escaped_text_is_inert(text in proptest::prelude::any::<String>(), hostile in "[<>&*_~`!@|a-z: ]{0,40}") {
            proptest::prop_assert!(is_inert(&escape(&text)));
            proptest::prop_assert!(is_inert(&escape(&hostile)), "{:?}", escape(&hostile));
        }
    }
}

/// The header of a Slack request's timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The header of a Slack request's signature (`v0=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-slack-signature";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn slack_mac(signing_secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    use hmac::Mac;
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(signing_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(format!("v0:{timestamp}:").as_bytes());
    m.update(body);
    m
}

/// Signs a request as Slack does (version `v0`): HMAC-SHA256 with the app's signing secret
/// over `v0:<timestamp>:<body>`, as `v0=<hex>`. What a test (or a proxy re-signing requests)
/// sends in [`SIGNATURE_HEADER`].
pub fn sign_request(signing_secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    use hmac::Mac;
    format!(
        "v0={}",
        hex::encode(slack_mac(signing_secret, timestamp, body).finalize().into_bytes())
    )
}

/// Verifies a request from Slack (signing version `v0`): the timestamp header must be within
/// `tolerance` of `now` (Slack advises five minutes) and the signature header must be the
/// HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing secret, compared in constant
/// time. Returns the timestamp.
///
/// # Errors
/// [`SignatureError::Malformed`](crate::SignatureError::Malformed) for a missing or ill-formed header, [`SignatureError::Expired`](crate::SignatureError::Expired)
/// for a timestamp outside the tolerance (a replay, or a wrong clock), [`SignatureError::Mismatch`](crate::SignatureError::Mismatch)
/// for a signature not made with the secret over this timestamp and body.
///
/// ```
/// use chrono::{Duration, Utc};
/// use jitgate_webhook::slack::{sign_request, verify_request};
/// let now = Utc::now();
/// let body = b"payload=%7B%7D";
/// let signature = sign_request(b"secret", now.timestamp(), body);
/// let ts = now.timestamp().to_string();
/// assert!(verify_request(b"secret", &ts, &signature, body, now, Duration::minutes(5)).is_ok());
/// assert!(verify_request(b"other", &ts, &signature, body, now, Duration::minutes(5)).is_err());
/// ```
pub fn verify_request(
    signing_secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
    tolerance: chrono::Duration,
) -> Result<i64, crate::SignatureError> {
    use crate::SignatureError;
    use hmac::Mac;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("the Slack timestamp is not a number"))?;
    let age = now.timestamp().saturating_sub(ts);
    if age.saturating_abs() > tolerance.num_seconds() {
        return Err(SignatureError::Expired { age_seconds: age });
    }
    let hex_part = signature
        .trim()
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed("the Slack signature is not v0=<hex>"))?;
    let bytes = hex::decode(hex_part).map_err(|_| SignatureError::Malformed("the Slack signature is not hex"))?;
    slack_mac(signing_secret, ts, body)
        .verify_slice(&bytes)
        .map_err(|_| SignatureError::Mismatch)?;
    Ok(ts)
}

#[cfg(test)]
mod request_signature_tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::SignatureError;

    /// The example of Slack's "Verifying requests from Slack" guide: its secret, timestamp and
    /// body give its signature.
    #[test]
    fn slacks_documented_example_verifies() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign_request(secret, 1_531_420_618, body), expected);
        let now = Utc.timestamp_opt(1_531_420_618 + 30, 0).unwrap();
        assert_eq!(
            verify_request(secret, "1531420618", expected, body, now, Duration::minutes(5)),
            Ok(1_531_420_618)
        );
        let late = now + Duration::minutes(6);
        assert!(matches!(
            verify_request(secret, "1531420618", expected, body, late, Duration::minutes(5)),
            Err(SignatureError::Expired { .. })
        ));
        let mut altered = body.to_vec();
        altered[0] = b'T';
        assert_eq!(
            verify_request(secret, "1531420618", expected, &altered, now, Duration::minutes(5)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_request(secret, "1531420618", "a2114d57", body, now, Duration::minutes(5)),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_request(secret, "soon", expected, body, now, Duration::minutes(5)),
            Err(SignatureError::Malformed(_))
        ));
    }
}
