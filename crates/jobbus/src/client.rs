//! The Kafka clients every service makes the same way.
//!
//! - Producer: idempotent (`enable.idempotence=true`, hence `acks=all`), a message is
//!   given up after `KAFKA_PUBLISH_TIMEOUT_MS` (`message.timeout.ms`), batched for at
//!   most 1 ms (`linger.ms`).
//! - Consumer: in a group, at-least-once: offsets are committed every second
//!   (`enable.auto.commit`) but only those the service stored by hand once it is done
//!   with a message (`enable.auto.offset.store=false`); a new group starts at the
//!   earliest message (`auto.offset.reset=earliest`).

use crate::settings::Settings;
use futures::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::Duration;

fn base(s: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.bootstrap)
        // librdkafka's own log lines go through `tracing` at their level
        .set("log.connection.close", "false");
    c
}

/// The idempotent producer.
pub fn producer(s: &Settings) -> Result<FutureProducer, KafkaError> {
    base(s)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            s.publish_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "1")
        .create()
}

/// An at-least-once consumer of `topics` in the settings' group (the group's members
/// share the partitions).
pub fn consumer(s: &Settings, topics: &[&str]) -> Result<StreamConsumer, KafkaError> {
    let c = unsubscribed(s)?;
    c.subscribe(topics)?;
    Ok(c)
}

/// An at-least-once consumer of every partition of `topics`, assigned directly (no
/// group membership, so no rebalance wait when a process restarts): it starts from
/// the offsets committed under the settings' group id, or the earliest. For a reader
/// that must see every message (each gateway replica follows every job).
pub async fn assigned_consumer(
    s: &Settings,
    topics: &[&str],
) -> Result<StreamConsumer, KafkaError> {
    let c = unsubscribed(s)?;
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let parts = partitions(&c, t).await;
        for p in 0..parts {
            tpl.add_partition_offset(t, p, Offset::Stored)?;
        }
    }
    c.assign(&tpl)?;
    Ok(c)
}

/// The number of partitions of `topic`, asked until the broker knows it.
async fn partitions(c: &StreamConsumer, topic: &str) -> i32 {
    loop {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(5));
        match md.map(|m| m.topics().first().map_or(0, |t| t.partitions().len())) {
            Ok(n) if n > 0 => return i32::try_from(n).unwrap_or(i32::MAX),
            Ok(_) => tracing::warn!(topic, "the topic has no partitions yet"),
            Err(e) => tracing::warn!(topic, error = %e, "cannot read the topic's metadata"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn unsubscribed(s: &Settings) -> Result<StreamConsumer, KafkaError> {
    let mut c = base(s);
    if let Some(id) = &s.group_instance_id {
        c.set("group.instance.id", id);
    }
    c.set("group.id", &s.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "session.timeout.ms",
            s.session_timeout.as_millis().to_string(),
        )
        .set("heartbeat.interval.ms", "1000")
        // also the group's rebalance timeout: a rebalance that waits for a member that
        // died gives up on it after this, even if the broker missed its session expiry
        .set(
            "max.poll.interval.ms",
            (s.session_timeout.as_millis() * 2).to_string(),
        )
        .set("fetch.wait.max.ms", "50")
        .create()
}

/// Creates the topics that do not exist yet (`KAFKA_TOPIC_PARTITIONS` partitions,
/// `KAFKA_TOPIC_REPLICATION` replicas); existing ones are left as they are.
pub async fn ensure_topics(s: &Settings, names: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base(s).create()?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, s.partitions, TopicReplication::Fixed(s.replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    for r in admin.create_topics(topics.iter(), &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::warn!(topic = %name, error = %code, "cannot create the topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// Creates the topics, trying again every second until the broker answers.
pub async fn ensure_topics_retrying(s: &Settings, names: &[&str]) {
    let mut logged = false;
    loop {
        match ensure_topics(s, names).await {
            Ok(()) => return,
            Err(e) => {
                if !logged {
                    tracing::warn!(error = %e, "cannot create the Kafka topics yet; trying again");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Waits for a message, then takes those already fetched, up to `max` in all.
pub async fn next_batch(c: &StreamConsumer, max: usize) -> Vec<OwnedMessage> {
    let mut stream = c.stream();
    let mut batch = Vec::new();
    while batch.is_empty() {
        match stream.next().await {
            Some(Ok(m)) => batch.push(m.detach()),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Kafka consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    while batch.len() < max {
        match stream.next().now_or_never() {
            Some(Some(Ok(m))) => batch.push(m.detach()),
            _ => break,
        }
    }
    batch
}

/// Marks the messages done: their offsets are committed with the next commit. A
/// partition that moved to another consumer meanwhile is skipped (that consumer reads
/// the message again: at-least-once).
pub fn store_offsets(c: &StreamConsumer, done: &[OwnedMessage]) {
    for m in done {
        if let Err(e) = c.store_offset(m.topic(), m.partition(), m.offset()) {
            tracing::debug!(topic = m.topic(), partition = m.partition(), error = %e, "offset not stored");
        }
    }
}
