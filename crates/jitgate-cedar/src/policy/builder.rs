//! [`CedarPolicyBuilder`]: schema, policies and entities, loaded and validated together.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use cedar_policy::{Authorizer, PolicySet, Schema, ValidationMode, Validator};
use jitgate_core::EntityRef;
use miette::Diagnostic;

use crate::annotations::{classify, Kind};
use crate::convert::TypeNames;
use crate::entities::{EntityCache, EntityProvider, StaticEntities};
use crate::load::{diagnostic_location, parse, Source};
use crate::schema::{merged, NAMESPACE};
use crate::CedarError;

use super::CedarPolicy;

/// Builds a [`CedarPolicy`]: schema, policies, entities.
pub struct CedarPolicyBuilder {
    pub(super) schema: Option<(String, String)>,
    pub(super) principal_type: String,
    pub(super) sources: Vec<Source>,
    pub(super) provider: Option<Arc<dyn EntityProvider>>,
    pub(super) max_age: Option<StdDuration>,
    pub(super) decision_cache: Option<std::num::NonZeroUsize>,
    pub(super) errors: Vec<CedarError>,
}

impl CedarPolicyBuilder {
    /// The service's schema in Cedar schema syntax (required). jitgate's part is merged in.
    #[must_use]
    pub fn schema(mut self, name: &str, cedarschema: &str) -> Self {
        self.schema = Some((name.to_owned(), cedarschema.to_owned()));
        self
    }

    /// Reads the service's schema from a `.cedarschema` file.
    #[must_use]
    pub fn schema_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.schema = Some((path.display().to_string(), text)),
            Err(source) => self.errors.push(CedarError::Io {
                path: path.to_owned(),
                source,
            }),
        }
        self
    }

    /// The entity type of requesters and reviewers (default `User`).
    #[must_use]
    pub fn principal_type(mut self, name: &str) -> Self {
        name.clone_into(&mut self.principal_type);
        self
    }

    /// Adds policy text; `name` is what errors call it.
    #[must_use]
    pub fn policies(mut self, name: &str, text: &str) -> Self {
        self.sources.push(Source {
            name: name.to_owned(),
            text: text.to_owned(),
        });
        self
    }

    /// Adds the policies of a `.cedar` file.
    #[must_use]
    pub fn policy_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.sources.push(Source {
                name: path.display().to_string(),
                text,
            }),
            Err(source) => self.errors.push(CedarError::Io {
                path: path.to_owned(),
                source,
            }),
        }
        self
    }

    /// Adds every `.cedar` file of a directory, in name order.
    #[must_use]
    pub fn policy_dir(mut self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
                .collect(),
            Err(source) => {
                self.errors.push(CedarError::Io {
                    path: dir.to_owned(),
                    source,
                });
                return self;
            }
        };
        files.sort();
        for f in files {
            self = self.policy_file(f);
        }
        self
    }

    /// Where entities come from (default: none). They are loaded by [`build`](Self::build)
    /// and then only by [`CedarPolicy::refresh_entities`].
    #[must_use]
    pub fn entities(mut self, provider: Arc<dyn EntityProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Deny (fail closed) once the entities are older than this without a refresh.
    #[must_use]
    pub fn entities_max_age(mut self, max_age: StdDuration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Caches up to `capacity` policy decisions, keyed by principal, action, resource and the
    /// whole context (off by default). Decisions do not depend on time or grants (grants are
    /// looked up after the policy answers), so the cache is only emptied by an entity refresh;
    /// a policy reload builds a new `CedarPolicy`, with a new cache. A `capacity` of 0 leaves
    /// it off. See [`CedarPolicy::decision_cache_stats`].
    #[must_use]
    pub fn decision_cache(mut self, capacity: usize) -> Self {
        self.decision_cache = std::num::NonZeroUsize::new(capacity);
        self
    }

    /// Parses, validates (strict mode) and checks every annotation, then loads the entities.
    ///
    /// # Errors
    /// The first [`CedarError`]: I/O, schema, parse (with line and column), validation,
    /// annotation (naming the policy and annotation), duplicate id, entities.
    pub async fn build(self) -> Result<CedarPolicy, CedarError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let Some((_, schema_text)) = self.schema else {
            return Err(CedarError::Schema {
                message: "no schema given".into(),
                help: Some("call CedarPolicyBuilder::schema or schema_file with the service's Cedar schema".into()),
                source: Box::new(miette::MietteDiagnostic::new(
                    "CedarPolicyBuilder::build needs a schema",
                )),
            });
        };
        let schema = merged(&schema_text, &self.principal_type)?;
        let (all, origin) = parse(&self.sources)?;
        validate(&schema, &all, &self.sources, &origin)?;
        let entity_types: HashSet<String> = schema.entity_types().map(|t| t.to_string()).collect();
        let mut kinds = HashMap::new();
        let (mut main, mut review) = (PolicySet::new(), PolicySet::new());
        for p in all.policies() {
            let kind = classify(p, &entity_types)?;
            let add = |set: &mut PolicySet| {
                set.add(p.clone()).map_err(|e| CedarError::Validation {
                    policy_id: p.id().to_string(),
                    location: crate::error::Location {
                        source_name: String::new(),
                        line: 0,
                        column: 0,
                        snippet: String::new(),
                    },
                    message: e.to_string(),
                    help: None,
                })
            };
            match &kind {
                Kind::Review { .. } => add(&mut review)?,
                // Forbids and permits of any action apply to reviews and revokes too.
                Kind::Forbid => {
                    add(&mut main)?;
                    add(&mut review)?;
                }
                Kind::Standing if matches!(p.action_constraint(), cedar_policy::ActionConstraint::Any) => {
                    add(&mut main)?;
                    add(&mut review)?;
                }
                Kind::Standing | Kind::Jit(_) => add(&mut main)?,
            }
            kinds.insert(p.id().clone(), kind);
        }
        let provider = self.provider.unwrap_or_else(|| Arc::new(StaticEntities::default()));
        let entities = EntityCache::load(provider, schema.clone(), self.max_age, self.decision_cache).await?;
        let uid = |ty: &str, id: &str| EntityRef::new(ty, id);
        let types = TypeNames::default();
        let internal = |e: EntityRef| {
            types.uid(&e).map_err(|e| CedarError::Schema {
                message: "one of jitgate's own entity types is not a valid Cedar type name".into(),
                help: None,
                source: Box::new(miette::MietteDiagnostic::new(e.to_string())),
            })
        };
        let review_action = internal(uid(&format!("{NAMESPACE}::Action"), "review"))?;
        let revoke_action = internal(uid(&format!("{NAMESPACE}::Action"), "revoke"))?;
        Ok(CedarPolicy {
            schema,
            main,
            review,
            kinds,
            entities,
            types,
            authorizer: Authorizer::new(),
            review_action,
            revoke_action,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }
}

fn validate(
    schema: &Schema,
    set: &PolicySet,
    sources: &[Source],
    origin: &HashMap<String, usize>,
) -> Result<(), CedarError> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let mut errors = result.validation_errors();
    if let Some(e) = errors.next() {
        let more = errors.count();
        let id = e.policy_id().to_string();
        let source = origin.get(&id).map_or_else(
            || Source {
                name: id.clone(),
                text: String::new(),
            },
            |i| sources[*i].clone(),
        );
        let message = if more > 0 {
            format!("{e} (and {more} more validation error(s))")
        } else {
            e.to_string()
        };
        return Err(CedarError::Validation {
            location: diagnostic_location(e, &source),
            policy_id: id,
            message,
            help: e.help().map(|h| h.to_string()),
        });
    }
    Ok(())
}
