//! `split:` through real gateway processes and real upstreams: ratios over thousands of
//! requests, smoothness, pins by header and cookie, sticky clients (cookie, consumer,
//! the same side on two replicas), a side that goes down (its share to the other, no
//! failed request), and weights changed by an edit of routes.yaml under load.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A table with pools `blue` and `green` and route `r` on `/s` split by `split`.
fn table(blue: SocketAddr, green: SocketAddr, split: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  blue: {{ targets: [{{ addr: \"{blue}\" }}] }}\n  green: {{ targets: [{{ addr: \"{green}\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /s }}\n    split: {split}\n"
    )
}

fn weights(b: u32, g: u32) -> String {
    format!("[{{ upstream: blue, weight: {b} }}, {{ upstream: green, weight: {g} }}]")
}

/// The side that answered (the echo's name), or the status when it failed.
async fn side(c: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = c.get(url).send().await.map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("status {}", r.status()));
    }
    Ok(r.headers()["x-upstream"].to_str().unwrap().to_string())
}

/// Sends `n` requests from `clients` concurrent clients; the sides seen, in order of
/// answer per client.
async fn spread(gw: &Arc<Gateway>, n: usize, clients: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut out = Vec::new();
            for _ in 0..n / clients {
                out.push(side(&c, &gw.url("/s/x")).await.unwrap());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn share(sides: &[String], name: &str) -> f64 {
    sides.iter().filter(|s| *s == name).count() as f64 * 100.0 / sides.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratios_smoothness_side_header_log_and_metrics() {
    let (blue, green) = (Echo::start("blue").await, Echo::start("green").await);
    let split = format!(
        "{{ sides: {}, side_header: X-Split-Side }}",
        weights(90, 10)
    );
    let gw = Arc::new(Gateway::start(&table(blue.addr, green.addr, &split)));
    let sides = spread(&gw, 2000, 4).await;
    let green_pct = share(&sides, "green");
    println!("90/10 over {} requests: green {green_pct:.2}%", sides.len());
    assert!((8.0..=12.0).contains(&green_pct), "green {green_pct}%");
    // the side's label: response header, metrics' backend, access log
    let c = reqwest::Client::new();
    let r = c.get(gw.url("/s/one")).send().await.unwrap();
    assert_eq!(r.headers()["x-split-side"], r.headers()["x-upstream"]);
    let green_n = sides.iter().filter(|s| *s == "green").count() as f64;
    let metric = gw
        .metric("gateway_routes_total{backend=\"green\",route=\"r\"}")
        .await
        .unwrap();
    assert!(
        metric >= green_n && metric <= green_n + 1.0,
        "{metric} vs {green_n}"
    );
    let logged = wait_until(Duration::from_secs(3), || async {
        gw.logs().lines().any(|l| l.contains("\"side\":\"green\""))
            && gw.logs().lines().any(|l| l.contains("\"side\":\"blue\""))
    })
    .await;
    assert!(
        logged.is_some(),
        "no side in the access log:\n{}",
        gw.logs()
    );

    // 50/50 from one client: smooth round robin alternates, no run of one side
    gw.write_config(&table(blue.addr, green.addr, &weights(1, 1)));
    let mut last = String::new();
    wait_until(Duration::from_secs(5), || async {
        // the old table had a side header; the new one has none
        let r = c.get(gw.url("/s/x")).send().await.unwrap();
        !r.headers().contains_key("x-split-side")
    })
    .await
    .unwrap();
    let mut longest = 0;
    let mut run = 0;
    let mut seq = Vec::new();
    for _ in 0..200 {
        let s = side(&c, &gw.url("/s/x")).await.unwrap();
        run = if s == last { run + 1 } else { 1 };
        longest = longest.max(run);
        seq.push(s.clone());
        last = s;
    }
    let green_pct = share(&seq, "green");
    println!("50/50 from one client: longest run {longest}, green {green_pct}%");
    assert!(longest <= 2, "a burst of {longest} on one side: {seq:?}");
    assert!((48.0..=52.0).contains(&green_pct), "{green_pct}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_by_header_and_cookie_and_sticky_cookie_on_two_replicas() {
    let (blue, green) = (Echo::start("blue").await, Echo::start("green").await);
    // green takes no share by weight: only pinned testers reach it
    let split = format!(
        "{{ sides: {}, pin: [{{ header: x-canary, value: \"1\", upstream: green }}, {{ cookie: canary, value: always, upstream: green }}] }}",
        weights(100, 0)
    );
    let gw = Gateway::start(&table(blue.addr, green.addr, &split));
    let c = reqwest::Client::new();
    let pins = [
        ("x-canary", "1", "green"),
        ("cookie", "a=b; canary=always", "green"),
        ("x-canary", "0", "blue"),
    ];
    for _ in 0..20 {
        for (name, value, to) in pins {
            let r = c
                .get(gw.url("/s/x"))
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["x-upstream"], to, "{name}: {value}");
        }
    }
    drop(gw);

    // sticky by cookie: the gateway sets it, the client stays; a second replica with
    // the same table puts the same cookie on the same side
    let split = format!(
        "{{ sides: {}, sticky: {{ cookie: gw_side }} }}",
        weights(50, 50)
    );
    let t = table(blue.addr, green.addr, &split);
    let (a, b) = (Gateway::start(&t), Gateway::start(&t));
    let mut on_green = 0;
    for _ in 0..40 {
        let r = c.get(a.url("/s/x")).send().await.unwrap();
        let first = r.headers()["x-upstream"].to_str().unwrap().to_string();
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.starts_with("gw_side=") && set.contains("HttpOnly"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();
        for gw in [&a, &b, &a] {
            let r = c
                .get(gw.url("/s/x"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["x-upstream"].to_str().unwrap(), first);
            assert!(!r.headers().contains_key("set-cookie"));
        }
        on_green += usize::from(first == "green");
    }
    // 40 clients at 50/50: both sides get clients
    assert!((8..=32).contains(&on_green), "{on_green} of 40 on green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_by_consumer() {
    let (blue, green) = (Echo::start("blue").await, Echo::start("green").await);
    let users: Vec<(String, String)> = (0..60)
        .map(|i| (format!("user{i}"), format!("key-{i}")))
        .collect();
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(n, k)| (n.as_str(), k.as_str()))
        .collect();
    let keys = keys_file(&users);
    let split = format!(
        "{{ sides: {}, sticky: {{ consumer: true }} }}",
        weights(70, 30)
    );
    let t = table(blue.addr, green.addr, &split)
        + "    plugins: [{ name: api_key, keys_file: keys.yaml }]\n";
    let gw = Gateway::start_with_files(&t, &[("keys.yaml", keys.as_bytes())], &[]);
    let c = reqwest::Client::new();
    let mut on_green = 0;
    for i in 0..60 {
        let key = format!("key-{i}");
        let mut seen = Vec::new();
        for _ in 0..5 {
            let r = c
                .get(gw.url("/s/x"))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            seen.push(r.headers()["x-upstream"].to_str().unwrap().to_string());
        }
        assert!(
            seen.iter().all(|s| *s == seen[0]),
            "user{i} moved: {seen:?}"
        );
        on_green += usize::from(seen[0] == "green");
    }
    // 30% of 60 consumers, give or take the hash
    assert!((8..=30).contains(&on_green), "{on_green} of 60 on green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_that_goes_down_sends_its_share_to_the_other_without_failures() {
    let blue = Echo::start("blue").await;
    let mut green = KillableEcho::start("green", free_port());
    let hc = "health_check: { path: /health, interval: 100ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1 }";
    let t = format!(
        "version: 1\nupstreams:\n  blue: {{ targets: [{{ addr: \"{}\" }}], {hc} }}\n  green: {{ targets: [{{ addr: \"{}\" }}], {hc} }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /s }}\n    split: {}\n",
        blue.addr,
        green.addr,
        weights(50, 50)
    );
    let gw = Gateway::start(&t);
    let c = reqwest::Client::new();
    wait_until(Duration::from_secs(5), || async {
        side(&c, &gw.url("/s/x")).await.is_ok_and(|s| s == "green")
    })
    .await
    .expect("green never served");
    let load = Load::start(3, gw.url("/s/x"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    green.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // once the health check saw it, every request goes to blue
    let after: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..100 {
            v.push(side(&c, &gw.url("/s/x")).await.unwrap());
        }
        v
    };
    let Tally { ok, failed } = load.stop().await;
    println!("green killed under load: {ok} ok, {failed} failed");
    assert!(ok > 50, "the load did not run: {ok}");
    assert_eq!(failed, 0, "log:\n{}", gw.logs());
    assert!(after.iter().all(|s| s == "blue"), "{after:?}");
    // the gateway stays ready while one side serves
    let ready = c.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_side_without_health_checks_loses_no_request() {
    let blue = Echo::start("blue").await;
    let (dead, _closed) = closed_port();
    let gw = Gateway::start(&table(blue.addr, dead, &weights(50, 50)));
    let c = reqwest::Client::new();
    for _ in 0..40 {
        assert_eq!(side(&c, &gw.url("/s/x")).await.unwrap(), "blue");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_changed_by_an_edit_under_load() {
    let (blue, green) = (Echo::start("blue").await, Echo::start("green").await);
    let gw = Gateway::start(&table(blue.addr, green.addr, &weights(100, 0)));
    let load = Load::start(3, gw.url("/s/x"));
    let c = reqwest::Client::new();
    for (b, g) in [(95, 5), (50, 50), (0, 100)] {
        gw.write_config(&table(blue.addr, green.addr, &weights(b, g)));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let everyone_green = wait_until(Duration::from_secs(5), || async {
        let mut all = true;
        for _ in 0..20 {
            all &= side(&c, &gw.url("/s/x")).await.is_ok_and(|s| s == "green");
        }
        all
    })
    .await;
    let Tally { ok, failed } = load.stop().await;
    println!("weights 100/0 -> 95/5 -> 50/50 -> 0/100 under load: {ok} ok, {failed} failed");
    assert!(
        everyone_green.is_some(),
        "0/100 does not send everything to green"
    );
    assert!(ok > 50, "the load did not run: {ok}");
    assert_eq!(failed, 0);
}
