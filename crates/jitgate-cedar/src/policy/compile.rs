//! Reading, parsing, linking, splitting and validating what a [`CedarPolicyBuilder`](super::CedarPolicyBuilder)
//! was given, on the loader thread: every error at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};
use jitgate_core::PolicyVersion;
use miette::Diagnostic;

use crate::annotations::{classify, is_jit_action_policy, mixes_jit_and_service_actions, AnnotationLimits, Kind};
use crate::error::CedarErrors;
use crate::load::{diagnostic_location, parse, Origin, Parsed, Source};
use crate::schema::{self, Schemas};
use crate::CedarError;

/// Text given directly, or a file to read at build time.
#[derive(Clone, Debug)]
pub(super) enum Input {
    Text(Source),
    File(PathBuf),
    Dir(PathBuf),
}

fn read(path: &Path, errors: &mut Vec<CedarError>) -> Option<Source> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Source::new(path.display().to_string(), text)),
        Err(source) => {
            errors.push(CedarError::Io {
                path: path.to_owned(),
                source,
            });
            None
        }
    }
}

fn read_dir(dir: &Path, errors: &mut Vec<CedarError>) -> Vec<Source> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
            .collect(),
        Err(source) => {
            errors.push(CedarError::Io {
                path: dir.to_owned(),
                source,
            });
            return Vec::new();
        }
    };
    files.sort();
    files.iter().filter_map(|f| read(f, errors)).collect()
}

fn read_schema(input: &Input, errors: &mut Vec<CedarError>) -> Option<std::sync::Arc<str>> {
    match input {
        Input::Text(s) => Some(s.text.clone()),
        Input::File(path) | Input::Dir(path) => read(path, errors).map(|s| s.text),
    }
}

/// The version `inputs` would load as if read now (what a reloader compares with the policy
/// in force): [`compile`]'s version when every file reads; otherwise a digest of the read
/// errors, so another error is another fingerprint.
pub(super) fn fingerprint(inputs: &Inputs) -> PolicyVersion {
    let mut errors = Vec::new();
    let schema = inputs.schema.as_ref().and_then(|s| read_schema(s, &mut errors));
    let sources = sources_of(&inputs.policies, &mut errors);
    let links = sources_of(&inputs.links, &mut errors);
    if errors.is_empty() {
        version_of(schema.as_deref(), &sources, &links, inputs.principal_types.as_deref())
    } else {
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        PolicyVersion::digest(std::iter::once(&b"unreadable"[..]).chain(texts.iter().map(String::as_bytes)))
    }
}

/// What the builder was given to load.
#[derive(Clone, Debug)]
pub(super) struct Inputs {
    pub(super) schema: Option<Input>,
    pub(super) policies: Vec<Input>,
    pub(super) links: Vec<Input>,
    pub(super) principal_types: Option<Vec<String>>,
}

/// What [`compile`] makes of the schema and the policies.
pub(super) struct Compiled {
    pub(super) schemas: Schemas,
    /// The service's policies, templates and links.
    pub(super) main: PolicySet,
    /// The policies of jitgate's own actions.
    pub(super) review: PolicySet,
    pub(super) kinds: HashMap<cedar_policy::PolicyId, Kind>,
    /// A digest of the texts it was compiled from.
    pub(super) version: PolicyVersion,
}

fn sources_of(inputs: &[Input], errors: &mut Vec<CedarError>) -> Vec<Source> {
    let mut sources = Vec::new();
    for input in inputs {
        match input {
            Input::Text(s) => sources.push(s.clone()),
            Input::File(path) => sources.extend(read(path, errors)),
            Input::Dir(dir) => sources.extend(read_dir(dir, errors)),
        }
    }
    sources
}

/// Reads every input, parses the policies and templates, links the templates, splits the
/// policies of jitgate's own actions from the service's, validates each set (strict mode)
/// against its schema and checks every annotation: every error at once.
pub(super) fn compile(inputs: Inputs, limits: &AnnotationLimits) -> Result<Compiled, CedarErrors> {
    let mut errors = Vec::new();
    let schema_text = match &inputs.schema {
        Some(input) => read_schema(input, &mut errors),
        None => {
            errors.push(CedarError::Schema {
                message: "no schema given".into(),
                help: Some("call CedarPolicyBuilder::schema or schema_file with the service's Cedar schema".into()),
                source: Box::new(miette::MietteDiagnostic::new(
                    "CedarPolicyBuilder::build needs a schema",
                )),
            });
            None
        }
    };
    let sources = sources_of(&inputs.policies, &mut errors);
    let link_sources = sources_of(&inputs.links, &mut errors);
    let version = version_of(
        schema_text.as_deref(),
        &sources,
        &link_sources,
        inputs.principal_types.as_deref(),
    );
    let schemas = schema_text.and_then(|text| {
        schema::load(&text, inputs.principal_types.as_deref())
            .map_err(|e| errors.push(e))
            .ok()
    });
    let Parsed { set: mut all, origin } = parse(&sources, &mut errors);
    for links in &link_sources {
        crate::links::apply(links, &mut all, &mut errors);
    }
    let (main, review) = split(&all, &sources, &origin, &mut errors);
    let entity_types: HashSet<String> = match &schemas {
        Some(schemas) => {
            validate(&schemas.service, &main, &sources, &origin, &mut errors);
            validate(&schemas.review, &review, &sources, &origin, &mut errors);
            schemas.review.entity_types().map(|t| t.to_string()).collect()
        }
        None => HashSet::new(),
    };
    let mut kinds = HashMap::new();
    for t in all.templates() {
        // A template's annotations are checked whether or not it is linked.
        if let Err(e) = classify(t, &entity_types, limits) {
            errors.push(located(e, origin.get(&t.id().to_string()), &sources));
        }
    }
    for p in all.policies() {
        match classify(p, &entity_types, limits) {
            Ok(kind) => {
                kinds.insert(p.id().clone(), kind);
            }
            // A link's errors are its template's, reported above.
            Err(_) if !p.is_static() => {}
            Err(e) => errors.push(located(e, origin.get(&p.id().to_string()), &sources)),
        }
    }
    let schemas = match (schemas, CedarErrors::new(errors)) {
        (_, Some(errors)) => return Err(errors),
        (Some(schemas), None) => schemas,
        // A missing schema always left an error; this arm only keeps that promise typed.
        (None, None) => {
            return Err(CedarError::Schema {
                message: "no schema could be loaded".into(),
                help: None,
                source: Box::new(miette::MietteDiagnostic::new(
                    "CedarPolicyBuilder::build needs a schema",
                )),
            }
            .into())
        }
    };
    Ok(Compiled {
        schemas,
        main,
        review,
        kinds,
        version,
    })
}

