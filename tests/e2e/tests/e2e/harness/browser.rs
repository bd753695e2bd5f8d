//! A real browser for the console's tests: headless Chromium driven through chromedriver's
//! WebDriver HTTP API (W3C), with the blocking client the other tests use. A handful of
//! commands is all the tests need — go to a page, find, type, click, read — so a synchronous
//! client of its own fits the harness better than an async crate with a runtime of its own.
//!
//! Every page a test visits is photographed into `target/console-screenshots/`, and the
//! browser's log is read after each step: a script error, a content-security-policy violation
//! or a failed stylesheet, image or media request fails the test.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::{eventually, free_loopback_address, repo_dir};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
const NO_BROWSER: &str = "the console's browser tests drive headless Chromium through \
    chromedriver, and one of them is missing: install both (on Debian: `apt-get install -y \
    chromium chromium-driver`, which puts /usr/bin/chromium and /usr/bin/chromedriver in place; \
    .ci/run does this)";
/// How long a page may take to show what a test waits for.
pub(crate) const PAGE_WITHIN: Duration = Duration::from_secs(20);
/// The W3C name of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it, closed on drop.
pub(crate) struct Browser {
    driver: Child,
    endpoint: String,
    agent: ureq::Agent,
    /// Where this test's screenshots go, and how many it took.
    shots: PathBuf,
    taken: usize,
    name: String,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
pub(crate) struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Browser {
    /// A fresh headless Chromium, `width` px wide, its screenshots named after `test`.
    pub(crate) fn start(test: &str, width: u32) -> Browser {
        if !std::path::Path::new(CHROMIUM).exists() {
            panic!("{CHROMIUM} is missing: {NO_BROWSER}");
        }
        let port = free_loopback_address().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {CHROMEDRIVER} ({e}): {NO_BROWSER}"));
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        let shots = repo_dir().join("target").join("console-screenshots");
        fs::create_dir_all(&shots).expect("the screenshot directory");
        let profile = tempfile::tempdir().expect("a profile directory");
        let profile_dir = profile.path().display().to_string();
        let mut browser = Browser {
            driver,
            endpoint: format!("http://127.0.0.1:{port}"),
            agent,
            shots,
            taken: 0,
            name: test.to_owned(),
            _profile: profile,
        };
        eventually("chromedriver ready", Duration::from_secs(30), || {
            let status = format!("{}/status", browser.endpoint);
            browser
                .send("GET", &status, &Value::Null)
                .ok()
                .filter(|(_, s)| s["value"]["ready"] == true)
                .map(|_| ())
        });
        let session = browser.command(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    // The viewport of a phone or a desktop, `width` CSS pixels wide (a headless
                    // window alone would not go below 500).
                    "mobileEmulation": {"deviceMetrics": {"width": width, "height": 900, "pixelRatio": 1}},
                    // The network is closed: without these Chromium stalls on its own requests.
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage", "--hide-scrollbars",
                             format!("--user-data-dir={profile_dir}"),
                             format!("--window-size={width},900")]
                }
            }}}),
        );
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_owned();
        browser.endpoint = format!("{}/session/{id}", browser.endpoint);
        browser
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// One request to chromedriver: its status and JSON answer.
    fn send(&self, method: &str, url: &str, body: &Value) -> Result<(u16, Value), String> {
        let response = match method {
            "GET" => self.agent.get(url).call(),
            "DELETE" => self.agent.delete(url).call(),
            _ => self
                .agent
                .post(url)
                .header("content-type", "application/json")
                .send(body.to_string()),
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let answer = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        Ok((status, answer))
    }

    /// One WebDriver command; its `value`, or the test fails with WebDriver's error.
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .send(method, &self.url(path), &body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        assert!(
            status < 400,
            "WebDriver {method} {path} ({status}): {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    /// Goes to `url` and waits until the page shows `heading` in its `h1`.
    pub(crate) fn open(&mut self, url: &str, heading: &str) {
        self.command("POST", "/url", json!({ "url": url }));
        self.wait_for_heading(heading);
    }

    /// Waits until the current page's `h1` contains `heading`, photographs it and checks the log.
    pub(crate) fn wait_for_heading(&mut self, heading: &str) {
        eventually(&format!("a page headed {heading:?}"), PAGE_WITHIN, || {
            // A page still loading may replace its heading between the find and the read.
            self.try_find("h1")
                .and_then(|h| h.try_text())
                .filter(|text| text.contains(heading))
                .map(|_| ())
        });
        self.screenshot(heading);
        self.assert_clean_log();
    }

    /// Waits until the page says `text`: after a form that stays on a page of the same heading
    /// (a wizard's step of the product, the product itself), the heading alone would match the
    /// page the form was sent from.
    pub(crate) fn wait_for_text(&mut self, text: &str) {
        eventually(&format!("a page saying {text:?}"), PAGE_WITHIN, || {
            self.try_find("main")
                .and_then(|main| main.try_text())
                .filter(|said| said.contains(text))
                .map(|_| ())
        });
        self.screenshot(text);
        self.assert_clean_log();
    }

    /// The current page's path and query.
    pub(crate) fn path(&self) -> String {
        let url = self.command("GET", "/url", Value::Null);
        let url = url.as_str().unwrap_or_default();
        url.splitn(4, '/')
            .nth(3)
            .map_or("/".to_owned(), |p| format!("/{p}"))
    }

    pub(crate) fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let (_, answer) = self
            .send(
                "POST",
                &self.url("/element"),
                &json!({"using": "css selector", "value": css}),
            )
            .ok()?;
        let id = answer["value"][ELEMENT].as_str()?.to_owned();
        Some(Element { browser: self, id })
    }

    /// The element `css` selects, waiting for it to appear.
    #[track_caller]
    pub(crate) fn find(&self, css: &str) -> Element<'_> {
        let give_up = Instant::now() + PAGE_WITHIN;
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < give_up,
                "no element {css:?} on {}",
                self.path()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every element `css` selects now.
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.command(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[ELEMENT].as_str())
        .map(|id| Element {
            browser: self,
            id: id.to_owned(),
        })
        .collect()
    }

    /// Types `text` into the field `css`, replacing what it held.
    pub(crate) fn fill(&self, css: &str, text: &str) {
        let field = self.find(css);
        field.clear();
        field.type_text(text);
    }

    /// Chooses the option of value `value` in the select `css`.
    pub(crate) fn choose(&self, css: &str, value: &str) {
        self.find(&format!("{css} option[value=\"{value}\"]"))
            .click();
    }

    /// The page's visible text.
    pub(crate) fn text(&self) -> String {
        self.find("body").text()
    }

    /// Sets (or, with `None`, removes) an attribute of the element `css`, as a page's own
    /// script could: the test steers where a form is sent, not what it sends.
    pub(crate) fn set_attribute(&self, css: &str, name: &str, value: Option<&str>) {
        let element = self.find(css);
        self.command(
            "POST",
            "/execute/sync",
            json!({
                "script": "const [e, n, v] = arguments; \
                           if (v === null) { e.removeAttribute(n) } else { e.setAttribute(n, v) }",
                "args": [{ ELEMENT: element.id }, name, value],
            }),
        );
    }

    /// The handles of the session's windows, and of the one commands go to.
    pub(crate) fn windows(&self) -> (Vec<String>, String) {
        let all = self.command("GET", "/window/handles", Value::Null);
        let current = self.command("GET", "/window", Value::Null);
        let all = all
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect();
        (all, current.as_str().unwrap_or_default().to_owned())
    }

    /// Sends the next commands to the window `handle`.
    pub(crate) fn switch_to(&self, handle: &str) {
        self.command("POST", "/window", json!({ "handle": handle }));
    }

    /// Closes the current window (commands then go nowhere until [`Browser::switch_to`]).
    pub(crate) fn close_window(&self) {
        self.command("DELETE", "/window", Value::Null);
    }

    /// Saves a PNG of the page under `target/console-screenshots/`.
    pub(crate) fn screenshot(&mut self, what: &str) -> PathBuf {
        let png = self.command("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        self.taken += 1;
        let slug: String = what
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let path = self
            .shots
            .join(format!("{}-{:02}-{slug}.png", self.name, self.taken));
        fs::write(&path, bytes).expect("the screenshot written");
        path
    }

    /// Fails on what the browser logged since the last look: a script error, a security
    /// (content-security-policy) violation, or a stylesheet, image or media request that failed.
    /// A page answered with a 4xx status (a refused form, a 404 page) is logged by Chromium as a
    /// failed load too; that is the page working, not failing.
    #[track_caller]
    pub(crate) fn assert_clean_log(&self) {
        let entries = self.command("POST", "/se/log", json!({"type": "browser"}));
        let bad: Vec<&Value> = entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                let subresource = ["/assets/", "/media/", "favicon"]
                    .iter()
                    .any(|p| message.contains(p));
                e["source"] != "network" || subresource
            })
            .collect();
        assert!(
            bad.is_empty(),
            "the browser logged errors on {}: {bad:#?}",
            self.path()
        );
    }
}

impl Element<'_> {
    fn command(&self, method: &str, what: &str, body: Value) -> Value {
        self.browser
            .command(method, &format!("/element/{}{what}", self.id), body)
    }

    pub(crate) fn click(&self) {
        self.command("POST", "/click", json!({}));
    }

    pub(crate) fn clear(&self) {
        self.command("POST", "/clear", json!({}));
    }

    /// Types into the element; for a file input, `text` is the path of the file to upload.
    pub(crate) fn type_text(&self, text: &str) {
        self.command("POST", "/value", json!({ "text": text }));
    }

    /// The element's text, or `None` when it is gone (the page changed meanwhile).
    fn try_text(&self) -> Option<String> {
        let url = self.browser.url(&format!("/element/{}/text", self.id));
        match self.browser.send("GET", &url, &Value::Null) {
            Ok((200, answer)) => answer["value"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    pub(crate) fn text(&self) -> String {
        self.command("GET", "/text", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn attribute(&self, name: &str) -> Option<String> {
        self.command("GET", &format!("/attribute/{name}"), Value::Null)
            .as_str()
            .map(str::to_owned)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session ends Chromium; then chromedriver itself.
        if self.endpoint.contains("/session/") {
            let _ = self.agent.delete(&self.endpoint).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
