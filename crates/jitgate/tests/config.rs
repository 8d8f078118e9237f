//! `jitgate::config`: the documented file parses to the defaults it claims, errors name their
//! field, the environment overrides the file, and a configuration starts a working gate whose
//! policy files are reloaded when edited.

use std::path::PathBuf;
use std::time::Duration;

use jitgate::config::{Config, ConfigError, StartError};
use jitgate::{Action, EntityRef, NewRequest};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The TOML block of docs/configuration.md.
fn documented() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    doc[start..start + doc[start..].find("```").unwrap()].to_owned()
}

/// A directory holding `files` (name, text), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("jitgate-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        for name in ["access.cedar", "app.cedarschema", "entities.json"] {
            std::fs::copy(
                repo().join("examples/policies").join(name),
                dir.join("policies").join(name),
            )
            .unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn load(dir: &Dir) -> Result<Config, ConfigError> {
    Config::load(dir.path("jitgate.toml"))
}

#[test]
fn the_documented_file_parses_and_its_values_are_the_defaults() {
    let dir = Dir::new("doc", &[("jitgate.toml", &documented())]);
    let config = load(&dir).expect("the documented file parses");
    let defaults = Config::default();
    assert_eq!(format!("{:?}", config.store), format!("{:?}", defaults.store));
    assert_eq!(format!("{:?}", config.gate), format!("{:?}", defaults.gate));
    assert_eq!(format!("{:?}", config.runtime), format!("{:?}", defaults.runtime));
    assert_eq!(format!("{:?}", config.audit), format!("{:?}", defaults.audit));
    let (mut delivery, mut expected) = (config.delivery.clone(), defaults.delivery.clone());
    assert_eq!(delivery.security, ["Team::\"security\""]);
    (delivery.security, expected.security) = (Vec::new(), Vec::new());
    assert_eq!(format!("{delivery:?}"), format!("{expected:?}"));
    assert_eq!(config.policy.reload_every, defaults.policy.reload_every);
    assert_eq!(config.entities.refresh_every, defaults.entities.refresh_every);
    assert_eq!(config.entities.max_age, defaults.entities.max_age);
    // Every limit written out is the default.
    let limits = |c: &Config| format!("{:?}", c.limits);
    assert_ne!(limits(&config), limits(&defaults), "the file names every limit");
    let doc_limits = jitgate::Limits::default();
    let l = &config.limits;
    assert_eq!(l.text_bytes, Some(doc_limits.text_bytes));
    assert_eq!(l.entity_id_bytes, Some(doc_limits.entity_id_bytes));
    assert_eq!(l.attributes_bytes, Some(doc_limits.attributes_bytes));
    assert_eq!(l.attributes_depth, Some(doc_limits.attributes_depth));
    assert_eq!(l.page_size, Some(doc_limits.page_size));
    assert_eq!(l.pending_per_principal, Some(doc_limits.pending_per_principal));
    assert_eq!(
        l.unacknowledged_break_glass,
        Some(doc_limits.unacknowledged_break_glass)
    );
    assert_eq!(l.start_ahead, doc_limits.start_ahead.to_std().ok());
    assert_eq!(l.duration, doc_limits.duration.to_std().ok());
    // Paths are resolved against the file's directory.
    let schema = config.policy.schema.as_ref().unwrap().relative();
    assert_eq!(schema, dir.path("policies/app.cedarschema"));
}

fn error_of(text: &str) -> ConfigError {
    let dir = Dir::new("err", &[("jitgate.toml", text)]);
    load(&dir).expect_err("the file is wrong")
}

const MINIMAL: &str = "[policy]\nschema = \"policies/app.cedarschema\"\npolicies = [\"policies\"]\n";

