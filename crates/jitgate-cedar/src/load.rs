//! Reading policy text into a policy set whose ids are the authors' `@id`s, with every
//! policy's place in its source kept for the errors found later.

use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Policy, PolicyId, PolicySet, Template};
use miette::Diagnostic;

use crate::error::Location;
use crate::CedarError;

/// Policy text and the name errors should give for it (usually its file path).
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: Arc<str>,
}

impl Source {
    pub(crate) fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The span `offset..offset + len` of this source.
    pub(crate) fn locate(&self, offset: usize, len: usize) -> Location {
        Location::new(&self.name, &self.text, offset, len)
    }
}

/// The first labelled span of a diagnostic, located in `source`; `None` if it has none.
pub(crate) fn diagnostic_location(d: &dyn Diagnostic, source: &Source) -> Option<Location> {
    let label = d.labels().and_then(|mut l| l.next())?;
    Some(source.locate(label.offset(), label.len()))
}

/// Walks Cedar text outside comments: calls `f(offset, byte)` for every byte of code, and once
/// (with `b'"'`) for each string literal, whose contents are skipped.
fn scan_code(text: &str, mut f: impl FnMut(usize, u8)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                f(i, b'"');
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b => f(i, b),
        }
        i += 1;
    }
}

/// The byte ranges of the policies (and templates) in Cedar text, in order: each runs from its
/// first character (its first annotation, if any) to its closing `;`. Comments and string
/// literals are skipped, so a `;` inside them ends nothing.
pub(crate) fn policy_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start: Option<usize> = None;
    scan_code(text, |i, b| match b {
        b';' => {
            if let Some(s) = start.take() {
                spans.push(s..i + 1);
            }
        }
        c if c.is_ascii_whitespace() => {}
        _ => {
            start.get_or_insert(i);
        }
    });
    spans
}

/// The deepest bracket nesting (`(`, `[`, `{`) a policy may have. Cedar's parser recurses once
/// per level (tens of kilobytes of stack each in a debug build), so deeper text is refused
/// before it is parsed.
pub const MAX_NESTING: usize = 64;

/// The longest text one policy may have: bounds the parser's work on long operator chains.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The deepest a policy's expression tree may be (in levels of its JSON form): evaluation
/// recurses once per level, on the caller's thread, on every `authorize`.
pub const MAX_EXPRESSION_DEPTH: usize = 200;

/// The first place where `text` nests brackets deeper than `max` (strings and comments
/// skipped), as a byte offset and the depth reached.
pub(crate) fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut first = None;
    scan_code(text, |i, b| match b {
        b'(' | b'[' | b'{' => {
            depth += 1;
            if depth > max && first.is_none() {
                first = Some((i, depth));
            }
        }
        b')' | b']' | b'}' => depth = depth.saturating_sub(1),
        _ => {}
    });
    first
}

/// How deep a JSON value nests, counted without recursion.
fn json_depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            serde_json::Value::Object(fields) => stack.extend(fields.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Where each policy comes from: its source and its span in that source.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) source: usize,
    pub(crate) span: Range<usize>,
}

impl Origin {
    /// The policy's whole text.
    pub(crate) fn location(&self, sources: &[Source]) -> Location {
        sources[self.source].locate(self.span.start, self.span.len())
    }

    /// The annotation `@key` in the policy's text, or the whole policy if it is not found.
    pub(crate) fn annotation_location(&self, sources: &[Source], key: &str) -> Location {
        let source = &sources[self.source];
        let text = &source.text[self.span.clone()];
        let needle = format!("@{key}");
        let found = text.match_indices(&needle).find(|(at, _)| {
            let after = text[at + needle.len()..].trim_start();
            after.starts_with('(')
        });
        match found {
            Some((at, _)) => {
                let len = text[at..].find(')').map_or(needle.len(), |close| close + 1);
                source.locate(self.span.start + at, len)
            }
            None => self.location(sources),
        }
    }
}

