//! User-defined functions written in Rust, as Flink's `ScalarFunction`, `AggregateFunction`
//! and `TableFunction`: a worker binary registers them by name in a [`FunctionRegistry`]
//! (beside its jobs, `fjord_worker::main_with_functions`), and SQL scripts that binary plans
//! call them as `f(x, y)`, as aggregates in a windowed `GROUP BY`, and as
//! `LATERAL TABLE(f(x)) AS T(a, b)`. See docs/sql.md, "User-defined functions".
//!
//! Modules: [`typed`] turns Rust closures over Rust types into scalar functions with their
//! SQL signature; [`registry`] holds the registry and the planning context it lends the
//! binder; `bind` (internal) types calls and `LATERAL TABLE` joins at plan time, with
//! positions in errors; `create_function` (internal) reads Flink's `CREATE FUNCTION` statement.
//! This module depends on [`crate::types`] and [`crate::expr`]; the planner calls into `bind`.

pub(crate) mod bind;
pub(crate) mod create_function;
pub mod registry;
pub mod typed;
pub(crate) mod unnest;

pub use registry::FunctionRegistry;
pub use typed::{SqlArg, SqlResult, TypedScalar};

use crate::types::{DataType, Row, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;

/// The result of a user function's evaluation: an error message fails the job (as an
/// exception thrown by a Flink UDF does), naming the function.
pub type UdfResult<T> = std::result::Result<T, String>;

/// What a scalar function does with a NULL argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullInput {
    /// A NULL argument gives NULL without calling the function (SQL's usual rule, and what
    /// [`ScalarFunction::typed`] chooses for arguments that are not `Option`s).
    ReturnsNull,
    /// The function is called with NULL arguments and decides.
    Called,
}

type ScalarFn = dyn Fn(&[Value]) -> UdfResult<Value> + Send + Sync;

/// A scalar function: declared argument and result types and the code that maps argument
/// values to the result. Arguments are cast to the declared types at plan time (implicit
/// widening only, as for built-ins: an `INT` column fits a `BIGINT` argument; anything else
/// needs a `CAST`, and the planner says so with the line and column).
#[derive(Clone)]
pub struct ScalarFunction {
    args: Vec<DataType>,
    result: DataType,
    null_input: NullInput,
    eval: Arc<ScalarFn>,
}

impl ScalarFunction {
    /// A function over [`Value`]s. `eval` receives one value per declared argument, in the
    /// declared types (or NULL, with [`NullInput::Called`]), and returns a value of `result`
    /// (or NULL).
    pub fn new(
        args: &[DataType],
        result: DataType,
        null_input: NullInput,
        eval: impl Fn(&[Value]) -> UdfResult<Value> + Send + Sync + 'static,
    ) -> Self {
        ScalarFunction {
            args: args.to_vec(),
            result,
            null_input,
            eval: Arc::new(eval),
        }
    }

    /// A function from a closure over Rust types, its SQL signature taken from them (see
    /// [`SqlArg`] and [`SqlResult`]): `i32` is `INT`, `i64` `BIGINT`, `f64` `DOUBLE`, `String`
    /// `STRING`, `bool` `BOOLEAN`, ...; an `Option<T>` argument receives NULL as `None`, a
    /// NULL for any other argument gives NULL without calling the closure; an `Option<T>`
    /// result may be NULL, a `Result<T, E>` result fails the job with `E`'s text.
    ///
    /// ```
    /// use fjord_sql::udf::ScalarFunction;
    /// let mask = ScalarFunction::typed(|email: String, keep: i32| {
    ///     let keep = keep.max(0) as usize;
    ///     format!("{}***", email.chars().take(keep).collect::<String>())
    /// });
    /// assert_eq!(mask.signature(), "(STRING, INT) -> STRING");
    /// ```
    pub fn typed<Args, F: TypedScalar<Args>>(f: F) -> Self {
        f.into_scalar()
    }

    /// The declared argument types.
    pub fn argument_types(&self) -> &[DataType] {
        &self.args
    }

    /// The declared result type.
    pub fn result_type(&self) -> DataType {
        self.result
    }

    /// `(ARG, ...) -> RESULT`, as error messages and the plan show it.
    pub fn signature(&self) -> String {
        signature(&self.args, &self.result.to_string())
    }

    /// Calls the function on argument values (NULL handling as declared).
    ///
    /// # Errors
    /// The function's own error message.
    pub fn call(&self, args: &[Value]) -> UdfResult<Value> {
        if self.null_input == NullInput::ReturnsNull && args.iter().any(Value::is_null) {
            return Ok(Value::Null);
        }
        (self.eval)(args)
    }
}

