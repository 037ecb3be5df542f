//! The monthly statistics page (`/stats`) in headless Chromium: an auditor sees a served
//! trip's km and the unit's budget warning in the table, cards and charts, the order-less
//! drive among the misuse alarms with its track on the map, sorts a table, narrows to one
//! unit, downloads a CSV and switches to English; a unit user sees only its own unit and no
//! filter; a driver is told the page is not theirs. Screenshots go to `target/test-artifacts/`.

use std::time::Duration;

use fleet_tests::browser::Browser;
use fleet_tests::{Db, TestApp};
use serde_json::{Value, json};

use crate::orders::get;

async fn log_in(b: &Browser, app: &TestApp, user: &str, password: &str) -> anyhow::Result<()> {
    b.client.goto(&app.url("/stats")).await?;
    b.fill("#login-username", user).await?;
    b.fill("#login-password", password).await?;
    b.click("#login-submit").await?;
    Ok(())
}

async fn wait_ready(b: &Browser, what: &str) -> anyhow::Result<()> {
    b.wait_js(what, "return window.__stats && window.__stats.ready === true;", vec![]).await?;
    Ok(())
}

/// The text of the first element matching `css`, or null.
async fn text_of(b: &Browser, css: &str) -> anyhow::Result<Value> {
    b.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", vec![json!(css)]).await
}

