//! The reviewer page in a real browser: headless Chromium driven through ChromeDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs). A requester asks over the API,
//! a reviewer approves on the page with a comment, and the requester's page shows the grant.
//!
//! Without ChromeDriver the test says so and passes, unless `JITGATE_REQUIRE_BROWSER` is set
//! (as `.ci/run` sets it), which makes a missing browser a failure.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jitgate_axum::{router, Authenticate};
use jitgate_core::{async_trait, EntityRef, MemoryStore, RequestState};
use jitgate_testkit::fixtures;
use serde_json::{json, Value};

/// The caller named by the `user` cookie (the host's session, in a real service).
struct Cookie;

#[async_trait]
impl Authenticate for Cookie {
    async fn caller(&self, parts: &axum::http::request::Parts) -> Option<EntityRef> {
        let cookies = parts.headers.get("cookie")?.to_str().ok()?;
        let user = cookies.split(';').find_map(|c| c.trim().strip_prefix("user="))?;
        Some(EntityRef::new("User", user))
    }
}

/// A W3C WebDriver session: the few commands the test needs.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(chromedriver: &str) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let mut options =
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
        if let Some(b) = binary {
            options["binary"] = json!(b);
        }
        let caps =
            json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": options } } });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {created}"))
            .to_owned();
        Self {
            driver,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    async fn sign_in_as(&self, user: &str) {
        self.cmd("DELETE", "/cookie", json!({})).await;
        self.cmd(
            "POST",
            "/cookie",
            json!({ "cookie": { "name": "user", "value": user, "path": "/" } }),
        )
        .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd("POST", "/element", json!({ "using": "css selector", "value": css }))
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    /// The first element matching `css`, waiting for it while the browser may still be loading
    /// the page a click led to (a click returns before the navigation it starts has ended).
    async fn wait_for(&self, css: &str) -> String {
        for _ in 0..200 {
            let found = self
                .cmd("POST", "/elements", json!({ "using": "css selector", "value": css }))
                .await;
            if let Some(e) = found.as_array().and_then(|all| all.first()) {
                return e[ELEMENT].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no `{css}` within 10 s; the page is:\n{}", self.source().await)
    }

    async fn text_of(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text_of_element(&e).await
    }

    async fn text_of_element(&self, e: &str) -> String {
        self.cmd("GET", &format!("/element/{e}/text"), json!({}))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), json!({})).await;
    }

    async fn source(&self) -> String {
        self.cmd("GET", "/source", json!({})).await.as_str().unwrap().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_on_the_page_and_the_requester_sees_the_grant() {
    let Some(chromedriver) = chromedriver() else {
        assert!(
            std::env::var_os("JITGATE_REQUIRE_BROWSER").is_none(),
            "JITGATE_REQUIRE_BROWSER is set but ChromeDriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no ChromeDriver (apt-get install chromium chromium-driver)");
        return;
    };
    let (gate, _clock, _) = fixtures::gate(Arc::new(MemoryStore::new()));
    let app = axum::Router::new().nest("/jit", router(gate.clone(), Arc::new(Cookie)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://{addr}/jit");

    // sam asks over the API, with a justification that would be markup if not escaped.
    let made: Value = reqwest::Client::new()
        .post(format!("{base}/requests"))
        .header("cookie", "user=sam")
        .body(
            json!({
                "action": { "type": "Action", "id": "db_restart" },
                "resource": { "type": "Database", "id": "orders" },
                "duration_seconds": 900,
                "justification": "INC-7 <b>orders down</b>",
                "context": { "ticket": "INC-7" },
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["request"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_owned();

    let browser = Browser::start(&chromedriver).await;
    browser.go(&format!("{base}/ui/")).await;
    browser.sign_in_as("lee").await;
    browser.go(&format!("{base}/ui")).await;
    assert_eq!(browser.text_of("#caller").await, "User::\"lee\"");
    let item = format!("article[id=\"{id}\"]");
    let why = browser.text_of(&format!("{item} .justification")).await;
    assert_eq!(why, "INC-7 <b>orders down</b>", "shown as text, not markup");
    browser.type_into(&format!("{item} textarea"), "go ahead").await;
    browser.click(&format!("{item} button[value=\"approve\"]")).await;

    // The banner of the page the review redirected to: a notice, or an error saying why not.
    let banner = browser.wait_for(".banner").await;
    assert_eq!(browser.text_of_element(&banner).await, format!("You approved {id}."));
    assert_eq!(browser.text_of("#notice").await, format!("You approved {id}."));
    assert!(
        !browser.source().await.contains(&format!("id=\"{id}\"")),
        "no longer in the queue"
    );
    let stored = gate.read_request(id.parse().unwrap()).await.unwrap();
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.reviews[0].reviewer, EntityRef::new("User", "lee"));
    assert_eq!(stored.reviews[0].comment.as_deref(), Some("go ahead"));

    browser.sign_in_as("sam").await;
    browser.go(&format!("{base}/ui/")).await;
    let grant = stored.grant_id.expect("a grant").to_string();
    let row = browser.text_of(&format!("tr[id=\"{grant}\"]")).await;
    assert!(row.contains("Action::\"db_restart\" on Database::\"orders\""), "{row}");
    let mine = browser.text_of(&format!("tr[id=\"mine-{id}\"] .state")).await;
    assert_eq!(mine, "approved");
    let _ = browser.cmd("DELETE", "", json!({})).await;
}