/// `(A, B) -> R`.
pub(crate) fn signature(args: &[DataType], result: &str) -> String {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    format!("({}) -> {result}", args.join(", "))
}

/// An aggregate function, as Flink's `AggregateFunction`: an accumulator per group and window
/// (kept in the window operator's keyed state, so it is checkpointed, restored and moved with
/// its key group on rescaling like the built-in aggregates' state), rows accumulated into it,
/// accumulators merged (session windows merge), and the result read from it when the window
/// fires.
///
/// The accumulator is stored encoded with Fjord's state encoding (`fjord::encoding`, serde):
/// a savepoint holds it as bytes. Its Rust type name is part of the window operator's uid, so
/// a release of the worker binary that changes the accumulator type does not read old bytes
/// as the new type (restoring then needs `--allow-non-restored-state`).
pub trait AggregateFunction: Send + Sync + 'static {
    /// The accumulator.
    type Accumulator: Serialize + DeserializeOwned + Send + 'static;

    /// The declared argument types (arguments are cast to them at plan time).
    fn argument_types(&self) -> Vec<DataType>;

    /// The declared result type.
    fn result_type(&self) -> DataType;

    /// A fresh accumulator (a window's first row, or an empty window).
    fn create_accumulator(&self) -> Self::Accumulator;

    /// Adds a row's arguments (in the declared types; NULLs are passed, as Flink passes
    /// them, so the function decides: the built-in aggregates skip them).
    fn accumulate(&self, acc: &mut Self::Accumulator, args: &[Value]);

    /// Takes a row back out (Flink's `retract`). Fjord's window aggregations are append-only
    /// and never retract, so the default, which does nothing, is never reached today; it is
    /// here so a function written for Flink's contract keeps its shape for updating
    /// aggregations later.
    fn retract(&self, _acc: &mut Self::Accumulator, _args: &[Value]) {}

    /// Adds `other` into `acc` (session windows merging, parallel partial accumulators).
    fn merge(&self, acc: &mut Self::Accumulator, other: Self::Accumulator);

    /// The result (of [`Self::result_type`], or NULL).
    fn get_value(&self, acc: &Self::Accumulator) -> Value;
}

/// An [`AggregateFunction`] with its accumulator type erased: accumulators are the encoded
/// bytes kept in state.
pub(crate) trait ErasedAggregate: Send + Sync {
    fn argument_types(&self) -> Vec<DataType>;
    fn result_type(&self) -> DataType;
    fn accumulator_type(&self) -> &'static str;
    fn create(&self) -> Vec<u8>;
    fn accumulate(&self, acc: &mut Vec<u8>, args: &[Value]);
    fn merge(&self, acc: &mut Vec<u8>, other: &[u8]);
    fn get_value(&self, acc: &[u8]) -> Value;
}

struct Erased<F>(F);

impl<F: AggregateFunction> Erased<F> {
    fn decode(&self, bytes: &[u8]) -> F::Accumulator {
        // The bytes were written by `encode` of this type: the uid carries the type's name,
        // so state of another accumulator type is never handed here.
        fjord::encoding::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "the accumulator of a user-defined aggregate does not decode as {}: {e}",
                std::any::type_name::<F::Accumulator>()
            )
        })
    }

    fn encode(acc: &F::Accumulator) -> Vec<u8> {
        fjord::encoding::to_vec(acc).unwrap_or_else(|e| {
            panic!(
                "the accumulator {} of a user-defined aggregate cannot be encoded: {e}",
                std::any::type_name::<F::Accumulator>()
            )
        })
    }
}

impl<F: AggregateFunction> ErasedAggregate for Erased<F> {
    fn argument_types(&self) -> Vec<DataType> {
        self.0.argument_types()
    }
    fn result_type(&self) -> DataType {
        self.0.result_type()
    }
    fn accumulator_type(&self) -> &'static str {
        std::any::type_name::<F::Accumulator>()
    }
    fn create(&self) -> Vec<u8> {
        Self::encode(&self.0.create_accumulator())
    }
    fn accumulate(&self, acc: &mut Vec<u8>, args: &[Value]) {
        let mut a = self.decode(acc);
        self.0.accumulate(&mut a, args);
        *acc = Self::encode(&a);
    }
    fn merge(&self, acc: &mut Vec<u8>, other: &[u8]) {
        let mut a = self.decode(acc);
        self.0.merge(&mut a, self.decode(other));
        *acc = Self::encode(&a);
    }
    fn get_value(&self, acc: &[u8]) -> Value {
        self.0.get_value(&self.decode(acc))
    }
}

