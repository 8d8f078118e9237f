//! [`CedarPolicyBuilder`]: schema, policies and entities, loaded and validated together. The
//! setters only record what to load; [`CedarPolicyBuilder::build`] reads the files, parses,
//! validates and checks every annotation, and reports every error it finds at once.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use cedar_policy::Authorizer;
use jitgate_core::EntityRef;

use super::compile::{compile, Compiled, Input, Inputs};
use super::CedarPolicy;
use crate::annotations::AnnotationLimits;
use crate::convert::TypeNames;
use crate::decisions::DecisionLimits;
use crate::entities::{EntityCache, EntityProvider, Slicing, StaticEntities};
use crate::error::CedarErrors;
use crate::load::Source;
use crate::loader::on_loader_thread;
use crate::schema::NAMESPACE;
use crate::CedarError;

/// Builds a [`CedarPolicy`]: schema, policies, entities. Setters take the builder by value
/// and do no I/O; [`build`](Self::build) does it all. A clone builds the same policy again
/// from the files as they are then (what [`LiveCedar`](crate::LiveCedar) does to reload).
#[derive(Clone)]
pub struct CedarPolicyBuilder {
    schema: Option<Input>,
    principal_types: Option<Vec<String>>,
    sources: Vec<Input>,
    links: Vec<Input>,
    provider: Option<Arc<dyn EntityProvider>>,
    max_age: Option<StdDuration>,
    entities_deadline: StdDuration,
    decision_cache: Option<std::num::NonZeroUsize>,
    decision_cache_bytes: usize,
    clock: Arc<dyn jitgate_core::Clock>,
    annotation_limits: AnnotationLimits,
}

