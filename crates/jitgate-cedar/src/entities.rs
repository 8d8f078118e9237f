//! Where group membership, team ownership and resource hierarchy come from.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use async_trait::async_trait;
use cedar_policy::{Entities, Entity, Schema};
use jitgate_core::{Clock, PolicyError};

use crate::decisions::{DecisionCache, DecisionLimits};
use crate::loader::{check_hierarchy, on_loader_thread, on_loader_thread_blocking};
use crate::slice::SliceIndex;
use crate::CedarError;

/// Supplies the entities policies consult, in one batch: principals with their groups,
/// resources with their parents and attributes. The service implements it over its directory
/// and inventory; [`JsonEntitiesFile`] reads a Cedar entities JSON file.
#[async_trait]
pub trait EntityProvider: Send + Sync {
    /// Every entity, with its attributes and parents.
    ///
    /// # Errors
    /// A [`CedarError`] (usually [`CedarError::Entities`] or [`CedarError::Io`]).
    async fn load(&self) -> Result<Vec<Entity>, CedarError>;

    /// Every entity, read with the service's schema at hand (what jitgate calls). The default
    /// is [`load`](Self::load); a provider that parses Cedar JSON overrides it so that the
    /// schema types the values, as Cedar does when given one: an entity reference written as
    /// `{"type", "id"}` and an extension value as `{"fn", "arg"}` where the schema expects them.
    ///
    /// # Errors
    /// A [`CedarError`] (usually [`CedarError::Entities`] or [`CedarError::Io`]).
    async fn load_with_schema(&self, schema: &Schema) -> Result<Vec<Entity>, CedarError> {
        let _ = schema;
        self.load().await
    }
}

/// Entities from a Cedar entities JSON file, read at every refresh.
#[derive(Clone, Debug)]
pub struct JsonEntitiesFile {
    path: PathBuf,
}

