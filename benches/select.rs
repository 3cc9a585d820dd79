//! One target selection among 1,000 targets, per balancing algorithm: the selector
//! alone (every target eligible), and the whole `Pool::select` (availability checks,
//! breaker admission, the in-flight guard).

use api_gateway::config::{Balance, TargetConfig, UpstreamConfig};
use api_gateway::upstream::{balance, Registry, Target, TargetState};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::net::SocketAddr;
use std::sync::Arc;

const N: usize = 1000;
const ALGOS: [(Balance, &str); 6] = [
    (Balance::RoundRobin, "round_robin"),
    (Balance::LeastConn, "least_conn"),
    (Balance::Random, "random"),
    (Balance::LeastRequest, "least_request"),
    (Balance::PeakEwma, "peak_ewma"),
    (Balance::ConsistentHash, "consistent_hash"),
];

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from((
        [
            10,
            (i / 65_536) as u8,
            (i / 256 % 256) as u8,
            (i % 256) as u8,
        ],
        8080,
    ))
}

fn selectors(c: &mut Criterion) {
    let targets: Vec<Target> = (0..N)
        .map(|i| Target {
            addr: addr(i),
            weight: 1 + (i % 3) as u32,
            state: Arc::new(TargetState::new(addr(i))),
        })
        .collect();
    let mut g = c.benchmark_group("selector_1000");
    for (b, name) in ALGOS {
        let sel = balance::for_balance(b, &targets);
        let mut k = 0u64;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
                black_box(sel.select(&balance::Candidates::new(&targets, Some(k), &|_| true)))
            })
        });
    }
    g.finish();
}

fn pools(c: &mut Criterion) {
    let reg = Registry::new();
    let mut g = c.benchmark_group("pool_select_1000");
    for (b, name) in ALGOS {
        let cfg = UpstreamConfig {
            targets: (0..N)
                .map(|i| TargetConfig {
                    addr: addr(i).to_string(),
                    weight: 1 + (i % 3) as u32,
                })
                .collect(),
            balance: b,
            ..Default::default()
        };
        let Ok(pool) = reg.build_pool(name, &cfg) else {
            panic!("pool {name}");
        };
        let mut k = 0u64;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
                black_box(pool.select(Some(k), &[]).map(|p| p.addr).ok())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, selectors, pools);
criterion_main!(benches);
