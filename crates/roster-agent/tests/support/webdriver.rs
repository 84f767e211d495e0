//! A tiny W3C WebDriver client for the browser tests: it starts `chromedriver` on a free
//! port, opens a headless Chromium session, and offers what the tests need (navigate, find
//! elements by CSS, read text and attributes, run a script, take a screenshot, read the
//! browser log). The driver process is killed when the client drops.
//!
//! It needs Debian's `chromium` and `chromium-driver` packages (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`); without them it fails with a message naming them.
#![allow(dead_code)] // each test file uses a part of the helpers

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The browser binary (Debian package `chromium`).
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// The driver binary (Debian package `chromium-driver`).
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key of an element reference in W3C WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long the driver may take to answer `/status` after it starts.
const DRIVER_START: Duration = Duration::from_secs(20);

/// A WebDriver session in headless Chromium, with its driver process.
pub(crate) struct Browser {
    base: String,
    session: String,
    driver: Child,
    http: ureq::Agent,
}

/// An element found in the page.
#[derive(Debug, Clone)]
pub(crate) struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a `width`×`height` window.
    ///
    /// Panics, naming the Debian packages, when Chromium or its driver is not installed.
    pub(crate) fn start(width: u32, height: u32) -> Self {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser test needs the Debian packages chromium and \
                 chromium-driver (apt-get install -y chromium chromium-driver); {package} provides it"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Self {
            base,
            session: String::new(),
            driver,
            http,
        };
        browser.wait_ready();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-background-networking",
                            "--no-first-run",
                            "--disable-dev-shm-usage",
                            format!("--window-size={width},{height}"),
                        ],
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_owned();
        browser
    }

    fn wait_ready(&self) {
        let end = Instant::now() + DRIVER_START;
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return;
            }
            assert!(
                Instant::now() < end,
                "chromedriver did not answer within {DRIVER_START:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command: `method` on `path` (under the driver), its `value`.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .body(body.map_or_else(String::new, Value::to_string))
            .expect("request");
        let mut response = self
            .http
            .run(request)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON: {e}"));
        assert!(
            status == 200,
            "WebDriver {method} {path}: {status} {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Loads `url`.
    pub(crate) fn navigate(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({"url": url})));
    }

    /// The elements matching a CSS selector, in document order.
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session_call(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .expect("an array of elements")
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().expect("element id").to_owned()))
            .collect()
    }

    /// The first element matching a CSS selector, if any.
    pub(crate) fn find(&self, css: &str) -> Option<Element> {
        self.find_all(css).into_iter().next()
    }

    /// An element's rendered text.
    pub(crate) fn text(&self, element: &Element) -> String {
        let text = self.session_call("GET", &format!("/element/{}/text", element.0), None);
        text.as_str().unwrap_or_default().to_owned()
    }

    /// An element's attribute, if set.
    pub(crate) fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self.session_call(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        );
        value.as_str().map(str::to_owned)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub(crate) fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` asynchronously: it finishes by calling its last argument with the
    /// value to return.
    pub(crate) fn execute_async(&self, script: &str, args: &[Value]) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// A PNG of the viewport.
    pub(crate) fn screenshot(&self) -> Vec<u8> {
        let data = self.session_call("GET", "/screenshot", None);
        STANDARD
            .decode(data.as_str().expect("base64 screenshot"))
            .expect("a base64 screenshot")
    }

    /// The browser's console messages at `SEVERE` level since the last call.
    pub(crate) fn severe_logs(&self) -> Vec<String> {
        let logs = self.session_call("POST", "/se/log", Some(&json!({"type": "browser"})));
        logs.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls `script` until it returns something other than `null` or `false`, failing
    /// with `what` (and the last value) after `deadline`.
    pub(crate) fn wait_for(&self, what: &str, deadline: Duration, script: &str) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let value = self.execute(script, &[]);
            if !value.is_null() && value != false {
                return value;
            }
            assert!(Instant::now() < end, "not within {deadline:?}: {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.http.delete(url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A TCP port free on loopback now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
