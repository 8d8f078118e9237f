//! The example policy set in `examples/policies/`, loaded for tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use jitgate_cedar::{CedarErrors, CedarPolicy, CedarPolicyBuilder, JsonEntitiesFile};
use jitgate_core::{Action, EntityRef};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

pub fn builder() -> CedarPolicyBuilder {
    CedarPolicy::builder()
        .schema_file(dir().join("app.cedarschema"))
        .policy_dir(dir())
        .entities(Arc::new(JsonEntitiesFile::new(dir().join("entities.json"))))
}

pub async fn policy() -> CedarPolicy {
    builder().build().await.expect("the example policies load")
}

/// Loads the example schema with `text` as the only policies.
pub async fn with_policies(text: &str) -> Result<CedarPolicy, CedarErrors> {
    CedarPolicy::builder()
        .schema_file(dir().join("app.cedarschema"))
        .policies("test.cedar", text)
        .entities(Arc::new(JsonEntitiesFile::new(dir().join("entities.json"))))
        .build()
        .await
}

pub fn user(id: &str) -> EntityRef {
    EntityRef::new("User", id)
}

pub fn act(action: &str, ty: &str, id: &str) -> Action {
    Action::new(EntityRef::new("Action", action), EntityRef::new(ty, id))
}

/// The example policies plus `extra` policy text, with the example schema and entities.
pub async fn with_extra_policies(extra: &str) -> CedarPolicy {
    let text = std::fs::read_to_string(dir().join("access.cedar")).unwrap() + "\n" + extra;
    with_policies(&text)
        .await
        .expect("the example policies plus the extra ones load")
}
