//! `LiveCedar`: edited policy files are reloaded off the hot path and swapped in; an invalid
//! set is refused with its located errors and the old one stays in force.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use jitgate_cedar::{CedarPolicy, CedarPolicyBuilder, JsonEntitiesFile, LiveCedar, ReloadError, ReloadOutcome};
use jitgate_core::runtime::{Intervals, Runtime};
use jitgate_core::*;

/// A copy of the example policy directory, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("jitgate-reload-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["access.cedar", "app.cedarschema", "entities.json"] {
            std::fs::copy(common::dir().join(name), dir.join(name)).unwrap();
        }
        Self(dir)
    }

    fn recipe(&self) -> CedarPolicyBuilder {
        CedarPolicy::builder()
            .schema_file(self.0.join("app.cedarschema"))
            .policy_dir(&self.0)
            .entities(Arc::new(JsonEntitiesFile::new(self.0.join("entities.json"))))
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

async fn live(copy: &Copy) -> (Gate, LiveCedar) {
    let recipe = copy.recipe();
    let policy = Arc::new(recipe.clone().build().await.unwrap());
    let gate = Gate::builder()
        .policy(policy.clone())
        .store(Arc::new(MemoryStore::new()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .build()
        .unwrap();
    let live = LiveCedar::new(gate.clone(), recipe, policy);
    (gate, live)
}

const NO_LOGS_FOR_SAM: &str =
    "@id(\"no-logs-for-sam\")\nforbid(principal == User::\"sam\", action == Action::\"read_logs\", resource);\n";

fn logs() -> Action {
    act("read_logs", "Service", "orders")
}

#[tokio::test]
async fn an_edited_file_is_reloaded_and_decides_the_next_call() {
    let copy = Copy::new("edit");
    let (gate, live) = live(&copy).await;
    let first = gate.policy_version().unwrap();
    assert_eq!(live.version(), Some(first));
    assert!(gate.authorize(&logs(), &user("sam")).await.is_allowed());
    assert_eq!(live.reload_if_changed().await.unwrap(), ReloadOutcome::Unchanged);

    copy.write("freeze.cedar", NO_LOGS_FOR_SAM);
    let ReloadOutcome::Loaded(second) = live.reload_if_changed().await.unwrap() else {
        panic!("the new file was not loaded")
    };
    assert_ne!(first, second);
    assert_eq!(gate.policy_version(), Some(second));
    let d = gate.authorize(&logs(), &user("sam")).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::Forbidden { policy_ids }, policy_version: Some(v) }
            if policy_ids == &["no-logs-for-sam".to_string()] && *v == second),
        "{d:?}"
    );
    assert_eq!(live.reloads(), 1);
}

