//! A policy set's version: the same texts give the same version wherever they are read from;
//! any edit gives another.

mod common;

use common::*;
use jitgate_core::Policy;

#[tokio::test]
async fn the_same_texts_give_the_same_version_wherever_they_live() {
    let from_files = policy().await.version().expect("a Cedar policy has a version");
    let copy = std::env::temp_dir().join(format!("jitgate-version-{}", std::process::id()));
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["access.cedar", "app.cedarschema", "entities.json"] {
        std::fs::copy(dir().join(name), copy.join(name)).unwrap();
    }
    let elsewhere = jitgate_cedar::CedarPolicy::builder()
        .schema_file(copy.join("app.cedarschema"))
        .policy_dir(&copy)
        .entities(std::sync::Arc::new(jitgate_cedar::JsonEntitiesFile::new(
            copy.join("entities.json"),
        )))
        .build()
        .await
        .unwrap();
    assert_eq!(elsewhere.version(), Some(from_files));
    std::fs::remove_dir_all(&copy).ok();

    let edited = with_extra_policies("// a comment is an edit too\n").await;
    assert_ne!(edited.version(), Some(from_files));
    let text = std::fs::read_to_string(dir().join("access.cedar")).unwrap();
    let as_text = with_policies(&text).await.unwrap();
    assert_eq!(as_text.version(), Some(from_files), "given as text or read from a file");
}
