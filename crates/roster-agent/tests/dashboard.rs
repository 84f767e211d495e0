//! The dashboard: served with its policy and types, and driven in headless Chromium
//! (WebDriver) against three agent processes: nodes online in the table and the graph, a
//! name registered through the API in the browser and the feed within a second, a killed
//! agent shown offline, a partition verdict, a name conflict (a name taken on both sides
//! of an agent cut off by fault injection) in the audit panel with its winner, loser and
//! rule, no script error. A screenshot is saved as `dashboard.png` in the target
//! directory.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    AgentProcess, client, eventually, get, isolate, peers, send, session_holding, target_dir,
};
use webdriver::Browser;

/// Every asset the page loads.
const ASSETS: [&str; 13] = [
    "style.css",
    "favicon.svg",
    "js/main.js",
    "js/errors.js",
    "js/dom.js",
    "js/api.js",
    "js/vlist.js",
    "js/graph.js",
    "js/nodes.js",
    "js/partition.js",
    "js/registry.js",
    "js/events.js",
    "js/history.js",
];

/// A GET as (status, headers we check, body).
fn fetch(url: &str, if_none_match: Option<&str>) -> (u16, [Option<String>; 4], String) {
    let mut request = ureq::http::Request::builder().uri(url);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let request = request.body(()).expect("request");
    let mut response = client().run(request).expect("GET");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let headers = [
        header("content-type"),
        header("content-security-policy"),
        header("cache-control"),
        header("etag"),
    ];
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, headers, body)
}

#[test]
fn the_page_and_its_assets_are_served_with_their_types_and_policy() {
    let agent = AgentProcess::start("dash-http", &[]);
    let (status, [kind, csp, cache, _], body) = fetch(&agent.url("/"), None);
    assert_eq!(status, 200, "/ is the dashboard, not the API's 404");
    assert_eq!(kind.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(csp.as_deref(), Some("default-src 'self'"));
    assert_eq!(cache.as_deref(), Some("no-cache"));
    assert!(body.contains("/assets/js/main.js"), "{body}");
    for asset in ASSETS {
        let (status, [kind, csp, cache, etag], body) =
            fetch(&agent.url(&format!("/assets/{asset}")), None);
        assert_eq!(status, 200, "{asset}");
        let expected = match asset.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(kind.as_deref(), Some(expected), "{asset}");
        assert_eq!(csp.as_deref(), Some("default-src 'self'"), "{asset}");
        assert!(cache.is_some_and(|c| c.contains("max-age")), "{asset}");
        // The SVG namespace is a name, not a resource.
        let outside = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside.contains("http://")
                && !outside.contains("https://")
                && !outside.contains("//cdn"),
            "{asset} loads nothing from elsewhere"
        );
        let etag = etag.expect("an ETag");
        let (status, _, body) = fetch(&agent.url(&format!("/assets/{asset}")), Some(&etag));
        assert_eq!((status, body.as_str()), (304, ""), "{asset} revalidates");
    }
    let (status, body) = send(ureq::http::Method::POST, &agent.url("/"), None, Some("{}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = get(&agent.url("/assets/nothing.js"));
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (_, doc) = get(&agent.url("/api/openapi.json"));
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| p != "/" && !p.starts_with("/assets")),
        "the dashboard is not in the API document"
    );
}

/// The number of elements matching `css`, as a script.
fn count(css: &str) -> String {
    format!(
        "return document.querySelectorAll({}).length;",
        Value::from(css)
    )
}

/// A script returning true when `css` matches at least `n` elements.
fn at_least(css: &str, n: usize) -> String {
    format!(
        "return document.querySelectorAll({}).length >= {n};",
        Value::from(css)
    )
}

