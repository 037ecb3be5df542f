//! The driver page opens with no signal after a first visit: its service worker keeps every
//! file the page needs to start. A module added to the page but not to the worker's list
//! would be missing offline, so this walks the page the way a browser loads it (the HTML's
//! links and scripts, then every module's imports) and checks the list names each file.

use std::collections::{BTreeSet, VecDeque};

use fleet_tests::{Db, TestApp};

/// Paths the worker caches as they are first fetched rather than at install (third-party
/// files and the land outline), so they need not be in its list.
const CACHED_ON_FIRST_USE: [&str; 2] = ["/vendor/", "/map/"];

/// The quoted paths of the worker's `const SHELL = [ ... ];` list.
fn shell_list(worker: &str) -> BTreeSet<String> {
    let start = worker.find("const SHELL = [").expect("the worker has a SHELL list");
    let body = &worker[start..];
    let body = &body[..body.find("];").expect("the SHELL list ends")];
    quoted(body).into_iter().collect()
}

/// Every string in single quotes in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('\'').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The same-origin paths an HTML page links to or loads (`href="/..."`, `src="/..."`).
fn html_refs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let path = &part[..part.find('"').unwrap_or(0)];
            if path.starts_with('/') {
                out.push(path.to_owned());
            }
        }
    }
    out
}

/// The modules a script imports: `from '...'`, `import '...'` and `import('...')` with a
/// literal path.
fn imports(js: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["from '", "import '", "import('"] {
        for part in js.split(marker).skip(1) {
            if let Some(end) = part.find('\'') {
                out.push(part[..end].to_owned());
            }
        }
    }
    out
}

/// `spec` as an absolute path, resolved against the module at `base`.
fn resolve(base: &str, spec: &str) -> String {
    if spec.starts_with('/') {
        return spec.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[test]
fn module_paths_resolve_like_a_browser() {
    assert_eq!(resolve("/driver/page.js", "./view.js"), "/driver/view.js");
    assert_eq!(resolve("/driver/page.js", "../lib/api.js"), "/lib/api.js");
    assert_eq!(resolve("/driver/page.js", "/i18n/zh.js"), "/i18n/zh.js");
    assert_eq!(
        imports("import { a } from './a.js';\nimport './b.js';\nawait import('../c.js');"),
        ["./a.js", "./b.js", "../c.js"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_pages_worker_keeps_every_file_the_page_loads() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let get = |path: String| {
        let url = app.url(&path);
        let http = app.http.clone();
        async move {
            let r = http.get(&url).send().await?;
            anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
            Ok::<_, anyhow::Error>(r.text().await?)
        }
    };
    let shell = shell_list(&get("/driver-sw.js".into()).await?);
    assert!(shell.contains("/driver/main.js"), "sanity: the list is read: {shell:?}");

    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = html_refs(&get("/driver".into()).await?).into();
    while let Some(path) = queue.pop_front() {
        if CACHED_ON_FIRST_USE.iter().any(|p| path.starts_with(p)) || !seen.insert(path.clone()) {
            continue;
        }
        if path.ends_with(".js") {
            for spec in imports(&get(path.clone()).await?) {
                queue.push_back(resolve(&path, &spec));
            }
        }
    }
    assert!(seen.len() > 10, "the walk reaches the page's modules: {seen:?}");
    let missing: Vec<_> = seen.difference(&shell).collect();
    assert!(missing.is_empty(), "the driver page loads these, but its worker does not keep them offline: {missing:?}");
    Ok(())
}
