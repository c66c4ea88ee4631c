//! The [`FunctionRegistry`] a worker binary fills, and the planning context that lends it
//! (with the aliases of the script's `CREATE FUNCTION` statements) to the binder while one
//! script is planned.

use super::{AggregateFunction, AggregateRef, ScalarFunction, ScalarRef, TableFunction, TableRef};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Names SQL already gives a meaning (built-in functions, aggregates, window functions and
/// syntax that reads like a call): a user function cannot take them.
const RESERVED: &str = "UPPER, LOWER, CHAR_LENGTH, CHARACTER_LENGTH, CONCAT, ABS, MOD, COALESCE, TO_TIMESTAMP, COUNT, SUM, MIN, MAX, AVG, CAST, TRY_CAST, EXTRACT, FLOOR, CEIL, SUBSTRING, TRIM, POSITION, TUMBLE, HOP, CUMULATE, SESSION, ROW_NUMBER, RANK, DENSE_RANK, TABLE, DESCRIPTOR, LATERAL";

/// The built-in function names (for "did you mean" suggestions and reserved names).
pub(crate) fn builtin_names() -> impl Iterator<Item = &'static str> {
    RESERVED
        .split(", ")
        .chain(crate::functions::signature::NAMES.split(", "))
}

/// A registered function.
#[derive(Clone)]
pub(crate) enum Registered {
    /// A scalar function.
    Scalar(ScalarRef),
    /// An aggregate function.
    Aggregate(AggregateRef),
    /// A table function.
    Table(TableRef),
}

impl Registered {
    /// `scalar`, `aggregate` or `table`, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Registered::Scalar(_) => "scalar",
            Registered::Aggregate(_) => "aggregate",
            Registered::Table(_) => "table",
        }
    }
}

/// The user-defined functions of a worker binary, by name (case-insensitive, as SQL
/// identifiers of functions are in Flink).
///
/// ```
/// use fjord_sql::types::{DataType, Value};
/// use fjord_sql::udf::{FunctionRegistry, ScalarFunction, TableFunction};
///
/// let mut functions = FunctionRegistry::new();
/// functions.register_scalar("add_one", ScalarFunction::typed(|x: i64| x + 1));
/// functions.register_table(
///     "split_words",
///     TableFunction::new(&[DataType::String], &[("word", DataType::String)], |args, out| {
///         if let Value::String(s) = &args[0] {
///             out.extend(s.split_whitespace().map(|w| vec![Value::String(w.into())]));
///         }
///         Ok(())
///     }),
/// );
/// assert_eq!(functions.names(), ["ADD_ONE", "SPLIT_WORDS"]);
/// ```
#[derive(Clone, Default)]
pub struct FunctionRegistry {
    functions: BTreeMap<String, Registered>,
}

impl FunctionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, name: &str, f: impl FnOnce(String) -> Registered) -> &mut Self {
        let key = name.to_uppercase();
        assert!(
            !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with(|c: char| c.is_ascii_digit()),
            "a user-defined function's name is letters, digits and _, not starting with a digit: '{name}'"
        );
        assert!(
            !builtin_names().any(|b| b == key),
            "'{name}' is a built-in SQL function or keyword; register the user-defined function under another name"
        );
        let registered = f(key.clone());
        self.functions.insert(key, registered);
        self
    }

    /// Registers a scalar function (replacing one of the same name).
    ///
    /// # Panics
    /// A name that is not an identifier, or that of a built-in function: a mistake in the
    /// worker binary, found when it starts.
    pub fn register_scalar(&mut self, name: &str, f: ScalarFunction) -> &mut Self {
        self.insert(name, |name| {
            Registered::Scalar(ScalarRef {
                name,
                function: Arc::new(f),
            })
        })
    }

    /// Registers an aggregate function (replacing one of the same name).
    ///
    /// # Panics
    /// As [`Self::register_scalar`].
    pub fn register_aggregate<F: AggregateFunction>(&mut self, name: &str, f: F) -> &mut Self {
        self.insert(name, |name| {
            Registered::Aggregate(AggregateRef::new(&name, f))
        })
    }

    /// Registers a table function (replacing one of the same name).
    ///
    /// # Panics
    /// As [`Self::register_scalar`].
    pub fn register_table(&mut self, name: &str, f: TableFunction) -> &mut Self {
        self.insert(name, |name| {
            Registered::Table(TableRef {
                name,
                function: Arc::new(f),
            })
        })
    }

    /// Adds all functions of another registry.
    pub fn extend(&mut self, other: FunctionRegistry) -> &mut Self {
        self.functions.extend(other.functions);
        self
    }

    /// The registered names (upper case), sorted.
    pub fn names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    /// `NAME (kind) signature` per function, for listings (`fjord list`).
    pub fn describe(&self) -> Vec<String> {
        self.functions
            .values()
            .map(|r| match r {
                Registered::Scalar(s) => format!("{s:?} (scalar)"),
                Registered::Aggregate(a) => format!(
                    "{}{} (aggregate)",
                    a.name,
                    super::signature(&a.argument_types(), &a.result_type().to_string())
                ),
                Registered::Table(t) => format!("{t:?} (table)"),
            })
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Registered> {
        self.functions.get(&name.to_uppercase())
    }
}

