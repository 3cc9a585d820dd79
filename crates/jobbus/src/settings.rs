//! Kafka settings from the environment, the same names in the gateway and both
//! backends (each service reads the ones it uses).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KAFKA_BOOTSTRAP_SERVERS` | brokers (`host:port,...`); unset or blank = no Kafka | unset |
//! | `KAFKA_TOPIC_REQUESTS` | jobs to generate (api-generation reads; the gateway writes the route's `topic`) | `generation-requests` |
//! | `KAFKA_TOPIC_RESPONSES` | generation's results | `generation-responses` |
//! | `KAFKA_TOPIC_INPUT` | what api-enrichment reads | `KAFKA_TOPIC_RESPONSES` |
//! | `KAFKA_TOPIC_OUTPUT` | enrichment's results: final job results | `enrichment-output` |
//! | `KAFKA_TOPIC_EVENTS` | "a stage started a job" events | `job-events` |
//! | `KAFKA_TOPIC_DEAD_LETTER` | messages a stage gave up on | `jobs-dead-letter` |
//! | `KAFKA_GROUP_ID` | consumer group | the service's name |
//! | `KAFKA_GROUP_INSTANCE_ID` | static group membership (`group.instance.id`): a restarted consumer with the same id takes its partitions back at once, without a rebalance; one distinct id per replica (e.g. the pod name of a StatefulSet) | unset |
//! | `KAFKA_MAX_ATTEMPTS` | tries of a message whose processing fails for a passing reason, before it is dead-lettered | `3` |
//! | `KAFKA_PUBLISH_TIMEOUT_MS` | how long a produce may wait for the broker's ack (`message.timeout.ms`) | `5000` |
//! | `KAFKA_BATCH_SIZE` | messages taken and processed at once by a consumer | `256` |
//! | `KAFKA_SESSION_TIMEOUT_MS` | consumer group session: a dead consumer's partitions move after it | `10000` |
//! | `KAFKA_TOPIC_PARTITIONS` | partitions of a topic this service creates because it is missing | `3` |
//! | `KAFKA_TOPIC_REPLICATION` | replication factor of such a topic | `1` |

use std::time::Duration;

/// A variable that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct SettingsError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

/// The job topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    pub requests: String,
    pub responses: String,
    pub input: String,
    pub output: String,
    pub events: String,
    pub dead_letter: String,
}

/// Everything a service needs to talk to Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub bootstrap: String,
    pub topics: Topics,
    pub group_id: String,
    pub group_instance_id: Option<String>,
    pub max_attempts: u32,
    pub publish_timeout: Duration,
    pub batch: usize,
    pub session_timeout: Duration,
    pub partitions: i32,
    pub replication: i32,
}

fn string(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn number<T>(var: &str, default: T, min: T) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let Some(v) = string(var) else {
        return Ok(default);
    };
    match v.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(SettingsError {
            var: var.to_owned(),
            value: v,
            reason: format!("must be a whole number of at least {min}"),
        }),
    }
}

impl Topics {
    /// The topic names from the environment (or their defaults).
    pub fn from_env() -> Self {
        let responses = string("KAFKA_TOPIC_RESPONSES").unwrap_or("generation-responses".into());
        Self {
            requests: string("KAFKA_TOPIC_REQUESTS").unwrap_or("generation-requests".into()),
            input: string("KAFKA_TOPIC_INPUT").unwrap_or(responses.clone()),
            responses,
            output: string("KAFKA_TOPIC_OUTPUT").unwrap_or("enrichment-output".into()),
            events: string("KAFKA_TOPIC_EVENTS").unwrap_or("job-events".into()),
            dead_letter: string("KAFKA_TOPIC_DEAD_LETTER").unwrap_or("jobs-dead-letter".into()),
        }
    }
}

impl Settings {
    /// The settings, or `None` when `KAFKA_BOOTSTRAP_SERVERS` is unset (no Kafka).
    /// `default_group` is the consumer group when `KAFKA_GROUP_ID` is unset.
    pub fn from_env(default_group: &str) -> Result<Option<Self>, SettingsError> {
        let Some(bootstrap) = string("KAFKA_BOOTSTRAP_SERVERS") else {
            return Ok(None);
        };
        Ok(Some(Self {
            bootstrap,
            topics: Topics::from_env(),
            group_id: string("KAFKA_GROUP_ID").unwrap_or(default_group.to_owned()),
            group_instance_id: string("KAFKA_GROUP_INSTANCE_ID"),
            max_attempts: number("KAFKA_MAX_ATTEMPTS", 3u32, 1)?,
            publish_timeout: Duration::from_millis(number("KAFKA_PUBLISH_TIMEOUT_MS", 5000u64, 1)?),
            batch: number("KAFKA_BATCH_SIZE", 256usize, 1)?,
            session_timeout: Duration::from_millis(number(
                "KAFKA_SESSION_TIMEOUT_MS",
                10_000u64,
                1000,
            )?),
            partitions: number("KAFKA_TOPIC_PARTITIONS", 3i32, 1)?,
            replication: number("KAFKA_TOPIC_REPLICATION", 1i32, 1)?,
        }))
    }
}
