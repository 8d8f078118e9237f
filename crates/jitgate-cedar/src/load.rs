//! Reading policy text into a policy set whose ids are the authors' `@id`s.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet};
use miette::Diagnostic;

use crate::error::Location;
use crate::CedarError;

/// Policy text and the name errors should give for it (usually its file path).
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
}

/// 1-based line and column of a byte offset, and the text of the span.
pub(crate) fn locate(source: &Source, offset: usize, len: usize) -> Location {
    let offset = offset.min(source.text.len());
    let before = &source.text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    let end = (offset + len).min(source.text.len());
    let snippet = source
        .text
        .get(offset..end)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    Location {
        source_name: source.name.clone(),
        line,
        column,
        snippet,
    }
}

/// The first labelled span of a diagnostic, located in `source`.
pub(crate) fn diagnostic_location(d: &dyn Diagnostic, source: &Source) -> Location {
    let span = d.labels().and_then(|mut l| l.next()).map(|l| (l.offset(), l.len()));
    match span {
        Some((offset, len)) => locate(source, offset, len),
        None => Location {
            source_name: source.name.clone(),
            line: 0,
            column: 0,
            snippet: String::new(),
        },
    }
}

/// Parses every source; each policy takes its `@id` (or `<source>#<n>`, its position).
pub(crate) fn parse(sources: &[Source]) -> Result<(PolicySet, HashMap<String, usize>), CedarError> {
    let mut set = PolicySet::new();
    let mut origin: HashMap<String, usize> = HashMap::new();
    for (index, source) in sources.iter().enumerate() {
        let parsed = PolicySet::from_str(&source.text).map_err(|e| CedarError::Parse {
            location: diagnostic_location(&e, source),
            message: e.to_string(),
            help: e.help().map(|h| h.to_string()),
            source: Box::new(e),
        })?;
        if let Some(t) = parsed.templates().next() {
            return Err(CedarError::Validation {
                policy_id: t.id().to_string(),
                location: Location {
                    source_name: source.name.clone(),
                    line: 0,
                    column: 0,
                    snippet: String::new(),
                },
                message: "templates are not supported: grants are not template links in jitgate".into(),
                help: Some("write static policies; jitgate keeps grants in its own index".into()),
            });
        }
        // `from_str` names policies policy0, policy1, … in text order.
        let mut policies: Vec<&Policy> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (n, p) in policies.into_iter().enumerate() {
            let id = p
                .annotation("id")
                .map_or_else(|| format!("{}#{n}", source.name), str::to_owned);
            if let Some(first) = origin.get(&id) {
                return Err(CedarError::DuplicateId {
                    policy_id: id,
                    first: sources[*first].name.clone(),
                    second: source.name.clone(),
                });
            }
            set.add(p.new_id(PolicyId::new(&id)))
                .map_err(|e| CedarError::Validation {
                    policy_id: id.clone(),
                    location: Location {
                        source_name: source.name.clone(),
                        line: 0,
                        column: 0,
                        snippet: String::new(),
                    },
                    message: e.to_string(),
                    help: None,
                })?;
            origin.insert(id, index);
        }
    }
    Ok((set, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_columns_from_one() {
        let s = Source {
            name: "p.cedar".into(),
            text: "ab\ncd ef\n".into(),
        };
        let l = locate(&s, 6, 2);
        assert_eq!((l.line, l.column, l.snippet.as_str()), (2, 4, "ef"));
        assert_eq!(locate(&s, 0, 1).to_string(), "p.cedar:1:1 `a`");
    }
}