#[tokio::test]
async fn an_invalid_set_is_refused_with_located_errors_and_the_old_one_stays() {
    let copy = Copy::new("invalid");
    let (gate, live) = live(&copy).await;
    let first = gate.policy_version();
    copy.write(
        "broken.cedar",
        "permit(principal, action == Action::\"read_logs\", resource)\n  when { principal.nope };\n",
    );
    let refused = live.reload_if_changed().await.unwrap_err();
    let ReloadError::Invalid(errors) = &refused else {
        panic!("expected the set to be invalid: {refused}")
    };
    let location = errors.first().location().expect("the error is located");
    assert!(location.to_string().contains("broken.cedar"), "{location}");
    assert!(refused.to_string().contains("previous one stays"), "{refused}");
    assert_eq!(gate.policy_version(), first, "the old set stays in force");
    assert!(gate.authorize(&logs(), &user("sam")).await.is_allowed());
    assert!(
        matches!(live.last_reload(), ReloadOutcome::Refused { ref message, .. } if message.contains("broken.cedar"))
    );
    // The same files are not tried again; fixed files are.
    assert_eq!(live.reload_if_changed().await.unwrap(), ReloadOutcome::Unchanged);
    assert_eq!(live.failures(), 1);
    copy.write("broken.cedar", NO_LOGS_FOR_SAM);
    assert!(matches!(
        live.reload_if_changed().await.unwrap(),
        ReloadOutcome::Loaded(_)
    ));
    assert!(!gate.authorize(&logs(), &user("sam")).await.is_allowed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtimes_reloader_picks_up_an_edit_without_a_restart() {
    let copy = Copy::new("runtime");
    let (gate, live) = live(&copy).await;
    let handle = Runtime::for_gate(&gate, Intervals::default())
        .task(live.reloader(Duration::from_millis(20)))
        .task(live.entity_refresher(Duration::from_millis(50)))
        .start();
    copy.write("freeze.cedar", NO_LOGS_FOR_SAM);
    let mut allowed = true;
    for _ in 0..500 {
        allowed = gate.authorize(&logs(), &user("sam")).await.is_allowed();
        if !allowed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!allowed, "the edit was not picked up within 5 s");
    assert!(handle.status().iter().all(|s| s.failures == 0), "{:?}", handle.status());
    assert!(handle.shutdown(Duration::from_secs(5)).await.aborted.is_empty());
}

#[tokio::test]
async fn a_set_handed_in_through_the_api_is_put_in_force() {
    let copy = Copy::new("api");
    let (gate, live) = live(&copy).await;
    let text = std::fs::read_to_string(copy.0.join("access.cedar")).unwrap() + NO_LOGS_FOR_SAM;
    let recipe = CedarPolicy::builder()
        .schema_file(copy.0.join("app.cedarschema"))
        .policies("handed-in.cedar", &text)
        .entities(Arc::new(JsonEntitiesFile::new(copy.0.join("entities.json"))));
    let version = live.load(recipe).await.unwrap();
    assert_eq!(gate.policy_version(), Some(version));
    assert!(!gate.authorize(&logs(), &user("sam")).await.is_allowed());
    // A set that does not load is refused through the API too.
    let bad = CedarPolicy::builder()
        .schema_file(copy.0.join("app.cedarschema"))
        .policies("bad.cedar", "permit(principal, action, resource) when { 1 + };");
    assert!(matches!(live.load(bad).await, Err(ReloadError::Invalid(_))));
    assert_eq!(gate.policy_version(), Some(version));
}

#[tokio::test]
async fn a_set_that_does_not_fit_the_gate_is_refused_and_the_old_one_stays() {
    let copy = Copy::new("refused");
    // A gate with no destination for break-glass alerts, on a set without break-glass.
    let plain = CedarPolicy::builder()
        .schema_file(copy.0.join("app.cedarschema"))
        .policies(
            "plain.cedar",
            "@id(\"logs\")\npermit(principal, action == Action::\"read_logs\", resource);",
        );
    let policy = Arc::new(plain.clone().build().await.unwrap());
    let gate = Gate::builder()
        .policy(policy.clone())
        .store(Arc::new(MemoryStore::new()))
        .notifier(Arc::new(MemoryNotifier::new()))
        .build()
        .unwrap();
    let live = LiveCedar::new(gate.clone(), plain, policy);
    let before = gate.policy_version();
    // The example set allows break-glass: its alerts would reach nobody.
    let refused = live.load(copy.recipe()).await.unwrap_err();
    assert!(
        matches!(&refused, ReloadError::Refused(e) if e.to_string().contains("break-glass")),
        "{refused}"
    );
    assert_eq!(gate.policy_version(), before);
    assert_eq!(live.version(), before);
    assert_eq!((live.reloads(), live.failures()), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_entity_refresh_is_reported_and_the_entities_in_use_stay() {
    let copy = Copy::new("refresh");
    let (gate, live) = live(&copy).await;
    std::fs::remove_file(copy.0.join("entities.json")).unwrap();
    let handle = Runtime::new()
        .backoff(jitgate_core::runtime::Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(20),
        ))
        .task(live.entity_refresher(Duration::from_millis(10)))
        .start();
    let mut failed = None;
    for _ in 0..500 {
        let status = handle.status();
        if status[0].failures > 0 {
            failed = status[0].last_error.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failed = failed.expect("the refresher's failure is reported within 5 s");
    assert!(failed.contains("entities.json"), "{failed}");
    assert!(
        gate.authorize(&logs(), &user("sam")).await.is_allowed(),
        "the loaded entities stay"
    );
    handle.shutdown(Duration::from_secs(5)).await;
}