impl std::fmt::Debug for CedarPolicyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarPolicyBuilder")
            .field("schema", &self.schema)
            .field("principal_types", &self.principal_types)
            .field("sources", &self.sources)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl CedarPolicyBuilder {
    pub(super) fn new() -> Self {
        Self {
            schema: None,
            principal_types: None,
            sources: Vec::new(),
            links: Vec::new(),
            provider: None,
            max_age: Some(crate::DEFAULT_ENTITIES_MAX_AGE),
            entities_deadline: crate::DEFAULT_ENTITIES_DEADLINE,
            decision_cache: None,
            decision_cache_bytes: crate::DEFAULT_DECISION_CACHE_BYTES,
            clock: Arc::new(jitgate_core::SystemClock),
            annotation_limits: AnnotationLimits::default(),
        }
    }

    /// The service's schema in Cedar schema syntax (required). The service's policies validate
    /// against it alone, as in bare Cedar; jitgate's review and revoke policies against it with
    /// jitgate's part merged in (see [`schema`](crate::schema)).
    #[must_use]
    pub fn schema(mut self, name: &str, cedarschema: &str) -> Self {
        self.schema = Some(Input::Text(Source::new(name, cedarschema)));
        self
    }

    /// The service's schema from a `.cedarschema` file (read by [`build`](Self::build)).
    #[must_use]
    pub fn schema_file(mut self, path: impl AsRef<Path>) -> Self {
        self.schema = Some(Input::File(path.as_ref().to_owned()));
        self
    }

    /// The one entity type that requests, reviews and holds grants (by default, every type that
    /// is a principal of some action of the schema). Same as `principal_types([name])`.
    #[must_use]
    pub fn principal_type(self, name: &str) -> Self {
        self.principal_types([name])
    }

    /// The entity types that request, review and hold grants (by default, every type that is a
    /// principal of some action of the schema). Each must be declared in the schema. With one
    /// type, review policies can read `resource.requester` (and revoke policies
    /// `resource.holder`); Cedar has no union types, so with several they cannot.
    #[must_use]
    pub fn principal_types<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.principal_types = Some(names.into_iter().map(|n| n.as_ref().to_owned()).collect());
        self
    }

    /// Adds policy text; `name` is what errors call it.
    #[must_use]
    pub fn policies(mut self, name: &str, text: &str) -> Self {
        self.sources.push(Input::Text(Source::new(name, text)));
        self
    }

    /// Adds the policies of a `.cedar` file (read by [`build`](Self::build)).
    #[must_use]
    pub fn policy_file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.push(Input::File(path.as_ref().to_owned()));
        self
    }

    /// Adds every `.cedar` file of a directory, in name order (read by [`build`](Self::build)).
    #[must_use]
    pub fn policy_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.sources.push(Input::Dir(dir.as_ref().to_owned()));
        self
    }

    /// Links templates of the policies: a JSON list of `{"template_id", "link_id", "args":
    /// {"?principal": "Type::\"id\"", "?resource": …}}`, the form the Cedar CLI reads;
    /// `name` is what errors call it. A link's id is its policy id (in decisions and `explain`);
    /// it carries its template's annotations.
    #[must_use]
    pub fn template_links(mut self, name: &str, json: &str) -> Self {
        self.links.push(Input::Text(Source::new(name, json)));
        self
    }

    /// Links templates as a JSON file says (read by [`build`](Self::build)); see
    /// [`template_links`](Self::template_links).
    #[must_use]
    pub fn template_links_file(mut self, path: impl AsRef<Path>) -> Self {
        self.links.push(Input::File(path.as_ref().to_owned()));
        self
    }

    /// Where entities come from (default: none). They are loaded by [`build`](Self::build)
    /// and then only by [`CedarPolicy::refresh_entities`].
    #[must_use]
    pub fn entities(mut self, provider: Arc<dyn EntityProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Deny (fail closed) once the entities are older than this without a refresh (default
    /// [`DEFAULT_ENTITIES_MAX_AGE`](crate::DEFAULT_ENTITIES_MAX_AGE), one hour), measured on the
    /// builder's [`clock`](Self::clock).
    #[must_use]
    pub fn entities_max_age(mut self, max_age: StdDuration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Bounds on the numbers and durations in jitgate's annotations (default
    /// [`AnnotationLimits::default`]: 100 approvals, 1,000 uses, `P366D`), checked at load.
    #[must_use]
    pub fn annotation_limits(mut self, limits: AnnotationLimits) -> Self {
        self.annotation_limits = limits;
        self
    }

    /// How long the entity provider may take to load (default
    /// [`DEFAULT_ENTITIES_DEADLINE`](crate::DEFAULT_ENTITIES_DEADLINE), 30 s). A provider that
    /// takes longer fails the load with [`CedarError::Entities`](crate::CedarError::Entities);
    /// on a refresh the previous entities stay in use (until they are too old).
    #[must_use]
    pub fn entities_deadline(mut self, deadline: StdDuration) -> Self {
        self.entities_deadline = deadline;
        self
    }

    /// Entities never grow too old: only for entities that cannot change (compiled in, or
    /// replaced with the whole policy). Say it explicitly; the default is a maximum age.
    #[must_use]
    pub fn entities_never_expire(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// The clock the entities' age is measured on (default the system clock); a test's
    /// `ManualClock` makes it deterministic.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn jitgate_core::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Caches up to `capacity` policy decisions, keyed by principal, action, resource and the
    /// context attributes some policy reads (found from the policies; a per-call attribute no
    /// policy reads does not defeat the cache) (off by default). Where no policy of the action
    /// reads the principal past its scope and opening principal conditions, the key is the
    /// principal's class instead (its type, the groups policy scopes name, the values of those
    /// conditions): one call answers every principal of the class. Decisions do not depend on time or grants (grants are
    /// looked up after the policy answers), so the cache is only emptied by an entity refresh;
    /// a policy reload builds a new `CedarPolicy`, with a new cache. A `capacity` of 0 leaves
    /// it off. See [`CedarPolicy::decision_cache_stats`].
    #[must_use]
    pub fn decision_cache(mut self, capacity: usize) -> Self {
        self.decision_cache = std::num::NonZeroUsize::new(capacity);
        self
    }
    /// Bounds the decision cache in bytes too (estimated: keys, contexts, decisions; default
    /// [`DEFAULT_DECISION_CACHE_BYTES`](crate::DEFAULT_DECISION_CACHE_BYTES), 32 MiB): a stream of
    /// calls with large, ever-different contexts cannot grow it past this.
    #[must_use]
    pub fn decision_cache_bytes(mut self, max: usize) -> Self {
        self.decision_cache_bytes = max;
        self
    }

    /// What it loads (schema, policies, links, principal types).
    fn inputs(&self) -> Inputs {
        Inputs {
            schema: self.schema.clone(),
            policies: self.sources.clone(),
            links: self.links.clone(),
            principal_types: self.principal_types.clone(),
        }
    }

    /// The version the policy would have if built now: a digest of the schema, policy and link
    /// texts as the files read now (see [`CedarPolicy`]'s [`version`](jitgate_core::Policy::version)).
    /// Reads the files; an unreadable one gives a digest of the error.
    pub fn fingerprint(&self) -> jitgate_core::PolicyVersion {
        super::compile::fingerprint(&self.inputs())
    }

    /// Reads every file, parses every policy and template, links the templates, validates the
    /// service's policies against its schema and the review/revoke policies against the review
    /// schema (strict mode), checks every annotation, then loads the entities.
    ///
    /// # Errors
    /// [`CedarErrors`]: every error found — I/O, schema, parse (each file's parse errors with
    /// their spans), validation (every error, located), annotation (naming the policy and
    /// annotation, located), duplicate id — or the entities' error. Each is a
    /// [`miette::Diagnostic`] with the source text and a labelled span.
    pub async fn build(self) -> Result<CedarPolicy, CedarErrors> {
        let inputs = self.inputs();
        let limits = self.annotation_limits;
        // Reading, parsing and validating run on a thread of their own with a deep stack: Cedar's
        // parser recurses, and no async worker waits on files or on a large policy set.
        let Compiled {
            schemas,
            main,
            review,
            kinds,
            version,
        } = on_loader_thread(move || compile(inputs, &limits)).await??;
        let provider = self.provider.unwrap_or_else(|| Arc::new(StaticEntities::default()));
        let slicing = Slicing::new(main.clone(), &schemas.service);
        let entities = EntityCache::load(
            provider,
            schemas.service.clone(),
            slicing,
            self.max_age,
            self.decision_cache.map(|entries| DecisionLimits {
                entries,
                bytes: self.decision_cache_bytes,
            }),
            self.clock,
            self.entities_deadline,
        )
        .await?;
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
        let audit_action = internal(uid(&format!("{NAMESPACE}::Action"), "read_audit"))?;
        let audit_trail = internal(uid(&format!("{NAMESPACE}::AuditTrail"), "trail"))?;
        let context_reads = crate::context_reads::ReadsByAction::of(&main, &schemas.service);
        Ok(CedarPolicy {
            version,
            context_reads,
            principal_types: schemas.principal_types,
            schema: schemas.review,
            service_schema: schemas.service,
            main,
            review,
            kinds,
            entities,
            types,
            authorizer: Authorizer::new(),
            review_action,
            revoke_action,
            audit_action,
            audit_trail,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }
}