#[test]
fn errors_name_the_field_and_where_the_value_came_from() {
    let wrong_type = error_of(&format!("{MINIMAL}[runtime]\nsweep_every = 5\n"));
    assert_eq!(
        wrong_type.field().as_deref(),
        Some("runtime.sweep_every"),
        "{wrong_type}"
    );
    assert!(wrong_type.to_string().contains("jitgate.toml"), "{wrong_type}");

    let bad_duration = error_of(&format!("{MINIMAL}[gate]\nverb_deadline = \"5 parsecs\"\n"));
    assert_eq!(
        bad_duration.field().as_deref(),
        Some("gate.verb_deadline"),
        "{bad_duration}"
    );

    let unknown = error_of(&format!("{MINIMAL}[store]\nurll = \"x\"\n"));
    assert!(unknown.to_string().contains("urll"), "{unknown}");

    let missing = error_of("[store]\nkind = \"memory\"\n");
    assert_eq!(missing.field().as_deref(), Some("policy.schema"), "{missing}");

    let no_url = error_of(&format!("{MINIMAL}[store]\nkind = \"postgres\"\n"));
    assert_eq!(no_url.field().as_deref(), Some("store.url"), "{no_url}");

    let ages_out = error_of(&format!("{MINIMAL}[entities]\nrefresh_every = \"2h\"\n"));
    assert_eq!(
        ages_out.field().as_deref(),
        Some("entities.refresh_every"),
        "{ages_out}"
    );

    let twice = error_of(&format!(
        "{MINIMAL}[[destinations]]\nname = \"a\"\n[[destinations]]\nname = \"a\"\n"
    ));
    assert_eq!(twice.field().as_deref(), Some("destinations[1].name"), "{twice}");

    let nothing_streams = error_of(&format!("{MINIMAL}[store]\nrelease_streamed_audit = true\n"));
    assert_eq!(
        nothing_streams.field().as_deref(),
        Some("store.release_streamed_audit"),
        "{nothing_streams}"
    );
    assert!(
        nothing_streams.to_string().contains("audit.stream_file"),
        "{nothing_streams}"
    );
    let keeps_its_chain = error_of(&format!(
        "{MINIMAL}[store]\nkind = \"postgres\"\nurl = \"postgres://db/jitgate\"\nrelease_streamed_audit = true\n\
         [audit]\nstream_file = \"records.jsonl\"\n"
    ));
    assert_eq!(
        keeps_its_chain.field().as_deref(),
        Some("store.release_streamed_audit"),
        "{keeps_its_chain}"
    );
    assert!(
        keeps_its_chain.to_string().contains("only the memory store"),
        "{keeps_its_chain}"
    );

    let syntax = error_of("[policy\n");
    assert!(
        syntax.to_string().contains("jitgate.toml") || syntax.to_string().contains("TOML"),
        "{syntax}"
    );
}

#[test]
fn the_environment_overrides_the_file() {
    // The only test that sets this variable; no other test reads the field.
    std::env::set_var("JITGATE_RUNTIME__SHUTDOWN_WITHIN", "3s");
    let dir = Dir::new(
        "env",
        &[(
            "jitgate.toml",
            &format!("{MINIMAL}[runtime]\nshutdown_within = \"9s\"\n"),
        )],
    );
    // Not configuration: ignored, not an unknown field.
    std::env::set_var("JITGATE_SOMETHING_ELSE", "1");
    let config = load(&dir).unwrap();
    std::env::remove_var("JITGATE_RUNTIME__SHUTDOWN_WITHIN");
    assert_eq!(config.runtime.shutdown_within, Duration::from_secs(3));
}

