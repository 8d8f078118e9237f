//! Which context attributes a policy set reads, found from its policies: the decision cache
//! keys on those only, so a per-call attribute no policy reads (a ticket, a request id) does
//! not make every call a miss.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{PolicySet, Schema};
use jitgate_core::{AttrValue, Attributes, EntityRef};
use serde_json::Value;

use crate::probes::Probes;

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
        Self::of_json(
            set.policies()
                .map(cedar_policy::Policy::to_json)
                .chain(set.templates().map(cedar_policy::Template::to_json)),
        )
    }

    fn of_json<E>(jsons: impl Iterator<Item = Result<Value, E>>) -> Self {
        let mut names = BTreeSet::new();
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
        self.view(context)
            .pairs()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The part of `context` the decision can depend on, borrowed (nothing copied).
    pub(crate) fn view<'a>(&'a self, context: &'a Attributes) -> ContextView<'a> {
        let ContextReads::Only(names) = self else {
            return ContextView::whole(context);
        };
        // Picked once here, so hashing and comparing the view search no name set again.
        let mut picked = [None; PICKED];
        let mut len = 0;
        for pair in context.iter().filter(|(k, _)| names.contains(*k)) {
            if len == PICKED {
                return ContextView {
                    attributes: context,
                    only: Some(names),
                    picked: None,
                };
            }
            picked[len] = Some(pair);
            len += 1;
        }
        ContextView {
            attributes: context,
            only: Some(names),
            picked: Some((picked, len)),
        }
    }
}

/// How many read attributes a view holds picked out (more: it filters as it goes).
const PICKED: usize = 8;

/// A borrowed attribute of a context.
type Pair<'a> = (&'a String, &'a AttrValue);

/// The attributes of a context that some policy reads, without copying them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContextView<'a> {
    attributes: &'a Attributes,
    /// `None`: every attribute.
    only: Option<&'a BTreeSet<String>>,
    /// The attributes in view, in name order, when there are at most [`PICKED`].
    picked: Option<([Option<Pair<'a>>; PICKED], usize)>,
}

impl<'a> ContextView<'a> {
    /// A view of every attribute of `attributes`.
    pub(crate) fn whole(attributes: &'a Attributes) -> Self {
        Self {
            attributes,
            only: None,
            picked: None,
        }
    }

    /// The attributes in view, in name order.
    pub(crate) fn pairs(self) -> Pairs<'a> {
        Pairs {
            all: self.attributes.iter(),
            view: self,
            at: 0,
        }
    }
}

/// The attributes of a [`ContextView`], in name order (a plain loop: this runs twice on every
/// cached call, hashing and comparing, and iterator adapters chained over an array did not
/// optimise to one).
pub(crate) struct Pairs<'a> {
    view: ContextView<'a>,
    at: usize,
    all: std::collections::btree_map::Iter<'a, String, AttrValue>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        if let Some((items, len)) = &self.view.picked {
            let item = if self.at < *len { items[self.at] } else { None };
            self.at += 1;
            return item;
        }
        let only = self.view.only;
        self.all.find(|(k, _)| only.is_none_or(|names| names.contains(*k)))
    }
}

/// What the policies of one action read, as far as the decision cache is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActionReads {
    /// The context attributes they read.
    pub(crate) context: ContextReads,
    /// Whether principals of one class decide alike on them (`crate::slice::class_decides`):
    /// then a call's decision is cached for its principal's class, not for the principal.
    pub(crate) by_class: bool,
}

impl ActionReads {
    fn of(policies: &[&cedar_policy::Policy], probes: &Probes) -> Self {
        Self {
            context: ContextReads::of_json(policies.iter().map(|p| p.to_json())),
            by_class: policies.iter().all(|p| probes.class_decides(p)),
        }
    }
}

/// What each action's policies read: a call keys the decision cache on the context attributes
/// of its own action only, so an attribute that only another action's policies read (a change
/// ticket for migrations) does not make every other call a miss; and on the principal's class
/// where those policies cannot tell its members apart.
#[derive(Debug)]
pub(crate) struct ReadsByAction {
    /// Looked up on every call: foldhash (seeded per process).
    by_action: HashMap<EntityRef, ActionReads, foldhash::fast::RandomState>,
    /// For an action the schema does not declare: what any policy reads.
    any: ActionReads,
}

