//! # fjord-sql
//!
//! Flink-style streaming SQL on Fjord's DataStream runtime: a script of `CREATE TABLE`,
//! `CREATE VIEW`, `SET` and `INSERT INTO ... SELECT` statements is parsed (sqlparser), planned
//! by a small typed planner of Fjord's own, and lowered onto the same operators Rust jobs use,
//! so SQL jobs get checkpoints, savepoints, rescaling and metrics. See `docs/sql.md`.
//!
//! ```
//! let job = fjord_sql::plan(
//!     "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence',
//!                                       'fields.id.start' = '1', 'fields.id.end' = '3');
//!      CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
//!      INSERT INTO out SELECT id * 2 FROM src WHERE id > 1;",
//! )
//! .unwrap();
//! let env = fjord::StreamExecutionEnvironment::new();
//! env.set_parallelism(1);
//! fjord_sql::build(&job, &env).unwrap();
//! env.execute("sql").unwrap();
//! ```
//!
//! ## Modules, in dependency order
//!
//! - [`decimal`]: DECIMAL values and Flink's precision/scale rules; [`types`], [`error`]:
//!   values, types, schemas; the error type with positions.
//! - [`expr`]: typed scalar expressions and their evaluation (NULL semantics);
//!   [`functions`]: the built-in scalar functions, one file per family.
//! - [`script`]: the pre-parse step for the Flink syntax sqlparser does not know.
//! - [`plan`]: the plan (tables, pipelines, steps, settings) and its explain text.
//! - `bind` (internal): sqlparser expressions → [`expr::Expr`]; [`planner`]: statements →
//!   [`plan::SqlJob`].
//! - [`connectors`]: datagen, filesystem, print, blackhole; [`agg`]: aggregate functions.
//! - [`changelog`]: change kinds (`+I`, `-U`, `+U`, `-D`) of updating queries;
//!   [`group_agg`]: the `GROUP BY` without windows that emits them; [`join`]: regular
//!   joins; [`interval_join`]: joins bounded by the two rowtimes; [`window_join`]: window
//!   TVFs without aggregation and joins of their windows; `plan_join` (internal): planning
//!   them; [`rank`]: Top-N and deduplication over
//!   a whole stream; [`over_agg`], `plan_over` (internal): OVER aggregations;
//!   [`match_recognize`], `plan_match` (internal): `MATCH_RECOGNIZE` on the CEP library.
//! - [`topn`]: the window Top-N operator's ordering, accumulator and window assigner;
//!   `plan_topn` (internal): recognizing window Top-N and deduplication queries;
//!   `plan_union` (internal): `UNION ALL` and its type widening.
//! - [`lower`]: the plan → DataStream graph.
//! - [`udf`]: user-defined scalar, aggregate and table functions a worker binary registers
//!   (the binder and the lowering call into it).

pub mod agg;
pub(crate) mod ast_map;
pub(crate) mod bind;
pub mod changelog;
pub mod composite;
pub mod connectors;
pub mod decimal;
pub mod error;
pub mod expr;
pub mod functions;
pub mod group_agg;
pub mod interval_join;
pub mod join;
pub mod lower;
pub mod match_recognize;
#[cfg(test)]
mod numeric_tests;
pub mod over_agg;
pub(crate) mod parse;
pub mod plan;
pub(crate) mod plan_join;
pub(crate) mod plan_match;
pub(crate) mod plan_over;
pub(crate) mod plan_topn;
pub(crate) mod plan_union;
pub mod planner;
pub mod rank;
pub mod script;
pub mod temporal_join;
pub mod topn;
pub mod types;
pub mod udf;
pub mod window_join;

pub use error::{ErrorKind, Result, SqlError};
pub use lower::{build, build_collecting};
pub use plan::SqlJob;
pub use planner::{plan, plan_portable, plan_portable_with_functions, plan_with_functions};
pub use udf::FunctionRegistry;
