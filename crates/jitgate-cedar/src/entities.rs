//! Where group membership, team ownership and resource hierarchy come from.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cedar_policy::{Entities, Entity, Schema};
use jitgate_core::PolicyError;

use crate::slice::SliceCache;
use crate::CedarError;

/// How many (principal, action) slices a snapshot keeps before starting over.
const SLICE_CAPACITY: usize = 100_000;

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

/// Parses Cedar entities JSON text.
///
/// # Errors
/// [`CedarError::Entities`].
pub fn entities_from_json(text: &str) -> Result<Vec<Entity>, CedarError> {
    let parsed = Entities::from_json_str(text, None).map_err(|e| CedarError::Entities {
        message: "the entities JSON does not parse".into(),
        source: Some(Box::new(e)),
    })?;
    Ok(parsed.iter().cloned().collect())
}

#[async_trait]
impl EntityProvider for JsonEntitiesFile {
    async fn load(&self) -> Result<Vec<Entity>, CedarError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| CedarError::Io {
            path: self.path.clone(),
            source,
        })?;
        entities_from_json(&text)
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

/// The key of a cached decision: everything `evaluate` reads.
pub(crate) type DecisionKey = (jitgate_core::EntityRef, jitgate_core::Scope, jitgate_core::Attributes);

pub(crate) struct Snapshot {
    pub(crate) entities: Entities,
    /// Policy slices for these entities.
    pub(crate) slices: SliceCache,
    /// Decisions for these entities, if the cache is on.
    pub(crate) decisions: Option<std::sync::Mutex<lru::LruCache<DecisionKey, jitgate_core::PolicyDecision>>>,
    loaded_at: Instant,
}

/// The entity store, built once per refresh and shared by every call; never rebuilt per call.
pub(crate) struct EntityCache {
    provider: Arc<dyn EntityProvider>,
    schema: Schema,
    max_age: Option<Duration>,
    decision_capacity: Option<std::num::NonZeroUsize>,
    current: RwLock<Arc<Snapshot>>,
}

impl EntityCache {
    pub(crate) async fn load(
        provider: Arc<dyn EntityProvider>,
        schema: Schema,
        max_age: Option<Duration>,
        decision_capacity: Option<std::num::NonZeroUsize>,
    ) -> Result<Self, CedarError> {
        let snapshot = Self::build(&*provider, &schema, decision_capacity).await?;
        Ok(Self {
            provider,
            schema,
            max_age,
            decision_capacity,
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    async fn build(
        provider: &dyn EntityProvider,
        schema: &Schema,
        decision_capacity: Option<std::num::NonZeroUsize>,
    ) -> Result<Snapshot, CedarError> {
        let list = provider.load().await?;
        let entities = Entities::from_entities(list, Some(schema)).map_err(|e| CedarError::Entities {
            message: "the entities do not match the schema".into(),
            source: Some(Box::new(e)),
        })?;
        Ok(Snapshot {
            entities,
            slices: SliceCache::new(SLICE_CAPACITY),
            decisions: decision_capacity.map(|c| std::sync::Mutex::new(lru::LruCache::new(c))),
            loaded_at: Instant::now(),
        })
    }

    /// Reloads from the provider (a new snapshot: new slices, an empty decision cache); on
    /// error the previous snapshot stays (until it is too old).
    pub(crate) async fn refresh(&self) -> Result<(), CedarError> {
        let snapshot = Self::build(&*self.provider, &self.schema, self.decision_capacity).await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// The current snapshot, unless it is older than the maximum age (then callers deny).
    pub(crate) fn current(&self) -> Result<Arc<Snapshot>, PolicyError> {
        let snap = Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()));
        match self.max_age {
            Some(max) if snap.loaded_at.elapsed() > max => Err(PolicyError::msg(format!(
                "entities are {:?} old, more than the allowed {max:?}: refresh them (CedarPolicy::refresh_entities)",
                snap.loaded_at.elapsed()
            ))),
            _ => Ok(snap),
        }
    }
}
