//! Which context attributes a policy set reads, found from its policies: the decision cache
//! keys on those only, so a per-call attribute no policy reads (a ticket, a request id) does
//! not make every call a miss.

use std::collections::BTreeSet;

use cedar_policy::PolicySet;
use jitgate_core::Attributes;
use serde_json::Value;

/// The context attributes a policy set can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ContextReads {
    /// Some policy uses `context` as a whole (compares it, passes it on): every attribute
    /// counts.
    All,
    /// Only these, by name (`context.x`, `context["x"]`, `context has x`).
    Only(BTreeSet<String>),
}

impl ContextReads {
    /// What the policies and templates of `set` read (from their JSON form; a policy that
    /// cannot be turned into JSON counts as reading everything).
    pub(crate) fn of(set: &PolicySet) -> Self {
        let mut names = BTreeSet::new();
        let jsons = set
            .policies()
            .map(cedar_policy::Policy::to_json)
            .chain(set.templates().map(cedar_policy::Template::to_json));
        for json in jsons {
            match json {
                Ok(v) if collect(&v, &mut names) => {}
                _ => return ContextReads::All,
            }
        }
        ContextReads::Only(names)
    }

    /// The part of `context` the decision can depend on.
    pub(crate) fn relevant(&self, context: &Attributes) -> Attributes {
        match self {
            ContextReads::All => context.clone(),
            ContextReads::Only(names) => context
                .iter()
                .filter(|(k, _)| names.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// Adds the attribute names read from `context` in `v` to `names`; false if `context` is used
/// other than by attribute (then every attribute may matter).
fn collect(v: &Value, names: &mut BTreeSet<String>) -> bool {
    match v {
        Value::Object(map) => {
            for (op, inner) in map {
                if op == "Var" && inner == "context" {
                    return false;
                }
                if op == "." || op == "has" {
                    if let (Some(left), Some(Value::String(attr))) = (inner.get("left"), inner.get("attr")) {
                        if left.get("Var").is_some_and(|var| var == "context") {
                            names.insert(attr.clone());
                            continue;
                        }
                    }
                }
                if !collect(inner, names) {
                    return false;
                }
            }
            true
        }
        Value::Array(items) => items.iter().all(|i| collect(i, names)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(src: &str) -> ContextReads {
        ContextReads::of(&src.parse::<PolicySet>().expect("valid policies"))
    }

    #[test]
    fn named_attributes_are_found_and_whole_context_uses_mean_all() {
        let only = |names: &[&str]| ContextReads::Only(names.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(reads("permit(principal, action, resource);"), only(&[]));
        assert_eq!(
            reads(
                r#"permit(principal, action, resource) when { context.on_call && context has ticket };
                   forbid(principal, action, resource) when { context["source_ip"] == "1.2.3.4" };"#
            ),
            only(&["on_call", "source_ip", "ticket"])
        );
        assert_eq!(
            reads(r#"permit(principal, action, resource) when { context.req.ticket == "x" };"#),
            only(&["req"])
        );
        assert_eq!(
            reads(r#"permit(principal, action, resource) when { context == {"a": 1} };"#),
            ContextReads::All
        );
    }
}
