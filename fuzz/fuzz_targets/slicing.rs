//! Property: for any policy set, entity hierarchy and request, the slice jitgate evaluates
//! decides exactly as the whole set (decision, determining policy ids, errors).

#![no_main]

use std::collections::HashSet;
use std::str::FromStr;

use arbitrary::Arbitrary;
use cedar_policy::{Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression};
use jitgate_cedar::slice::{compare_with_whole, compare_within_class};
use libfuzzer_sys::fuzz_target;

const ACTIONS: [&str; 4] = ["read", "edit", "delete", "write"];

#[derive(Arbitrary, Debug)]
struct PolicyChoice {
    permit: bool,
    principal: (u8, u8),
    action: (u8, u8, u8),
    resource: (u8, u8),
    condition: (u8, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    policies: Vec<PolicyChoice>,
    team_parents: [Option<u8>; 5],
    user_teams: [(u8, u8); 6],
    doc_folders: [u8; 6],
    requests: Vec<(u8, u8, u8, u8)>,
}

fn uid(s: &str) -> EntityUid {
    EntityUid::from_str(s).expect("fixed forms parse")
}

fn text(c: &PolicyChoice) -> String {
    let p = match c.principal.0 % 6 {
        0 => "principal".to_owned(),
        1 => format!("principal == User::\"u{}\"", c.principal.1 % 6),
        2 => format!("principal in Team::\"t{}\"", c.principal.1 % 5),
        3 => "principal is User".to_owned(),
        4 => format!("principal is User in Team::\"t{}\"", c.principal.1 % 5),
        _ => format!("principal == Team::\"t{}\"", c.principal.1 % 5),
    };
    let a = match c.action.0 % 4 {
        0 => "action".to_owned(),
        1 => format!("action == Action::\"{}\"", ACTIONS[(c.action.1 % 4) as usize]),
        2 => format!(
            "action in [Action::\"{}\", Action::\"{}\"]",
            ACTIONS[(c.action.1 % 4) as usize],
            ACTIONS[(c.action.2 % 4) as usize]
        ),
        _ => "action in Action::\"write\"".to_owned(),
    };
    let r = match c.resource.0 % 4 {
        0 => "resource".to_owned(),
        1 => format!("resource == Doc::\"d{}\"", c.resource.1 % 6),
        2 => format!("resource in Folder::\"f{}\"", c.resource.1 % 3),
        _ => "resource is Doc".to_owned(),
    };
    let cond = match c.condition.0 % 12 {
        // The principal read again after a condition on something else.
        11 => format!(
            " when {{ principal in Team::\"t{}\" && context.flag && principal.contractor }}",
            c.condition.1 % 5
        ),
        // Conditions that open the policy and read only the principal, decided per principal.
        7 => " when { principal.contractor }".to_owned(),
        8 => " unless { principal.contractor } when { context.flag }".to_owned(),
        9 => format!(
            " when {{ principal in Team::\"t{}\" && principal.contractor && context.n > 3 }}",
            c.condition.1 % 5
        ),
        10 => " when { context.flag && principal.contractor }".to_owned(),
        0 => String::new(),
        1 => " when { context.flag }".to_owned(),
        2 => " when { context.n > 3 }".to_owned(),
        5 => " when { resource.level > 1 }".to_owned(),
        6 => " when { resource has level && resource.level < 4 }".to_owned(),
        3 => format!(" when {{ principal in Team::\"t{}\" }}", c.condition.1 % 5),
        _ => format!(" unless {{ resource in Folder::\"f{}\" }}", c.condition.1 % 3),
    };
    format!("{}({p}, {a}, {r}){cond};", if c.permit { "permit" } else { "forbid" })
}

fn world(input: &Input) -> Entities {
    let mut v = Vec::new();
    for (i, parent) in input.team_parents.iter().enumerate() {
        let parents: HashSet<EntityUid> = parent
            .map(|p| p as usize % 5)
            .filter(|p| *p < i)
            .map(|p| uid(&format!("Team::\"t{p}\"")))
            .into_iter()
            .collect();
        v.push(Entity::new_no_attrs(uid(&format!("Team::\"t{i}\"")), parents));
    }
    for (i, (a, b)) in input.user_teams.iter().enumerate() {
        let parents = [a, b]
            .iter()
            .filter(|t| **t % 3 != 0)
            .map(|t| uid(&format!("Team::\"t{}\"", *t % 5)))
            .collect();
        // A contractor, an employee, or without the attribute (conditions on it can error).
        let attrs = match (a ^ b) % 3 {
            0 => std::collections::HashMap::new(),
            k => std::collections::HashMap::from([("contractor".to_owned(), RestrictedExpression::new_bool(k == 1))]),
        };
        v.push(Entity::new(uid(&format!("User::\"u{i}\"")), attrs, parents).expect("valid entity"));
    }
    for f in 0..3 {
        v.push(Entity::new_no_attrs(uid(&format!("Folder::\"f{f}\"")), HashSet::new()));
    }
    for (i, f) in input.doc_folders.iter().enumerate() {
        // Even documents carry a level; odd ones do not, so conditions on it can also error.
        let attrs = if i % 2 == 0 {
            std::collections::HashMap::from([("level".to_owned(), RestrictedExpression::new_long(i as i64))])
        } else {
            std::collections::HashMap::new()
        };
        v.push(
            Entity::new(
                uid(&format!("Doc::\"d{i}\"")),
                attrs,
                HashSet::from([uid(&format!("Folder::\"f{}\"", f % 3))]),
            )
            .expect("valid entity"),
        );
    }
    v.push(Entity::new_no_attrs(uid("Action::\"write\""), HashSet::new()));
    v.push(Entity::new_no_attrs(uid("Action::\"read\""), HashSet::new()));
    for a in ["edit", "delete"] {
        v.push(Entity::new_no_attrs(
            uid(&format!("Action::\"{a}\"")),
            HashSet::from([uid("Action::\"write\"")]),
        ));
    }
    Entities::from_entities(v, None).expect("an acyclic hierarchy")
}

fuzz_target!(|input: Input| {
    if input.policies.is_empty() || input.policies.len() > 32 {
        return;
    }
    let texts: Vec<String> = input.policies.iter().map(text).collect();
    let all = PolicySet::from_str(&texts.join("\n")).expect("generated policies parse");
    let entities = world(&input);
    for (u, a, d, c) in input.requests.iter().take(16) {
        let p = uid(&format!("User::\"u{}\"", u % 6));
        let act = uid(&format!("Action::\"{}\"", ACTIONS[(a % 4) as usize]));
        let context = match c % 3 {
            0 => Context::empty(),
            1 => Context::from_pairs([
                ("flag".to_owned(), RestrictedExpression::new_bool(true)),
                ("n".to_owned(), RestrictedExpression::new_long(5)),
            ])
            .expect("valid context"),
            _ => Context::from_pairs([("flag".to_owned(), RestrictedExpression::new_bool(false))])
                .expect("valid context"),
        };
        let request = Request::new(
            p.clone(),
            act.clone(),
            uid(&format!("Doc::\"d{}\"", d % 6)),
            context,
            None,
        )
        .expect("valid request");
        if let Some(diff) = compare_with_whole(&all, &p, &act, &request, &entities) {
            panic!(
                "slice differs from the whole set: {diff}\npolicies:\n{}",
                texts.join("\n")
            );
        }
        // The decision cache's claim: where the action's policies cannot tell a principal
        // class's members apart, they decide alike.
        let users: Vec<EntityUid> = (0..6).map(|u| uid(&format!("User::\"u{u}\""))).collect();
        let resource = uid(&format!("Doc::\"d{}\"", d % 6));
        if let Some(diff) = compare_within_class(
            &all,
            &entities,
            &users,
            &act,
            &resource,
            request.context().expect("a context"),
        ) {
            panic!(
                "principals of one class decide differently: {diff}\npolicies:\n{}",
                texts.join("\n")
            );
        }
    }
});