impl ReadsByAction {
    /// For each of the schema's actions, what the policies whose action scope can match it read.
    pub(crate) fn of(set: &PolicySet, schema: &Schema) -> Self {
        let probes = Probes::of(set);
        let any = ActionReads {
            context: ContextReads::of(set),
            by_class: set.policies().all(|p| probes.class_decides(p)),
        };
        let Ok(actions) = schema.action_entities() else {
            return Self {
                by_action: HashMap::default(),
                any,
            };
        };
        let by_action = schema
            .actions()
            .map(|a| {
                let policies: Vec<&cedar_policy::Policy> = set
                    .policies()
                    .filter(|p| crate::slice::action_may_match(&p.action_constraint(), a, &actions))
                    .collect();
                (
                    EntityRef::new(a.type_name().to_string(), a.id().unescaped()),
                    ActionReads::of(&policies, &probes),
                )
            })
            .collect();
        Self { by_action, any }
    }

    /// What the policies of `action` read.
    pub(crate) fn of_action(&self, action: &EntityRef) -> &ActionReads {
        self.by_action.get(action).unwrap_or(&self.any)
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

    #[test]
    fn a_view_holds_the_read_attributes_however_many_there_are() {
        for (read, unread) in [(2, 3), (PICKED, 1), (PICKED + 3, 4)] {
            let names: Vec<String> = (0..read).map(|i| format!("r{i:02}")).collect();
            let only = ContextReads::Only(names.iter().cloned().collect());
            let context: Attributes = names
                .iter()
                .map(|n| (n.clone(), AttrValue::from(n.as_str())))
                .chain((0..unread).map(|i| (format!("u{i}"), AttrValue::Long(i as i64))))
                .collect();
            let seen: Vec<&String> = only.view(&context).pairs().map(|(k, _)| k).collect();
            assert_eq!(seen, names.iter().collect::<Vec<_>>(), "{read} read, {unread} not");
            assert_eq!(only.relevant(&context).len(), read);
            assert_eq!(ContextReads::All.view(&context).pairs().count(), read + unread);
        }
    }

    #[test]
    fn each_action_keys_on_what_its_own_policies_read() {
        let (schema, _) = Schema::from_cedarschema_str(
            r#"entity User; entity Db;
               type Ctx = { "ticket"?: String, "ip": String };
               action "write";
               action "migrate" in [Action::"write"] appliesTo { principal: User, resource: Db, context: Ctx };
               action "restart" appliesTo { principal: User, resource: Db, context: Ctx };"#,
        )
        .unwrap();
        let set: PolicySet = r#"
            forbid(principal, action, resource) when { context.ip == "203.0.113.9" };
            permit(principal, action in [Action::"write"], resource) when { context has ticket };
        "#
        .parse()
        .unwrap();
        let reads = ReadsByAction::of(&set, &schema);
        let context: Attributes = [("ticket", "CHG-1"), ("ip", "10.0.0.1"), ("other", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), jitgate_core::AttrValue::from(v)))
            .collect();
        let keys = |action: &str| -> Vec<String> {
            reads
                .of_action(&EntityRef::new("Action", action))
                .context
                .relevant(&context)
                .into_keys()
                .collect()
        };
        assert_eq!(keys("migrate"), ["ip", "ticket"], "through the action group");
        assert_eq!(keys("restart"), ["ip"], "the ticket is not read for restarts");
        assert_eq!(keys("undeclared"), ["ip", "ticket"], "what any policy reads");
    }

    #[test]
    fn an_action_keys_on_the_class_unless_its_policies_read_the_principal_past_their_opening() {
        let (schema, _) = Schema::from_cedarschema_str(
            r#"entity Team; entity User in [Team] { "oncall": Bool }; entity Db;
               type Ctx = { "ticket"?: String, "ip": String };
               action "write";
               action "migrate" in [Action::"write"] appliesTo { principal: User, resource: Db, context: Ctx };
               action "restart" appliesTo { principal: User, resource: Db, context: Ctx };
               action "read" appliesTo { principal: User, resource: Db, context: Ctx };"#,
        )
        .unwrap();
        let set: PolicySet = r#"
            forbid(principal, action, resource) when { context.ip == "203.0.113.9" };
            permit(principal in Team::"dba", action in [Action::"write"], resource) when { context has ticket };
            forbid(principal, action in [Action::"write"], resource)
                when { principal.oncall && principal in Team::"dba" } unless { context has ticket };
            permit(principal, action == Action::"restart", resource) when { context.ip == "10.0.0.1" && principal.oncall };
            permit(principal, action == Action::"read", resource) when { resource in principal };
        "#
        .parse()
        .unwrap();
        let reads = ReadsByAction::of(&set, &schema);
        let by_class = |action: &str| reads.of_action(&EntityRef::new("Action", action)).by_class;
        assert!(by_class("migrate"), "scopes and opening principal conditions only");
        assert!(!by_class("restart"), "principal.oncall after a context condition");
        assert!(!by_class("read"), "the principal as a value");
        assert!(!by_class("undeclared"), "what any policy reads");
    }
}