/// What the binder sees of user functions while a script is planned.
#[derive(Default)]
struct Context {
    registry: FunctionRegistry,
    /// `CREATE FUNCTION alias AS 'name'`: alias → registered name (both upper case).
    aliases: BTreeMap<String, String>,
}

thread_local! {
    // Set by `with_functions` for the duration of one planning call on this thread; the
    // binder is deep in recursion there, so the registry is lent rather than threaded
    // through every `Binder::new`.
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Runs `f` (planning one script) with `registry`'s functions visible to the binder.
pub(crate) fn with_functions<T>(registry: &FunctionRegistry, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Context>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CONTEXT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CONTEXT.with(|c| {
        c.borrow_mut().replace(Context {
            registry: registry.clone(),
            aliases: BTreeMap::new(),
        })
    });
    let _restore = Restore(previous);
    f()
}

/// The function a name calls in the current script (through an alias of `CREATE
/// FUNCTION`, or directly).
pub(crate) fn lookup(name: &str) -> Option<Registered> {
    CONTEXT.with(|c| {
        let c = c.borrow();
        let c = c.as_ref()?;
        let key = name.to_uppercase();
        let target = c.aliases.get(&key).unwrap_or(&key);
        c.registry.get(target).cloned()
    })
}

/// The registered names and aliases of the current script.
pub(crate) fn known_names() -> Vec<String> {
    CONTEXT.with(|c| {
        c.borrow().as_ref().map_or_else(Vec::new, |c| {
            let mut names = c.registry.names();
            names.extend(c.aliases.keys().cloned());
            names
        })
    })
}

/// Whether `name` is registered (so `CREATE FUNCTION x AS 'name'` may alias it).
pub(crate) fn is_registered(name: &str) -> bool {
    CONTEXT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|c| c.registry.get(name).is_some())
    })
}

/// Adds an alias for the current script; `false` when the alias is taken.
pub(crate) fn add_alias(alias: &str, target: &str) -> bool {
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(c) = c.as_mut() else {
            return false;
        };
        let key = alias.to_uppercase();
        if c.aliases.contains_key(&key) {
            return false;
        }
        c.aliases.insert(key, target.to_uppercase());
        true
    })
}

/// The known names closest to `name` (edit distance at most a third of its length, at
/// least 1), best first, at most three: for "did you mean" in errors.
pub(crate) fn close_names(name: &str) -> Vec<String> {
    let upper = name.to_uppercase();
    let limit = (upper.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, String)> = builtin_names()
        .map(str::to_string)
        .chain(known_names())
        .filter_map(|candidate| {
            let d = edit_distance(&upper, &candidate);
            (d <= limit).then_some((d, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Edit distance over characters with adjacent transpositions (optimal string alignment):
/// `MAKS` is one edit from `MASK`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_suggest_builtins_and_registered_functions() {
        let mut r = FunctionRegistry::new();
        r.register_scalar("mask_email", ScalarFunction::typed(|s: String| s));
        with_functions(&r, || {
            assert_eq!(close_names("mask_emial"), ["MASK_EMAIL"]);
            assert_eq!(close_names("uper"), ["UPPER"]);
            assert!(close_names("completely_different").is_empty());
        });
        // Outside planning nothing is registered.
        assert!(lookup("mask_email").is_none());
    }

    #[test]
    #[should_panic(expected = "built-in SQL function")]
    fn a_builtin_name_cannot_be_taken() {
        FunctionRegistry::new().register_scalar("upper", ScalarFunction::typed(|s: String| s));
    }
}
