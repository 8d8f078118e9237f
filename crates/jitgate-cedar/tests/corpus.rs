//! A corpus of policy sets written in different styles — the Cedar project's example
//! applications (`corpus/cedar-examples`, Apache-2.0) and our own (`corpus/own`) — loads in
//! jitgate exactly when bare Cedar validates it (strict mode), and jitgate decides each of its
//! requests as bare Cedar does: `Allow` is a standing permit or eligibility, `Deny` is
//! forbidden or not eligible, with the same determining policies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicyId, PolicySet, Request, Schema, SlotId, ValidationMode,
    Validator,
};
use jitgate_cedar::{CedarPolicy, JsonEntitiesFile};
use jitgate_core::{Action, AttrValue, EntityRef, Policy, PolicyDecision};
use serde_json::Value;

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut sets = Vec::new();
    for group in ["cedar-examples", "own"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let path = entry.unwrap().path();
            if path.join("policies.cedar").exists() {
                sets.push(path);
            }
        }
    }
    sets.sort();
    sets
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Bare Cedar: the schema, the policies (ids as `PolicySet::from_str` gives them, with `@id`
/// applied as jitgate does), the links; `Ok` when strict validation passes.
fn bare(dir: &Path) -> Result<(Schema, PolicySet), String> {
    let (schema, _) = Schema::from_cedarschema_str(&read(&dir.join("schema.cedarschema")).unwrap())
        .map_err(|e| format!("schema: {e}"))?;
    let parsed = PolicySet::from_str(&read(&dir.join("policies.cedar")).unwrap()).map_err(|e| e.to_string())?;
    let mut set = PolicySet::new();
    // jitgate names a policy without `@id` after its source and position: `policies.cedar#3`.
    let named = |id: &PolicyId, given: Option<&str>| {
        PolicyId::new(given.map_or_else(|| id.to_string().replace("policy", "policies.cedar#"), str::to_owned))
    };
    for t in parsed.templates() {
        set.add_template(t.new_id(named(t.id(), t.annotation("id")))).unwrap();
    }
    for p in parsed.policies() {
        set.add(p.new_id(named(p.id(), p.annotation("id")))).unwrap();
    }
    if let Some(links) = read(&dir.join("linked")) {
        for link in serde_json::from_str::<Vec<Value>>(&links).unwrap() {
            let slots = link["args"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(slot, v)| {
                    let slot = if slot == "?principal" {
                        SlotId::principal()
                    } else {
                        SlotId::resource()
                    };
                    (slot, EntityUid::from_str(v.as_str().unwrap()).unwrap())
                })
                .collect();
            set.link(
                PolicyId::new(link["template_id"].as_str().unwrap()),
                PolicyId::new(link["link_id"].as_str().unwrap()),
                slots,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let errors: Vec<String> = result.validation_errors().map(ToString::to_string).collect();
        return Err(errors.join("; "));
    }
    Ok((schema, set))
}

async fn jitgate(dir: &Path, with_entities: bool) -> Result<CedarPolicy, jitgate_cedar::CedarErrors> {
    let mut builder = CedarPolicy::builder()
        .schema_file(dir.join("schema.cedarschema"))
        .policies("policies.cedar", &read(&dir.join("policies.cedar")).unwrap())
        .entities_never_expire()
        .decision_cache(1_000);
    if dir.join("linked").exists() {
        builder = builder.template_links_file(dir.join("linked"));
    }
    if with_entities && dir.join("entities.json").exists() {
        builder = builder.entities(Arc::new(JsonEntitiesFile::new(dir.join("entities.json"))));
    }
    builder.build().await
}

fn entity_ref(uid: &str) -> EntityRef {
    let uid = EntityUid::from_str(uid).unwrap();
    EntityRef::new(uid.type_name().to_string(), uid.id().unescaped())
}

/// A request file's context as jitgate attributes: `__entity` references, `__extn` (or the bare
/// `{fn, arg}` form the Cedar CLI takes with a schema) extension values, sets and records.
fn attr(v: &Value) -> AttrValue {
    match v {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => AttrValue::Long(n.as_i64().unwrap()),
        Value::String(s) => AttrValue::String(s.clone()),
        Value::Array(items) => AttrValue::Set(items.iter().map(attr).collect()),
        Value::Object(map) => {
            if let Some(e) = map.get("__entity") {
                return AttrValue::Entity(EntityRef::new(e["type"].as_str().unwrap(), e["id"].as_str().unwrap()));
            }
            let extension = map
                .get("__extn")
                .or((map.len() == 2 && map.contains_key("fn")).then_some(v));
            if let Some(x) = extension {
                let arg = x["arg"].as_str().unwrap().to_owned();
                return match x["fn"].as_str().unwrap() {
                    "ip" => AttrValue::Ip(arg),
                    "decimal" => AttrValue::Decimal(arg),
                    "datetime" => AttrValue::Datetime(arg),
                    "duration" => AttrValue::Duration(arg),
                    other => panic!("extension {other}"),
                };
            }
            AttrValue::Record(
                map.iter()
                    .map(|(k, v)| (k.clone(), attr(v)))
                    .collect::<BTreeMap<_, _>>(),
            )
        }
        Value::Null => panic!("null in a context"),
    }
}

/// What jitgate's decision says in bare Cedar's terms: the decision and its determining ids.
fn as_bare(decision: &PolicyDecision) -> (Decision, BTreeSet<String>) {
    match decision {
        PolicyDecision::Standing { policy_ids } => (Decision::Allow, policy_ids.iter().cloned().collect()),
        PolicyDecision::Eligible { flow } => (Decision::Allow, flow.policy_ids.iter().cloned().collect()),
        PolicyDecision::Forbidden { policy_ids } => (Decision::Deny, policy_ids.iter().cloned().collect()),
        PolicyDecision::NotEligible => (Decision::Deny, BTreeSet::new()),
        other => panic!("unexpected {other:?}"),
    }
}

fn requests(dir: &Path) -> Vec<(PathBuf, Decision)> {
    let mut all = Vec::new();
    for (sub, expected) in [("ALLOW", Decision::Allow), ("DENY", Decision::Deny)] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            all.extend(entries.map(|e| (e.unwrap().path(), expected)));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_loads_exactly_when_bare_cedar_validates_it_and_decides_as_bare_cedar() {
    let (mut loaded, mut refused, mut unfit, mut decided) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for dir in corpus() {
        let name = dir
            .strip_prefix(dir.parent().unwrap().parent().unwrap())
            .unwrap()
            .display()
            .to_string();
        let bare = bare(&dir);
        // The policy set alone first: entities that do not fit the schema are another matter.
        let ours = jitgate(&dir, false).await;
        match (bare, ours) {
            (Ok(bare), Ok(_)) => {
                loaded.push(name.clone());
                let entities = match read(&dir.join("entities.json")) {
                    Some(json) => match Entities::from_json_str(&json, Some(&bare.0)) {
                        Ok(entities) => entities,
                        Err(why) => {
                            // Two examples' entities do not fit their own schema (their
                            // `run.sh` authorizes them without it): jitgate checks entities
                            // against the schema, as bare Cedar does when given one.
                            let refused = jitgate(&dir, true).await.expect_err("entities off the schema");
                            assert!(
                                matches!(refused.first(), jitgate_cedar::CedarError::Entities { .. }),
                                "{name}: {refused} ({why})"
                            );
                            unfit.push(name.clone());
                            continue;
                        }
                    },
                    None => Entities::empty(),
                };
                let policy = jitgate(&dir, true).await.unwrap();
                // Every policy and link is there, under the same id.
                let ids: BTreeSet<String> = policy.policies().map(|p| p.id().to_string()).collect();
                let expected: BTreeSet<String> = bare.1.policies().map(|p| p.id().to_string()).collect();
                assert_eq!(ids, expected, "{name}: the policies jitgate holds");
                for (file, expected) in requests(&dir) {
                    let request: Value = serde_json::from_str(&read(&file).unwrap()).unwrap();
                    let principal = request["principal"].as_str().unwrap();
                    let action = request["action"].as_str().unwrap();
                    let resource = request["resource"].as_str().unwrap();
                    let context = request["context"].as_object().cloned().unwrap_or_default();
                    let cedar_request = Request::new(
                        EntityUid::from_str(principal).unwrap(),
                        EntityUid::from_str(action).unwrap(),
                        EntityUid::from_str(resource).unwrap(),
                        Context::from_json_value(
                            Value::Object(context.clone()),
                            Some((&bare.0, &EntityUid::from_str(action).unwrap())),
                        )
                        .unwrap(),
                        Some(&bare.0),
                    )
                    .unwrap();
                    let response = Authorizer::new().is_authorized(&cedar_request, &bare.1, &entities);
                    assert_eq!(
                        response.decision(),
                        expected,
                        "{}: the example's own answer",
                        file.display()
                    );
                    let reasons: BTreeSet<String> = response.diagnostics().reason().map(ToString::to_string).collect();
                    let call = context
                        .iter()
                        .fold(Action::new(entity_ref(action), entity_ref(resource)), |call, (k, v)| {
                            call.with_attr(k.clone(), attr(v))
                        });
                    // Twice: the second answer comes from the decision cache.
                    for round in ["computed", "cached"] {
                        let decision = policy.evaluate(&entity_ref(principal), &call).unwrap();
                        assert_eq!(
                            as_bare(&decision),
                            (response.decision(), reasons.clone()),
                            "{} ({round}): jitgate says {decision:?}",
                            file.display()
                        );
                    }
                    decided += 1;
                }
            }
            (Err(why), Err(errors)) => {
                assert!(!errors.errors().is_empty(), "{name}: {why}");
                refused.push(name);
            }
            (Ok(_), Err(errors)) => panic!("{name}: bare Cedar validates it, jitgate refuses it: {errors}"),
            (Err(why), Ok(_)) => panic!("{name}: bare Cedar refuses it ({why}), jitgate loads it"),
        }
    }
    assert!(loaded.len() >= 14, "loaded: {loaded:?}");
    assert!(
        refused.iter().any(|n| n.starts_with("own/refused")),
        "both outcomes are exercised: refused {refused:?}"
    );
    assert!(unfit.len() <= 2, "entities off their schema: {unfit:?}");
    assert!(decided >= 50, "requests decided: {decided}");
}
