//! Template links: which template, under which id, with which entities in its slots, in the
//! JSON form the Cedar CLI reads (`--template-linked`):
//!
//! ```json
//! [{ "template_id": "adhoc-access", "link_id": "AliceView",
//!    "args": { "?principal": "User::\"alice\"", "?resource": "Document::\"d1\"" } }]
//! ```

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{EntityUid, PolicyId, PolicySet, SlotId};
use serde::Deserialize;

use crate::load::Source;
use crate::CedarError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    template_id: String,
    link_id: String,
    args: HashMap<String, String>,
}

/// Links the templates of `set` as `source` says; every error is collected.
pub(crate) fn apply(source: &Source, set: &mut PolicySet, errors: &mut Vec<CedarError>) {
    let error = |link_id: Option<&str>, message: String| CedarError::Link {
        source_name: source.name.clone(),
        link_id: link_id.map(str::to_owned),
        message,
    };
    let links: Vec<Link> = match serde_json::from_str(&source.text) {
        Ok(links) => links,
        Err(e) => {
            errors.push(error(
                None,
                format!("not a JSON list of {{template_id, link_id, args}}: {e}"),
            ));
            return;
        }
    };
    for link in links {
        let mut slots = HashMap::new();
        let mut bad = false;
        for (slot, value) in &link.args {
            let slot_id = match slot.as_str() {
                "?principal" => SlotId::principal(),
                "?resource" => SlotId::resource(),
                other => {
                    errors.push(error(
                        Some(&link.link_id),
                        format!("`{other}` is not a slot (the slots are ?principal and ?resource)"),
                    ));
                    bad = true;
                    continue;
                }
            };
            match EntityUid::from_str(value) {
                Ok(uid) => {
                    slots.insert(slot_id, uid);
                }
                Err(e) => {
                    errors.push(error(
                        Some(&link.link_id),
                        format!("{slot} = `{value}` is not an entity (write Type::\"id\"): {e}"),
                    ));
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if let Err(e) = set.link(PolicyId::new(&link.template_id), PolicyId::new(&link.link_id), slots) {
            errors.push(error(
                Some(&link.link_id),
                format!("cannot link template `{}`: {e}", link.template_id),
            ));
        }
    }
}