/// A parsed static policy or template.
#[derive(Clone, Copy)]
enum Either<'a> {
    Policy(&'a Policy),
    Template(&'a Template),
}

/// The policies of every source that parses, re-id'd by `@id` (or `<source>#<n>`, their
/// position), and where each comes from.
pub(crate) struct Parsed {
    pub(crate) set: PolicySet,
    pub(crate) origin: HashMap<String, Origin>,
}

/// Parses every source, policies and templates; collects every error (a file that does not
/// parse, each duplicate id) instead of stopping at the first.
pub(crate) fn parse(sources: &[Source], errors: &mut Vec<CedarError>) -> Parsed {
    let mut set = PolicySet::new();
    let mut origin: HashMap<String, Origin> = HashMap::new();
    for (index, source) in sources.iter().enumerate() {
        if let Some((at, depth)) = too_deep(&source.text, MAX_NESTING) {
            errors.push(CedarError::TooComplex {
                location: source.locate(at, 1),
                problem: format!("brackets nest {depth} deep here, over the limit of {MAX_NESTING}"),
            });
            continue;
        }
        if let Some(long) = policy_spans(&source.text)
            .into_iter()
            .find(|s| s.len() > MAX_POLICY_BYTES)
        {
            errors.push(CedarError::TooComplex {
                location: source.locate(long.start, 1),
                problem: format!(
                    "this policy is {} bytes long, over the limit of {MAX_POLICY_BYTES}",
                    long.len()
                ),
            });
            continue;
        }
        let parsed = match PolicySet::from_str(&source.text) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.push(CedarError::Parse {
                    location: diagnostic_location(&e, source).unwrap_or_else(|| source.locate(0, 0)),
                    message: e.to_string(),
                    help: e.help().map(|h| h.to_string()),
                    source: Box::new(e),
                });
                continue;
            }
        };
        let spans = policy_spans(&source.text);
        // `from_str` names policies and templates policy0, policy1, … in text order.
        let position = |id: &PolicyId| id.to_string().trim_start_matches("policy").parse::<usize>().ok();
        // Policies and templates in text order, so that a duplicate id names the later one.
        let mut items: Vec<(usize, Either<'_>)> = parsed
            .policies()
            .map(|p| (position(p.id()).unwrap_or(usize::MAX), Either::Policy(p)))
            .chain(
                parsed
                    .templates()
                    .map(|t| (position(t.id()).unwrap_or(usize::MAX), Either::Template(t))),
            )
            .collect();
        items.sort_by_key(|(n, _)| *n);
        for (n, item) in items {
            let (given, json) = match item {
                Either::Policy(p) => (p.annotation("id"), p.to_json().ok()),
                Either::Template(t) => (t.annotation("id"), t.to_json().ok()),
            };
            let span = spans.get(n).cloned().unwrap_or(0..source.text.len());
            let id = given.map_or_else(|| format!("{}#{n}", source.name), str::to_owned);
            let here = Origin { source: index, span };
            let depth = json.map(|j| json_depth(&j)).unwrap_or(0);
            if depth > MAX_EXPRESSION_DEPTH {
                errors.push(CedarError::TooComplex {
                    location: here.location(sources),
                    problem: format!(
                        "policy `{id}`'s expression nests {depth} levels deep, over the limit of {MAX_EXPRESSION_DEPTH}; split the condition"
                    ),
                });
                continue;
            }
            if let Some(first) = origin.get(&id) {
                errors.push(CedarError::DuplicateId {
                    policy_id: id,
                    first: first.location(sources).to_string(),
                    second: here.location(sources).to_string(),
                    location: Some(here.annotation_location(sources, "id")),
                });
                continue;
            }
            let added = match item {
                Either::Policy(p) => set.add(p.new_id(PolicyId::new(&id))),
                Either::Template(t) => set.add_template(t.new_id(PolicyId::new(&id))),
            };
            match added {
                Ok(()) => {
                    origin.insert(id, here);
                }
                Err(e) => errors.push(CedarError::Validation {
                    policy_id: id,
                    location: here.location(sources),
                    message: e.to_string(),
                    help: None,
                }),
            }
        }
    }
    Parsed { set, origin }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_columns_from_one() {
        let s = Source::new("p.cedar", "ab\ncd ef\n");
        let l = s.locate(6, 2);
        assert_eq!((l.line, l.column, l.snippet.as_str()), (2, 4, "ef"));
        assert_eq!(s.locate(0, 1).to_string(), "p.cedar:1:1 `a`");
    }

    #[test]
    fn policy_spans_skip_comments_and_strings() {
        let text = "// a; comment\n@id(\"a;b\")\npermit(principal, action, resource);\n\n forbid(principal, action, resource) when { \"x;\" == \"y\" };\n";
        let spans = policy_spans(text);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!(text[spans[0].clone()].starts_with("@id(\"a;b\")"));
        assert!(text[spans[0].clone()].ends_with("resource);"));
        assert!(text[spans[1].clone()].starts_with("forbid("));
        assert!(text[spans[1].clone()].ends_with("};"));
    }
}
