//! jobbus: the Kafka side of async jobs, written once for the gateway and both
//! backends.
//!
//! - [`envelope`]: the JSON message every job topic carries, keyed by job id;
//! - [`settings`]: bootstrap servers, topic names, group ids and retry counts from
//!   the environment (`KAFKA_*`);
//! - [`client`]: the producer (idempotent, `acks=all`), the at-least-once consumer
//!   (offsets stored by hand) and topic creation;
//! - [`stage`]: the consume → process → produce loop of a backend stage, with
//!   retries and the dead-letter topic;
//! - `local` (feature `local`, the backends): a stage runs a job through the
//!   service's own router, in process.
//!
//! librdkafka is the one bundled with `rdkafka` (built from source with cmake).

pub mod client;
pub mod envelope;
#[cfg(feature = "local")]
pub mod local;
pub mod settings;
pub mod stage;

pub use envelope::{seed_for, DeadLetter, Envelope, JobEvent, StepReport};
pub use rdkafka;
pub use settings::{Settings, SettingsError, Topics};
pub use stage::{Stage, StageError};
