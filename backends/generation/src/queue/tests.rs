use std::sync::{Arc, Mutex};

use prometheus::Registry;

use super::*;

fn gate(capacity: usize, max_waiting: usize) -> (PriorityGate, QueueMetrics) {
    let metrics = QueueMetrics::new(&Registry::new()).expect("metrics");
    (
        PriorityGate::new(capacity, max_waiting, metrics.clone()),
        metrics,
    )
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

/// Enqueues one waiter that records `label` when admitted, then frees its slot.
async fn enqueue(
    gate: &PriorityGate,
    priority: Priority,
    label: &'static str,
    order: &Arc<Mutex<Vec<&'static str>>>,
) -> tokio::task::JoinHandle<()> {
    let before = gate.waiting(priority);
    let (task_gate, order) = (gate.clone(), Arc::clone(order));
    let handle = tokio::spawn(async move {
        let _permit = task_gate.acquire(priority).await.expect("admitted");
        order.lock().expect("lock").push(label);
    });
    until(|| gate.waiting(priority) == before + 1).await;
    handle
}

#[tokio::test]
async fn waiters_are_served_high_then_normal_then_low_fifo_within_a_priority() {
    let (gate, metrics) = gate(1, 100);
    let order = Arc::new(Mutex::new(Vec::new()));
    let busy = gate.acquire(Priority::Low).await.expect("free slot");

    let mut tasks = Vec::new();
    tasks.push(enqueue(&gate, Priority::Low, "low-1", &order).await);
    tasks.push(enqueue(&gate, Priority::Normal, "normal-1", &order).await);
    tasks.push(enqueue(&gate, Priority::Low, "low-2", &order).await);
    tasks.push(enqueue(&gate, Priority::High, "high-1", &order).await);
    tasks.push(enqueue(&gate, Priority::Normal, "normal-2", &order).await);

    assert_eq!(metrics.size.with_label_values(&["low"]).get(), 2);
    assert_eq!(metrics.size.with_label_values(&["normal"]).get(), 2);
    assert_eq!(metrics.size.with_label_values(&["high"]).get(), 1);

    drop(busy);
    for task in tasks {
        task.await.expect("task");
    }
    let order = order.lock().expect("lock").clone();
    assert_eq!(order, ["high-1", "normal-1", "normal-2", "low-1", "low-2"]);
    assert_eq!(gate.available(), 1);
    for p in Priority::BY_URGENCY {
        assert_eq!(metrics.size.with_label_values(&[p.as_str()]).get(), 0);
    }
}

#[tokio::test]
async fn newcomers_do_not_overtake_waiters() {
    let (gate, _) = gate(2, 100);
    let a = gate.acquire(Priority::Normal).await.expect("slot");
    let _b = gate.acquire(Priority::Normal).await.expect("slot");
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiter = enqueue(&gate, Priority::Low, "low", &order).await;
    drop(a);
    waiter.await.expect("task");
    assert_eq!(*order.lock().expect("lock"), ["low"]);
}

#[tokio::test]
async fn abandoned_waiters_leave_and_lose_no_slot() {
    let (gate, metrics) = gate(1, 100);
    let busy = gate.acquire(Priority::Normal).await.expect("slot");
    let task_gate = gate.clone();
    let abandoned = tokio::spawn(async move {
        let _permit = task_gate.acquire(Priority::High).await;
        std::future::pending::<()>().await;
    });
    until(|| gate.waiting(Priority::High) == 1).await;
    abandoned.abort();
    let _ = abandoned.await;
    assert_eq!(gate.waiting(Priority::High), 0);
    assert_eq!(metrics.size.with_label_values(&["high"]).get(), 0);
    drop(busy);
    assert_eq!(gate.available(), 1);
}

#[tokio::test]
async fn full_queue_refuses_at_once() {
    let (gate, _) = gate(1, 1);
    let _busy = gate.acquire(Priority::Normal).await.expect("slot");
    let order = Arc::new(Mutex::new(Vec::new()));
    let _waiter = enqueue(&gate, Priority::Normal, "w", &order).await;
    assert_eq!(gate.acquire(Priority::High).await.err(), Some(QueueFull));
}

#[tokio::test]
async fn slot_granted_to_a_waiter_that_then_gives_up_is_handed_on() {
    // current-thread runtime: the waiter is not polled between grant and abort.
    let (gate, _) = gate(1, 100);
    let busy = gate.acquire(Priority::Normal).await.expect("slot");
    let task_gate = gate.clone();
    let waiter = tokio::spawn(async move {
        let _permit = task_gate.acquire(Priority::Normal).await;
        std::future::pending::<()>().await;
    });
    until(|| gate.waiting(Priority::Normal) == 1).await;
    drop(busy);
    assert_eq!(gate.waiting(Priority::Normal), 0, "slot granted");
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(gate.available(), 1);
}