/// Sets a form control's value as a user's pick would, firing `change`.
async fn pick(b: &Browser, css: &str, value: &str) -> anyhow::Result<()> {
    b.js("const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('change', {bubbles: true}));", vec![json!(css), json!(value)])
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_reads_the_month_with_charts_budget_warning_and_misuse_alarms() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Db::Sqlite, |s| {
        s.stats.interval = Duration::from_millis(200);
        // Dispatch's batches would race the manual assignment below.
        s.dispatch.batch_interval = Duration::from_secs(3600);
        // The scene's drive follows the pickup made now: it is stamped up to 13 minutes ahead,
        // past the default tolerance for a terminal's clock.
        s.ingest_max_clock_ahead = Duration::from_secs(3600);
    })
    .await;
    // 3.2 kWh: the served drive uses 2.796 kWh, 87 % of it, past the 80 % warning.
    let (w, vin, _, _, joyride, base) = crate::stats::served_drive(&app, 3.2).await?;

    let month = fleet_domain::trips::month_of(base);
    let stats = format!("/api/v1/stats/monthly?month={month}");
    app.wait_until("the served trip counted for u3", || async {
        let (_, m) = get(&app, &w.auditor, &stats).await?;
        Ok(m["units"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["unit_id"] == "u3" && u["trips"] == 1 && u["budget_warning"] == true)))
    })
    .await?;
    let alarms = format!("/api/v1/alarms/misuse?month={month}");
    app.wait_until("the order-less drive listed", || async {
        Ok(get(&app, &w.auditor, &alarms).await?.1["alarms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["vin"] == joyride.as_str())))
    })
    .await?;

    let b = Browser::start(1280, 900).await?;
    log_in(&b, &app, "audit", "audit-pass").await?;
    wait_ready(&b, "the month drawn").await?;
    assert_eq!(
        b.js("return window.__stats.month;", vec![]).await?,
        json!(month),
        "this month in Asia/Shanghai by default"
    );
    assert_eq!(b.js("return document.getElementById('month').value;", vec![]).await?, json!(month));
    assert_eq!(
        b.js("return document.getElementById('unit-filter-wrap').hidden;", vec![]).await?,
        json!(false),
        "an auditor may pick a unit"
    );

    // The served trip in u3's row, with the budget warning.
    let row = "#units-table tr[data-id='u3']";
    assert_eq!(text_of(&b, &format!("{row} td[data-key='km']")).await?, json!("4.33"));
    assert_eq!(text_of(&b, &format!("{row} td[data-key='trips']")).await?, json!("1"));
    assert_eq!(
        b.js("return document.querySelector(arguments[0]).dataset.state;", vec![json!(format!("{row} .st-budget"))])
            .await?,
        json!("warning")
    );
    assert_eq!(text_of(&b, &format!("{row} td[data-key='share']")).await?, json!("87.4%预警"));
    assert_eq!(text_of(&b, "#units-table tr[data-id='u1'] td[data-key='km']").await?, json!("0"));
    assert_eq!(
        b.js("return document.querySelector('#summary [data-kind=\"budget\"]').dataset.state;", vec![]).await?,
        json!("warning")
    );
    let summary = b.text("#summary").await?;
    assert!(summary.contains("行程数") && summary.contains("减排 CO₂"), "{summary}");
    // Both cars drove 4.33 km: the fleet's card counts them both.
    assert!(b.text("#summary [data-kind='km'] .v").await? == "8.7", "{summary}");

    // The charts: canvases drawn, with the trip's figures in them.
    for id in ["chart-units", "chart-budget", "chart-vehicles"] {
        let size = b.js("const c = document.querySelector('#' + arguments[0] + ' canvas'); return c ? [c.width, c.height] : null;", vec![json!(id)]).await?;
        assert!(size[0].as_u64().unwrap_or(0) > 300 && size[1].as_u64().unwrap_or(0) > 200, "{id}: {size}");
    }
    let series = |id: &str| {
        format!(
            "const o = echarts.getInstanceByDom(document.getElementById('{id}')).getOption(); return [o.yAxis[0].data || o.xAxis[0].data, o.series[0].data.map(d => d && d.value !== undefined ? d.value : d)];"
        )
    };
    let units = b.js(&series("chart-units"), vec![]).await?;
    assert_eq!((&units[0][0], &units[1][0]), (&json!("市档案馆"), &json!(4.33)), "most km first: {units}");
    let budget = b.js(&series("chart-budget"), vec![]).await?;
    assert_eq!((&budget[0][0], &budget[1][0]), (&json!("市档案馆"), &json!(87.4)), "{budget}");

    // The order-less drive among the alarms, its reason translated; its track on the map.
    let alarm = format!("#alarm-list li[data-vin='{joyride}']");
    assert_eq!(text_of(&b, &format!("{alarm} [data-reason='no_order']")).await?, json!("无订单出车"));
    assert_eq!(text_of(&b, &format!("{alarm} .st-plate")).await?, json!("浙L·D70001"));
    let served_flagged = b
        .js(
            "return [...document.querySelectorAll(arguments[0])].length;",
            vec![json!(format!("#alarm-list li[data-vin='{vin}'] [data-reason='no_order']"))],
        )
        .await?;
    assert_eq!(served_flagged, json!(0), "the served trip is never no_order");
    b.click(&format!("{alarm} .st-track-btn")).await?;
    let points = b
        .wait_js(
            "the track drawn",
            "const m = document.getElementById('alarm-map'); return m.dataset.points ? Number(m.dataset.points) : 0;",
            vec![],
        )
        .await?;
    assert!(points.as_u64().unwrap() >= 40, "{points}");
    assert_eq!(
        b.js("return document.querySelectorAll('#alarm-map path.leaflet-interactive').length;", vec![]).await?,
        json!(3),
        "line, start and end"
    );

    // Sorting: by name ascending, then descending.
    b.click("#units-table th[data-key='name'] button").await?;
    assert_eq!(
        b.js("return document.querySelector(\"#units-table th[data-key='name']\").getAttribute('aria-sort');", vec![])
            .await?,
        json!("ascending")
    );
    b.click("#units-table th[data-key='name'] button").await?;
    assert_eq!(
        b.js("return document.querySelector(\"#units-table th[data-key='name']\").getAttribute('aria-sort');", vec![])
            .await?,
        json!("descending")
    );
    b.click("#units-table th[data-key='km'] button").await?;
    b.js("window.scrollTo(0, 0);", vec![]).await?;
    let shot = b.screenshot("stats-zh").await?;
    b.js("document.querySelector('.st-tables').scrollIntoView();", vec![]).await?;
    b.screenshot("stats-zh-lower").await?;
    b.js("window.scrollTo(0, 0);", vec![]).await?;
    assert!(shot.exists());

    // A CSV of the vehicles table, fetched with the token and saved under the server's name.
    b.click("#tab-vehicles").await?;
    assert_eq!(text_of(&b, &format!("#vehicles-table tr[data-id='{vin}'] td[data-key='km']")).await?, json!("4.33"));
    b.click("#download-csv").await?;
    let saved = b.wait_js("the CSV saved", "return window.__stats.lastDownload;", vec![]).await?;
    assert_eq!(saved["name"], json!(format!("fleet-vehicles-{month}.csv")), "{saved}");
    assert!(saved["size"].as_u64().unwrap() > 100, "{saved}");
    b.click("#download-xlsx").await?;
    b.wait_js(
        "the XLSX saved",
        "const d = window.__stats.lastDownload; return d && d.name.endsWith('.xlsx') && d.size > 1000;",
        vec![],
    )
    .await?;
    b.click("#tab-units").await?;

    // One unit: the cards and tables narrow to it.
    pick(&b, "#unit-filter", "u3").await?;
    b.wait_js("u3 alone", "return window.__stats.ready && window.__stats.unit === 'u3';", vec![]).await?;
    assert_eq!(b.js("return document.querySelectorAll('#units-table tbody tr').length;", vec![]).await?, json!(1));
    assert!(b.text("#summary-scope").await?.contains("市档案馆"));
    assert_eq!(b.text("#summary [data-kind='budget'] .v").await?, "87.4");
    assert!(
        b.js("return location.search;", vec![]).await?.as_str().unwrap().contains("unit=u3"),
        "the view is in the URL"
    );
    pick(&b, "#unit-filter", "").await?;
    b.wait_js("all units again", "return window.__stats.ready && window.__stats.unit === null;", vec![]).await?;

    // The month before has nothing; back to this one.
    b.click("#month-prev").await?;
    b.wait_js(
        "the month before",
        "return window.__stats.ready && window.__stats.month !== arguments[0];",
        vec![json!(month)],
    )
    .await?;
    assert_eq!(text_of(&b, "#units-table tr[data-id='u3'] td[data-key='km']").await?, json!("0"));
    assert!(b.text("#alarm-list").await?.contains("没有"), "no alarms the month before");
    b.click("#month-next").await?;
    b.wait_js(
        "this month again",
        "return window.__stats.ready && window.__stats.month === arguments[0];",
        vec![json!(month)],
    )
    .await?;
    assert_eq!(
        b.js("return document.getElementById('month-next').disabled;", vec![]).await?,
        json!(true),
        "no future months"
    );

    // English.
    b.click("#lang-switch").await?;
    b.wait_js("the page in English", "return document.documentElement.lang === 'en' && window.__stats.ready && document.getElementById('summary').textContent.includes('Trips');", vec![]).await?;
    assert_eq!(text_of(&b, &format!("{alarm} [data-reason='no_order']")).await?, json!("No order"));
    assert_eq!(text_of(&b, "#units-table th[data-key='km']").await?, json!("km▼"));
    assert_eq!(text_of(&b, "#units-table tr[data-id='u3'] td[data-key='share']").await?, json!("87.4%Warning"));
    assert_eq!(b.text("#download-xlsx").await?, "Export Excel");
    let legend = b
        .js(
            "return echarts.getInstanceByDom(document.getElementById('chart-units')).getOption().legend[0].data;",
            vec![],
        )
        .await?;
    assert_eq!(legend, json!(["Distance (km)", "Energy (kWh)"]));
    b.click(&format!("{alarm} .st-track-btn")).await?;
    b.wait_js("the track drawn again", "return Number(document.getElementById('alarm-map').dataset.points || 0) >= 40 && document.getElementById('alarm-map-hint').hidden;", vec![]).await?;
    b.js("window.scrollTo(0, 0);", vec![]).await?;
    b.screenshot("stats-en").await?;
    b.js("document.getElementById('alarm-list').scrollIntoView();", vec![]).await?;
    b.screenshot("stats-en-lower").await?;
    assert_eq!(
        b.js("return window.__stats.cspViolations;", vec![]).await?,
        json!([]),
        "charts and map within the page's CSP"
    );

    // A unit user: its own unit only, no filter.
    b.click("#logout").await?;
    log_in(&b, &app, "unit1", "unit1-pass").await?;
    wait_ready(&b, "the unit's month").await?;
    assert_eq!(b.js("return document.getElementById('unit-filter-wrap').hidden;", vec![]).await?, json!(true));
    let ids =
        b.js("return [...document.querySelectorAll('#units-table tbody tr')].map(r => r.dataset.id);", vec![]).await?;
    assert_eq!(ids, json!(["u1"]));
    b.screenshot("stats-unit-en").await?;

    // A driver: told kindly, and pointed at the driver page.
    b.click("#logout").await?;
    log_in(&b, &app, "driver0", "driver-pass").await?;
    b.wait_js("the driver turned away", "return !document.getElementById('denied-view').hidden;", vec![]).await?;
    let denied = b.text("#denied-view").await?;
    assert!(denied.contains("Driver") || denied.contains("driver"), "{denied}");
    assert_eq!(b.js("return document.getElementById('stats-view').hidden;", vec![]).await?, json!(true));
    b.screenshot("stats-driver-en").await?;
    b.close().await?;
    Ok(())
}