impl JsonEntitiesFile {
    /// Reads `path` at every refresh.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

/// Parses Cedar entities JSON text. The hierarchy may be at most [`MAX_HIERARCHY_DEPTH`]
/// deep; Cedar's work runs on a thread with a deep stack (this call waits for it).
///
/// [`MAX_HIERARCHY_DEPTH`]: crate::MAX_HIERARCHY_DEPTH
///
/// # Errors
/// [`CedarError::Entities`].
pub fn entities_from_json(text: &str) -> Result<Vec<Entity>, CedarError> {
    let text = text.to_owned();
    on_loader_thread_blocking(move || parse_json(&text, None))?
}

/// [`entities_from_json`], on the loader thread already; with a schema, values are read as it
/// types them (and must fit it).
fn parse_json(text: &str, schema: Option<&Schema>) -> Result<Vec<Entity>, CedarError> {
    let bad = |e: serde_json::Error| CedarError::Entities {
        message: "the entities JSON does not parse".into(),
        source: Some(Box::new(e)),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
    // The hierarchy's depth, before Cedar computes its transitive closure.
    let key = |v: &serde_json::Value| format!("{}::{}", v["type"], v["id"]);
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    for e in value.as_array().into_iter().flatten() {
        let ups = e["parents"].as_array().into_iter().flatten().map(key).collect();
        parents.insert(key(&e["uid"]), ups);
    }
    check_hierarchy(&parents)?;
    let parsed = Entities::from_json_value(value, schema).map_err(|e| CedarError::Entities {
        message: "the entities JSON does not parse".into(),
        source: Some(Box::new(e)),
    })?;
    Ok(parsed.iter().cloned().collect())
}

#[async_trait]
impl EntityProvider for JsonEntitiesFile {
    async fn load(&self) -> Result<Vec<Entity>, CedarError> {
        self.read(None).await
    }

    async fn load_with_schema(&self, schema: &Schema) -> Result<Vec<Entity>, CedarError> {
        self.read(Some(schema.clone())).await
    }
}

impl JsonEntitiesFile {
    async fn read(&self, schema: Option<Schema>) -> Result<Vec<Entity>, CedarError> {
        let path = self.path.clone();
        on_loader_thread(move || {
            let text = std::fs::read_to_string(&path).map_err(|source| CedarError::Io { path, source })?;
            parse_json(&text, schema.as_ref())
        })
        .await?
    }
}

/// Fixed entities, for tests and services whose hierarchy is compiled in.
#[derive(Clone, Debug, Default)]
pub struct StaticEntities(pub Vec<Entity>);

#[async_trait]
impl EntityProvider for StaticEntities {
    async fn load(&self) -> Result<Vec<Entity>, CedarError> {
        Ok(self.0.clone())
    }
}

pub(crate) struct Snapshot {
    pub(crate) entities: Entities,
    /// Policy slices for these entities, built with them.
    pub(crate) slices: SliceIndex,
    /// Decisions for these entities, if the cache is on.
    pub(crate) decisions: Option<std::sync::Mutex<DecisionCache>>,
    loaded_at: chrono::DateTime<chrono::Utc>,
}

/// The entity store, built once per refresh and shared by every call; never rebuilt per call.
pub(crate) struct EntityCache {
    provider: Arc<dyn EntityProvider>,
    schema: Schema,
    slicing: Arc<Slicing>,
    max_age: Option<Duration>,
    decision_capacity: Option<DecisionLimits>,
    clock: Arc<dyn Clock>,
    load_deadline: Duration,
    /// Read on every call without a lock (arc-swap), replaced whole by a refresh.
    current: ArcSwap<Snapshot>,
}

/// What a snapshot's slices are built from: the service's policies, the entity types that are
/// principals, the actions.
pub(crate) struct Slicing {
    pub(crate) policies: cedar_policy::PolicySet,
    pub(crate) principal_types: std::collections::HashSet<cedar_policy::EntityTypeName>,
    pub(crate) actions: Vec<cedar_policy::EntityUid>,
}

impl Slicing {
    /// Every type that is a principal of some action of `schema`, and every action.
    pub(crate) fn new(policies: cedar_policy::PolicySet, schema: &Schema) -> Self {
        Self {
            policies,
            principal_types: schema.principals().cloned().collect(),
            actions: schema.actions().cloned().collect(),
        }
    }
}

impl EntityCache {
    pub(crate) async fn load(
        provider: Arc<dyn EntityProvider>,
        schema: Schema,
        slicing: Slicing,
        max_age: Option<Duration>,
        decision_capacity: Option<DecisionLimits>,
        clock: Arc<dyn Clock>,
        load_deadline: Duration,
    ) -> Result<Self, CedarError> {
        let slicing = Arc::new(slicing);
        let snapshot = Self::build(
            &*provider,
            &schema,
            &slicing,
            decision_capacity,
            clock.now(),
            load_deadline,
        )
        .await?;
        Ok(Self {
            provider,
            schema,
            slicing,
            max_age,
            decision_capacity,
            clock,
            load_deadline,
            current: ArcSwap::from_pointee(snapshot),
        })
    }

    async fn build(
        provider: &dyn EntityProvider,
        schema: &Schema,
        slicing: &Arc<Slicing>,
        decision_capacity: Option<DecisionLimits>,
        now: chrono::DateTime<chrono::Utc>,
        load_deadline: Duration,
    ) -> Result<Snapshot, CedarError> {
        let list = jitgate_core::deadline::within(load_deadline, provider.load_with_schema(schema))
            .await
            .map_err(|elapsed| CedarError::Entities {
                message: format!("the entity provider did not answer within {load_deadline:?}"),
                source: Some(Box::new(elapsed)),
            })??;
        let schema = schema.clone();
        let slicing = Arc::clone(slicing);
        let (entities, slices) = on_loader_thread(move || {
            let parents: HashMap<String, Vec<String>> = list
                .iter()
                .map(|e| {
                    let (uid, _, ups) = e.clone().into_inner();
                    (uid.to_string(), ups.iter().map(ToString::to_string).collect())
                })
                .collect();
            check_hierarchy(&parents)?;
            let entities = Entities::from_entities(list, Some(&schema)).map_err(|e| CedarError::Entities {
                message: "the entities do not match the schema".into(),
                source: Some(Box::new(e)),
            })?;
            // Every slice now, not on first use: the first call after a refresh costs what any
            // other call costs.
            let slices = SliceIndex::new(&slicing.policies, &entities, &slicing.principal_types, &slicing.actions);
            Ok::<_, CedarError>((entities, slices))
        })
        .await??;
        Ok(Snapshot {
            entities,
            slices,
            decisions: decision_capacity.map(|c| std::sync::Mutex::new(DecisionCache::new(c))),
            loaded_at: now,
        })
    }

    /// Reloads from the provider (a new snapshot: new slices, an empty decision cache); on
    /// error the previous snapshot stays (until it is too old).
    pub(crate) async fn refresh(&self) -> Result<(), CedarError> {
        let built = Self::build(
            &*self.provider,
            &self.schema,
            &self.slicing,
            self.decision_capacity,
            self.clock.now(),
            self.load_deadline,
        );
        match built.await {
            Ok(snapshot) => {
                self.current.store(Arc::new(snapshot));
                Ok(())
            }
            Err(e) => {
                let loaded_at = self.current.load().loaded_at;
                tracing::warn!(
                    error = %jitgate_core::ErrorChain(&e),
                    %loaded_at,
                    max_age = ?self.max_age,
                    "entity refresh failed; the previous entities stay in use until they are too old, then decisions deny"
                );
                Err(e)
            }
        }
    }

    /// When the current snapshot was loaded.
    pub(crate) fn loaded_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.current.load().loaded_at
    }

    /// The current snapshot, unless it is older than the maximum age (then callers deny).
    pub(crate) fn current(&self) -> Result<Guard<Arc<Snapshot>>, PolicyError> {
        let snap = self.current.load();
        // The clock is read only when there is an age to check; the age is compared in whole
        // microseconds, read without building a date (chrono's date arithmetic costs more
        // than the rest of a cached call).
        let Some(max) = self.max_age else {
            return Ok(snap);
        };
        let age = self
            .clock
            .now_micros()
            .saturating_sub(snap.loaded_at.timestamp_micros());
        if age > i64::try_from(max.as_micros()).unwrap_or(i64::MAX) {
            return Err(PolicyError::msg(format!(
                "entities are {} s old, more than the allowed {max:?}: refresh them (CedarPolicy::refresh_entities)",
                age / 1_000_000
            )));
        }
        Ok(snap)
    }
}