/// A registered aggregate function as plans hold it: its name and the function.
#[derive(Clone)]
pub struct AggregateRef {
    pub(crate) name: String,
    pub(crate) function: Arc<dyn ErasedAggregate>,
}

impl AggregateRef {
    pub(crate) fn new<F: AggregateFunction>(name: &str, f: F) -> Self {
        AggregateRef {
            name: name.to_string(),
            function: Arc::new(Erased(f)),
        }
    }

    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared argument types.
    pub fn argument_types(&self) -> Vec<DataType> {
        self.function.argument_types()
    }

    /// The declared result type.
    pub fn result_type(&self) -> DataType {
        self.function.result_type()
    }
}

impl fmt::Debug for AggregateRef {
    // Part of the window uid's hash: the name, signature and accumulator type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} acc {}",
            self.name,
            signature(
                &self.function.argument_types(),
                &self.function.result_type().to_string()
            ),
            self.function.accumulator_type()
        )
    }
}

impl PartialEq for AggregateRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.function, &other.function)
    }
}

/// A registered scalar function as expressions hold it: its name and the function.
#[derive(Clone)]
pub struct ScalarRef {
    pub(crate) name: String,
    pub(crate) function: Arc<ScalarFunction>,
}

impl ScalarRef {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function.
    pub fn function(&self) -> &ScalarFunction {
        &self.function
    }
}

impl fmt::Debug for ScalarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.function.signature())
    }
}

impl PartialEq for ScalarRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.function, &other.function)
    }
}

// Expressions are serde types (plans are data); a user function is code in the binary, so
// it is written as its name and cannot be read back without the registry.
impl serde::Serialize for ScalarRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for ScalarRef {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "a user-defined function cannot be read back from data; plan the script with the worker binary's FunctionRegistry",
        ))
    }
}

type TableFn = dyn Fn(&[Value], &mut Vec<Row>) -> UdfResult<()> + Send + Sync;

/// A table function, as Flink's `TableFunction`: zero or more rows of declared columns per
/// call, joined to the row it was called for with `, LATERAL TABLE(f(x)) AS T(a, b)` (rows
/// without output disappear) or `LEFT JOIN LATERAL TABLE(f(x)) AS T(a, b) ON TRUE` (they
/// stay, with NULL columns).
#[derive(Clone)]
pub struct TableFunction {
    args: Vec<DataType>,
    columns: Vec<(String, DataType)>,
    eval: Arc<TableFn>,
}

impl TableFunction {
    /// A function over [`Value`]s: `eval` receives one value per declared argument (NULLs
    /// included, as Flink passes them) and pushes rows of `columns` (one value per column,
    /// in their types or NULL) onto its second argument.
    pub fn new(
        args: &[DataType],
        columns: &[(&str, DataType)],
        eval: impl Fn(&[Value], &mut Vec<Row>) -> UdfResult<()> + Send + Sync + 'static,
    ) -> Self {
        TableFunction {
            args: args.to_vec(),
            columns: columns
                .iter()
                .map(|(n, t)| ((*n).to_string(), *t))
                .collect(),
            eval: Arc::new(eval),
        }
    }

    /// The declared argument types.
    pub fn argument_types(&self) -> &[DataType] {
        &self.args
    }

    /// The declared output columns (names are the defaults `AS T(a, b)` renames).
    pub fn columns(&self) -> &[(String, DataType)] {
        &self.columns
    }

    /// The rows of one call.
    ///
    /// # Errors
    /// The function's own error message, or a row of the wrong width.
    pub fn call(&self, args: &[Value]) -> UdfResult<Vec<Row>> {
        let mut rows = Vec::new();
        (self.eval)(args, &mut rows)?;
        if let Some(bad) = rows.iter().find(|r| r.len() != self.columns.len()) {
            return Err(format!(
                "emitted a row of {} values, but it declares {} columns",
                bad.len(),
                self.columns.len()
            ));
        }
        Ok(rows)
    }
}

/// A registered table function as plans hold it.
#[derive(Clone)]
pub struct TableRef {
    pub(crate) name: String,
    pub(crate) function: Arc<TableFunction>,
}

impl TableRef {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function.
    pub fn function(&self) -> &TableFunction {
        &self.function
    }
}

impl fmt::Debug for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols: Vec<String> = self
            .function
            .columns
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect();
        write!(
            f,
            "{}{}",
            self.name,
            signature(&self.function.args, &format!("TABLE({})", cols.join(", ")))
        )
    }
}

impl PartialEq for TableRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.function, &other.function)
    }
}
