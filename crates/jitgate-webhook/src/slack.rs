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