/// The version of a set loaded from these texts: the schema, each policy file's text in load
/// order, each link file's, and the principal types if given. File names are left out, so the
/// same files give the same version wherever they are checked out.
fn version_of(
    schema: Option<&str>,
    policies: &[Source],
    links: &[Source],
    principal_types: Option<&[String]>,
) -> PolicyVersion {
    let types = principal_types.map(|t| t.join("\n"));
    let parts = std::iter::once(&b"jitgate-cedar policy set 1"[..])
        .chain(std::iter::once(schema.unwrap_or_default().as_bytes()))
        .chain(std::iter::once(&b"policies"[..]))
        .chain(policies.iter().map(|s| s.text.as_bytes()))
        .chain(std::iter::once(&b"links"[..]))
        .chain(links.iter().map(|s| s.text.as_bytes()))
        .chain(std::iter::once(&b"principal types"[..]))
        .chain(types.as_deref().map(str::as_bytes));
    PolicyVersion::digest(parts)
}

/// Splits `all` into the service's policies (with their templates and links) and the policies
/// of jitgate's own actions. A policy whose action scope names both kinds belongs to neither.
fn split(
    all: &PolicySet,
    sources: &[Source],
    origin: &HashMap<String, Origin>,
    errors: &mut Vec<CedarError>,
) -> (PolicySet, PolicySet) {
    let (mut main, mut review) = (PolicySet::new(), PolicySet::new());
    let place = |id: &cedar_policy::PolicyId| {
        origin
            .get(&id.to_string())
            .map_or_else(|| Source::new(id.to_string(), "").locate(0, 0), |o| o.location(sources))
    };
    for t in all.templates() {
        if is_jit_action_policy(t) {
            errors.push(CedarError::Validation {
                policy_id: t.id().to_string(),
                location: place(t.id()),
                message: "a template cannot be about jitgate's own actions".into(),
                help: Some("write review and revoke policies as static policies".into()),
            });
            continue;
        }
        // Adding a template to an empty set of fresh ids cannot fail.
        let _ = main.add_template(t.clone());
    }
    for p in all.policies() {
        if mixes_jit_and_service_actions(p) {
            errors.push(CedarError::Validation {
                policy_id: p.id().to_string(),
                location: place(p.id()),
                message: "the action scope names jitgate's actions (Jit::Action::\"review\", \"revoke\") and the service's together".into(),
                help: Some("write one policy for the service's actions and one for jitgate's".into()),
            });
            continue;
        }
        let set = if is_jit_action_policy(p) {
            &mut review
        } else {
            &mut main
        };
        if let Err(e) = crate::slice::add(set, all, p) {
            errors.push(CedarError::Validation {
                policy_id: p.id().to_string(),
                location: place(p.id()),
                message: e.to_string(),
                help: None,
            });
        }
    }
    (main, review)
}

/// An annotation error, located at the annotation in its policy's text.
fn located(e: CedarError, origin: Option<&Origin>, sources: &[Source]) -> CedarError {
    match (e, origin) {
        (
            CedarError::Annotation {
                policy_id,
                annotation,
                value,
                problem,
                location: None,
            },
            Some(o),
        ) => CedarError::Annotation {
            location: Some(o.annotation_location(sources, &annotation)),
            policy_id,
            annotation,
            value,
            problem,
        },
        (e, _) => e,
    }
}

/// Every strict-validation error, each at the span Cedar names (or its policy's text).
fn validate(
    schema: &Schema,
    set: &PolicySet,
    sources: &[Source],
    origin: &HashMap<String, Origin>,
    errors: &mut Vec<CedarError>,
) {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    for e in result.validation_errors() {
        let id = e.policy_id().to_string();
        let place = origin.get(&id);
        let location = place
            .and_then(|o| diagnostic_location(e, &sources[o.source]))
            .or_else(|| place.map(|o| o.location(sources)))
            .unwrap_or_else(|| Source::new(id.clone(), "").locate(0, 0));
        errors.push(CedarError::Validation {
            location,
            policy_id: id,
            message: e.to_string(),
            help: e.help().map(|h| h.to_string()),
        });
    }
}