#[test]
fn the_dashboard_shows_the_cluster_live_in_chromium() {
    // A cluster name of its own: the agents of other tests never merge with it.
    let a = AgentProcess::start("dash-a", &["--cluster-name", "dashboard-live"]);
    let b = AgentProcess::start(
        "dash-b",
        &["--cluster-name", "dashboard-live", "--seed", &a.cluster],
    );
    let c = AgentProcess::start(
        "dash-c",
        &[
            "--cluster-name",
            "dashboard-live",
            "--fault-injection",
            "--seed",
            &a.cluster,
        ],
    );
    eventually("a sees three nodes online", Duration::from_secs(30), || {
        let (_, nodes) = get(&a.url("/api/nodes"));
        let online = nodes
            .as_array()?
            .iter()
            .filter(|n| n["status"] == "online")
            .count();
        (online == 3).then_some(())
    });

    let browser = Browser::start(1400, 1500);
    browser.navigate(&a.url("/"));

    // Three nodes online, in the table and in the graph.
    browser.wait_for(
        "three online rows in the node table",
        Duration::from_secs(10),
        &at_least("#node-rows tr[data-status=online]", 3),
    );
    browser.wait_for(
        "three online nodes in the graph",
        Duration::from_secs(10),
        &at_least("#graph-nodes g.gnode[data-status=online]", 3),
    );
    for name in ["dash-a", "dash-b", "dash-c"] {
        let row = browser
            .find(&format!("#node-rows tr[data-node=\"{name}\"]"))
            .unwrap_or_else(|| panic!("a row for {name}"));
        assert!(browser.text(&row).contains("online"), "{name}");
    }
    // The graph draws the links between them.
    browser.wait_for(
        "links in the graph",
        Duration::from_secs(10),
        &at_least("#graph-links g.glink", 3),
    );

    // The partition panel shows a verdict.
    browser.wait_for(
        "a partition verdict",
        Duration::from_secs(10),
        "return document.querySelector('#partition-fields[data-verdict]') !== null;",
    );
    let reason = browser
        .find("[data-field=reason]")
        .expect("the verdict's reason");
    assert!(!browser.text(&reason).is_empty());
    assert_eq!(
        browser
            .attribute(
                &browser.find("#partition").expect("panel"),
                "data-keeps-writing"
            )
            .as_deref(),
        Some("true")
    );

    // A killed agent turns offline (or unreachable) in the graph and the table.
    drop(b); // SIGKILL
    let down = "['offline', 'unreachable'].includes(document.querySelector(SEL)?.dataset.status)";
    browser.wait_for(
        "dash-b down in the table",
        Duration::from_secs(30),
        &format!(
            "return {};",
            down.replace("SEL", "'#node-rows tr[data-node=\"dash-b\"]'")
        ),
    );
    browser.wait_for(
        "dash-b down in the graph",
        Duration::from_secs(10),
        &format!(
            "return {};",
            down.replace("SEL", "'#graph-nodes g[data-node=\"dash-b\"]'")
        ),
    );
    assert_eq!(
        browser.execute(&count("#node-rows tr[data-status=online]"), &[]),
        2
    );
    // A name taken on both sides of a cut (c cut off, b dead); the cut heals while the
    // test goes on, and the conflict is checked in the audit panel further down.
    isolate(&c.http, "4s");
    eventually("a has lost its link to c", Duration::from_secs(10), || {
        (peers(&a.http) == Some(0)).then_some(())
    });
    let on_a = session_holding(&a.http, "dash/contested", "120s");
    let on_c = session_holding(&c.http, "dash/contested", "120s");
    // The agent keeps a history (the default): its audit log has rows.
    browser.wait_for(
        "rows in the audit panel",
        Duration::from_secs(15),
        "return document.querySelector('#audit[data-state=on] .entry[data-kind]:not([data-kind=\"\"])') !== null;",
    );

    // The stream is live before the name is registered.
    browser.wait_for(
        "the event stream live",
        Duration::from_secs(10),
        "return document.getElementById('stream-state').dataset.state === 'live';",
    );

    // A name registered through the API shows in the browser and the feed within a second.
    let (status, session) = send(
        ureq::http::Method::POST,
        &a.url("/api/sessions"),
        None,
        Some(r#"{"ttl":"30s"}"#),
    );
    assert!(
        (200..300).contains(&status),
        "a session: {status} {session}"
    );
    let id = session["id"]
        .as_str()
        .map_or_else(|| session["id"].to_string(), str::to_owned);
    let (status, body) = send(
        ureq::http::Method::PUT,
        &a.url(&format!("/api/sessions/{id}/names/dash/first")),
        None,
        Some(r#"{"meta":{"region":"eu"}}"#),
    );
    assert!((200..300).contains(&status), "a name: {status} {body}");
    let registered = Instant::now();
    browser.wait_for(
        "the name in the registry browser",
        Duration::from_secs(1),
        "return document.querySelector('#browser-list .vrow[data-key=\"dash/first\"]:not([hidden])') !== null;",
    );
    browser.wait_for(
        "the name in the event feed",
        Duration::from_secs(1).saturating_sub(registered.elapsed()),
        "return document.querySelector('#feed .vrow[data-kind=registered][data-key=\"dash/first\"]:not([hidden])') !== null;",
    );

    // A few more names and a group, for the screenshot: the feed and the browser follow.
    for key in ["dash/second", "user/1", "user/2"] {
        let (status, body) = send(
            ureq::http::Method::PUT,
            &a.url(&format!("/api/sessions/{id}/names/{key}")),
            None,
            Some(r#"{"meta":null}"#),
        );
        assert!((200..300).contains(&status), "{key}: {status} {body}");
    }
    let (status, body) = send(
        ureq::http::Method::PUT,
        &a.url(&format!("/api/sessions/{id}/groups/room/42")),
        None,
        Some(r#"{"meta":{"seat":1}}"#),
    );
    assert!((200..300).contains(&status), "a group: {status} {body}");
    browser.wait_for(
        "four names in the browser",
        Duration::from_secs(5),
        &at_least("#browser-list .vrow[data-key]:not([hidden])", 4),
    );
    browser.wait_for(
        "the join in the feed",
        Duration::from_secs(5),
        &at_least("#feed .vrow[data-kind=joined][data-key=\"room/42\"]", 1),
    );

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = target_dir().join("dashboard.png");
    std::fs::write(&path, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());

    // The groups tab lists the group; a click shows its members.
    browser.execute(
        "document.getElementById('tab-groups').click(); return null;",
        &[],
    );
    browser.wait_for(
        "room/42 in the groups tab",
        Duration::from_secs(5),
        "return document.querySelector('#browser-list .vrow[data-key=\"room/42\"]:not([hidden])') !== null;",
    );
    browser.execute(
        "document.querySelector('#browser-list .vrow[data-key=\"room/42\"]').click(); return null;",
        &[],
    );
    browser.wait_for(
        "the members of room/42",
        Duration::from_secs(5),
        "const d = document.getElementById('browser-detail'); return !d.hidden && d.textContent.startsWith('room/42: 1 member') && d.textContent.includes('dash-a');",
    );

    // Pages of 500 under a prefix: the first page, then the next one when the list is
    // scrolled to its end.
    for i in 0..620 {
        let (status, body) = send(
            ureq::http::Method::PUT,
            &a.url(&format!("/api/sessions/{id}/names/bulk/{i:04}")),
            None,
            Some("{}"),
        );
        assert!((200..300).contains(&status), "bulk/{i}: {status} {body}");
    }
    browser.execute(
        "document.getElementById('tab-names').click(); document.getElementById('prefix').value = 'bulk'; document.getElementById('prefix-form').requestSubmit(); return null;",
        &[],
    );
    browser.wait_for(
        "the first page under bulk/",
        Duration::from_secs(5),
        "return document.getElementById('browser-status').textContent === '500 names under bulk/, more to load';",
    );
    assert_eq!(
        browser.execute("return document.getElementById('prefix').value;", &[]),
        "bulk/"
    );
    // Scrolled to the end at every look: when the event stream lags behind the 620 writes
    // (seen once on a loaded machine), the page reads everything again and the list
    // starts over from its top, where a user would scroll down again too.
    browser.wait_for(
        "the second page after scrolling to the end",
        Duration::from_secs(5),
        "const list = document.getElementById('browser-list'); list.scrollTop = list.scrollHeight; return document.getElementById('browser-status').textContent === '620 names under bulk/' && document.getElementById('load-more').hidden;",
    );
    let rows = browser.execute(&count("#browser-list .vrow"), &[]);
    assert!(
        rows.as_u64().is_some_and(|n| n < 100),
        "{rows} rows in the DOM for 620 names"
    );

    // The conflict is in the audit panel, in words: who kept the name over whom, by which
    // rule, and who recorded it.
    let conflict = "#audit .entry[data-kind=name_conflict] .conflict[data-rule=keep_oldest]";
    browser.wait_for(
        "the conflict in the audit panel",
        Duration::from_secs(30),
        &format!("return document.querySelector('{conflict}') !== null;"),
    );
    let (status, owner) = get(&a.url("/api/registry/dash/contested"));
    assert_eq!(status, 200, "{owner}");
    let owner = owner["pid"].as_str().unwrap_or_default();
    let (kept, lost) = if owner == on_a {
        (format!("{on_a} on dash-a"), format!("{on_c} on dash-c"))
    } else {
        assert_eq!(owner, on_c, "one of the two kept it");
        (format!("{on_c} on dash-c"), format!("{on_a} on dash-a"))
    };
    let shown = browser.find(conflict).expect("the conflict");
    assert_eq!(
        browser.text(&shown),
        format!("{kept} kept it over {lost} by keep_oldest")
    );
    let recorders = browser
        .find("#audit .entry[data-kind=name_conflict] .recorders")
        .expect("who recorded it");
    assert_eq!(browser.text(&recorders), "recorded by dash-a");

    let errors = browser.execute("return window.__errors;", &[]);
    assert_eq!(
        errors,
        Value::Array(Vec::new()),
        "script errors in the page"
    );
    // A 404 of /api/audit or /api/alerts is how the page learns that history is off.
    let severe: Vec<String> = browser
        .severe_logs()
        .into_iter()
        .filter(|m| !(m.contains("404") && (m.contains("/api/audit") || m.contains("/api/alerts"))))
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");

    // The agent behind the page stops: the banner and the feed say the stream is lost.
    drop(a);
    browser.wait_for(
        "the lost stream in the banner",
        Duration::from_secs(10),
        "const b = document.getElementById('banner'); return !b.hidden && b.textContent === 'Event stream lost: reconnecting…';",
    );
    browser.wait_for(
        "the lost stream in the feed",
        Duration::from_secs(5),
        "return document.querySelector('#feed .vrow[data-kind=stream]')?.textContent.includes('stream lost') === true;",
    );
}

/// On an agent without history the audit panel says so. The registry list and the feed
/// are virtualised: 100,000 items keep a few dozen rows in the DOM and the last one is
/// reached by scrolling; the graph takes 50 nodes and keeps their positions when it is
/// updated again.
#[test]
fn history_off_is_said_lists_stay_small_and_the_graph_keeps_its_layout() {
    let agent = AgentProcess::start("dash-scale", &["--history", "off"]);
    let browser = Browser::start(1200, 900);
    browser.navigate(&agent.url("/"));
    browser.wait_for(
        "the page's node table",
        Duration::from_secs(10),
        &at_least("#node-rows tr[data-node]", 1),
    );
    browser.wait_for(
        "history off in the audit panel",
        Duration::from_secs(10),
        "return document.querySelector('#audit[data-state=off]')?.textContent === 'history is off on this agent';",
    );

    let setup = r#"
        const done = arguments[arguments.length - 1];
        import('/assets/js/vlist.js').then(({ VirtualList }) => {
            const box = document.createElement('div');
            box.className = 'vlist';
            box.id = 'scale-list';
            document.body.append(box);
            const list = new VirtualList(box, {
                rowHeight: 24,
                render: (item, row) => { row.textContent = item.key; row.dataset.key = item.key; },
            });
            const items = Array.from({ length: 100000 }, (_, i) => ({ key: `k/${String(i).padStart(6, '0')}` }));
            list.setItems(items);
            done(true);
        }, (error) => done(String(error)));
    "#;
    assert_eq!(browser.execute_async(setup, &[]), true);
    browser.wait_for(
        "the first rows drawn",
        Duration::from_secs(5),
        "return document.querySelector('#scale-list .vrow[data-key=\"k/000000\"]') !== null;",
    );
    browser.execute(
        "const box = document.getElementById('scale-list'); box.scrollTop = box.scrollHeight; return null;",
        &[],
    );
    browser.wait_for(
        "the last row drawn after scrolling to the end",
        Duration::from_secs(5),
        "return document.querySelector('#scale-list .vrow[data-key=\"k/099999\"]:not([hidden])') !== null;",
    );
    let rows = browser.execute(&count("#scale-list .vrow"), &[]);
    assert!(
        rows.as_u64().is_some_and(|n| n < 200),
        "{rows} rows in the DOM for 100,000 items"
    );

    let graph = r#"
        const done = arguments[arguments.length - 1];
        import('/assets/js/graph.js').then(({ ClusterGraph }) => {
            const ns = 'http://www.w3.org/2000/svg';
            const root = document.createElementNS(ns, 'svg');
            root.id = 'scale-graph';
            for (const id of ['graph-links', 'graph-nodes']) {
                const layer = document.createElementNS(ns, 'g');
                layer.id = id;
                root.append(layer);
            }
            document.body.append(root);
            const graph = new ClusterGraph(root);
            const nodes = Array.from({ length: 50 }, (_, i) => ({ name: `n${i}`, status: i % 7 === 0 ? 'offline' : 'online', role: '', labels: {}, keeper: i === 49 ? 'n0' : undefined }));
            const links = nodes.slice(1).map((n, i) => ({ source: `n${i}`, target: n.name, kind: n.keeper ? 'external' : 'tcp', rtt_ms: 0.5, stale: i % 10 === 0 }));
            graph.update({ nodes, links });
            window.__scaleGraph = { graph, nodes, links };
            done(true);
        }, (error) => done(String(error)));
    "#;
    assert_eq!(browser.execute_async(graph, &[]), true);
    assert_eq!(browser.execute(&count("#scale-graph g.gnode"), &[]), 50);
    assert_eq!(browser.execute(&count("#scale-graph g.glink"), &[]), 49);
    assert_eq!(
        browser.execute(&count("#scale-graph g.gnode[data-external=true] rect"), &[]),
        1
    );
    browser.wait_for(
        "the layout to settle",
        Duration::from_secs(20),
        "return window.__scaleGraph.graph.running === false;",
    );
    let moved = browser.execute(
        r#"
        const { graph, nodes, links } = window.__scaleGraph;
        const before = [...graph.nodes.values()].map((n) => [n.x, n.y]);
        nodes[3].status = 'unreachable';
        graph.update({ nodes, links });
        const after = [...graph.nodes.values()].map((n) => [n.x, n.y]);
        return before.some(([x, y], i) => x !== after[i][0] || y !== after[i][1]);
        "#,
        &[],
    );
    assert_eq!(moved, false, "an update keeps the positions");
    assert_eq!(
        browser.execute(
            &count("#scale-graph g.gnode[data-node=n3][data-status=unreachable]"),
            &[]
        ),
        1
    );
    let errors = browser.execute("return window.__errors;", &[]);
    assert_eq!(
        errors,
        Value::Array(Vec::new()),
        "script errors in the page"
    );
}