fn logs() -> Action {
    Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    )
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_starts_a_gate_that_picks_up_edited_policies() {
    let toml = format!(
        "{MINIMAL}reload_every = \"20ms\"\n[entities]\nfile = \"policies/entities.json\"\n\
         [delivery]\nsecurity = ['Team::\"security\"']\n[[destinations]]\nname = \"log\"\n\
         [audit]\nstream_file = \"records.jsonl\"\nstream_every = \"10ms\"\n\
         [store]\nrelease_streamed_audit = true\n"
    );
    let dir = Dir::new("start", &[("jitgate.toml", &toml)]);
    let running = load(&dir).unwrap().start().await.expect("the configuration starts");
    let sam = EntityRef::new("User", "sam");
    assert!(running.gate.authorize(&logs(), &sam).await.is_allowed());
    let names: Vec<String> = running.runtime.status().into_iter().map(|s| s.name).collect();
    for task in [
        "sweeper",
        "dispatcher",
        "audit writer",
        "policy reloader",
        "entity refresher",
        "audit streamer",
    ] {
        assert!(names.iter().any(|n| n == task), "{task} is not running: {names:?}");
    }
    // The streamed records leave the memory store; the chain verifies from there.
    let ask = NewRequest::new(
        sam.clone(),
        Action::new(
            EntityRef::new("Action", "db_restart"),
            EntityRef::new("Database", "orders-staging"),
        ),
        chrono::Duration::minutes(30),
    );
    running.gate.request(ask).await.expect("a request");
    let gate = running.gate.clone();
    wait_until("the streamed records to be released", async || {
        gate.verify_audit().await.is_ok_and(|r| r.released.seq >= 1)
    })
    .await;
    let before = running.gate.policy_version();
    std::fs::write(
        dir.path("policies/freeze.cedar"),
        "@id(\"freeze\")\nforbid(principal, action == Action::\"read_logs\", resource);\n",
    )
    .unwrap();
    let gate = running.gate.clone();
    wait_until("the edit to be in force", async || {
        !gate.authorize(&logs(), &sam).await.is_allowed()
    })
    .await;
    assert_ne!(running.gate.policy_version(), before);
    // A reader may catch the file half-written (empty, which is a valid set) and load twice.
    assert!(running.policy.reloads() >= 1);
    let report = running.shutdown().await;
    assert!(report.aborted.is_empty(), "{report:?}");
}

#[tokio::test]
async fn start_errors_name_what_is_wrong() {
    let dir = Dir::new(
        "start-err",
        &[(
            "jitgate.toml",
            &format!("{MINIMAL}[[destinations]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret_env = \"JITGATE_TEST_UNSET_SECRET\"\n"),
        )],
    );
    let err = load(&dir).unwrap().start().await.expect_err("the secret is not set");
    let message = err.to_string();
    if cfg!(feature = "webhook") {
        assert!(
            message.contains("destinations[0].secret_env") && message.contains("JITGATE_TEST_UNSET_SECRET"),
            "{message}"
        );
    } else {
        assert!(message.contains("destinations[0].kind"), "{message}");
    }

    let bad_recipient = Dir::new(
        "start-recipient",
        &[(
            "jitgate.toml",
            &format!("{MINIMAL}[[destinations]]\nname = \"sre\"\nrecipients = [\"not an entity\"]\n"),
        )],
    );
    let err = load(&bad_recipient)
        .unwrap()
        .start()
        .await
        .expect_err("not an entity reference");
    assert!(err.to_string().contains("destinations[0].recipients[0]"), "{err}");

    let no_key = Dir::new(
        "start-key",
        &[(
            "jitgate.toml",
            &format!("{MINIMAL}[audit]\ncheckpoint_key_env = \"JITGATE_TEST_UNSET_KEY\"\n"),
        )],
    );
    let err = load(&no_key).unwrap().start().await.expect_err("the key is not set");
    assert!(err.to_string().contains("audit.checkpoint_key_env"), "{err}");

    let broken = Dir::new(
        "start-broken",
        &[
            ("jitgate.toml", MINIMAL),
            (
                "policies/broken.cedar",
                "permit(principal, action, resource) when { 1 + };",
            ),
        ],
    );
    let err = load(&broken)
        .unwrap()
        .start()
        .await
        .expect_err("a policy does not parse");
    assert!(
        matches!(&err, StartError::Policy(e) if e.to_string().contains("broken.cedar")),
        "{err}"
    );
}
