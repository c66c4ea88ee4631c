//! Complex event processing for Fjord's DataStream API: Flink CEP's `Pattern` API, compiled
//! into an NFA whose per-key state is Fjord keyed state (checkpointed, savepointed and
//! rescaled like any other).
//!
//! ```no_run
//! use fjord_cep::{CEP, Pattern};
//! # fn job(logins: fjord::KeyedStream<(String, bool, i64), String>) {
//! let failed = Pattern::<(String, bool, i64)>::begin("fail")
//!     .where_(|e| !e.1)
//!     .times(3)
//!     .within(std::time::Duration::from_secs(60));
//! let alerts = CEP::pattern(&logins, failed)
//!     .expect("a valid pattern")
//!     .select(|m| m.get("fail").unwrap()[0].0.clone());
//! # }
//! ```
//!
//! Modules, each one concept; later ones may use earlier ones:
//! - [`error`]: the crate's error enum.
//! - [`condition`]: simple and iterative conditions and their combinations.
//! - [`skip`]: after-match skip strategies.
//! - [`pattern`]: the `Pattern` builder.
//! - [`matches`]: `Match`, the events of a match per part.
//! - `compiler`: pattern to NFA states and transitions (Flink's `NFACompiler`).
//! - `heap`: a priority queue laid out like Java's, for Flink's order among equal matches.
//! - [`nfa`]: the NFA state of a key and how an event or time advances it.
//! - [`operator`]: the keyed process function that buffers events until the watermark and
//!   runs the NFA; `PatternProcessFunction`.
//! - [`pattern_stream`]: `CEP::pattern` and `PatternStream` (select, flat select, process,
//!   timeouts to side outputs).

pub mod condition;
pub mod error;
pub mod matches;
pub mod nfa;
pub mod operator;
pub mod pattern;
pub mod pattern_stream;
pub mod skip;

mod compiler;
mod heap;

pub use condition::{Condition, ConditionContext};
pub use error::CepError;
pub use matches::Match;
pub use operator::{PatternContext, PatternProcessFunction};
pub use pattern::{Contiguity, Pattern};
pub use pattern_stream::{CEP, PatternStream};
pub use skip::AfterMatchSkipStrategy;
