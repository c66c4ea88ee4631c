//! The plan of a SQL job: tables, pipelines of steps from a source table to a sink table, and
//! the job settings. `fjord sql --explain` prints it with [`SqlJob::explain`].

use crate::expr::Expr;
use crate::types::{DataType, Schema};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// A table created with `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// Its name.
    pub name: String,
    /// Its physical columns: what the connector's format reads and writes.
    pub schema: Schema,
    /// Its metadata columns (`col TYPE METADATA [FROM 'key'] [VIRTUAL]`), in declaration
    /// order. A source row is the physical columns, then these in their connector types.
    pub metadata: Vec<MetadataColumn>,
    /// Every column as queries see it, in declaration order (physical, metadata and
    /// computed), with the rowtime attribute marked.
    pub columns: Schema,
    /// What each of `columns` is.
    pub kinds: Vec<ColumnKind>,
    /// `columns` computed from a source row (physical then metadata columns); `None` when a
    /// source row is `columns` already (no computed columns, metadata last in their types).
    pub source_projection: Option<Vec<Expr>>,
    /// The `WITH (...)` options.
    pub options: BTreeMap<String, String>,
    /// The watermark declared with `WATERMARK FOR` (its rowtime indexes `columns`).
    pub watermark: Option<WatermarkDef>,
    /// The `PRIMARY KEY (...) NOT ENFORCED` columns (physical), in key order; empty without.
    pub primary_key: Vec<String>,
}

/// What a column of a table is.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// The `i`-th physical column.
    Physical(usize),
    /// The `i`-th metadata column.
    Metadata(usize),
    /// A computed column (`name AS expr`): read only.
    Computed,
}

/// A metadata column: a value the connector has beside the record's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataColumn {
    /// The column name.
    pub name: String,
    /// The connector's metadata key (`FROM 'key'`, else the column name).
    pub key: String,
    /// The key's type in the connector (the source row holds this type).
    pub key_type: DataType,
    /// `VIRTUAL`: read only, not written by INSERTs.
    pub is_virtual: bool,
    /// Where the column is declared (for errors found when the table is used).
    pub pos: crate::error::Pos,
}

impl TableDef {
    /// A table of physical columns only.
    pub fn physical(name: &str, schema: Schema, options: BTreeMap<String, String>) -> Self {
        TableDef {
            name: name.to_string(),
            kinds: (0..schema.columns.len())
                .map(ColumnKind::Physical)
                .collect(),
            columns: schema.clone(),
            schema,
            metadata: Vec::new(),
            source_projection: None,
            options,
            watermark: None,
            primary_key: Vec::new(),
        }
    }

    /// The `connector` option.
    pub fn connector(&self) -> &str {
        self.options.get("connector").map_or("", String::as_str)
    }

    /// The columns an `INSERT` writes (Flink's persisted columns: physical and non-virtual
    /// metadata columns) in declaration order, each with its index in the row the sink
    /// receives (the physical columns, then the written metadata columns).
    pub fn persisted(&self) -> Vec<(usize, usize)> {
        let physical = self.schema.columns.len();
        let mut written = 0;
        let mut out = Vec::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            match kind {
                ColumnKind::Physical(p) => out.push((i, *p)),
                ColumnKind::Metadata(m) if !self.metadata[*m].is_virtual => {
                    out.push((i, physical + written));
                    written += 1;
                }
                _ => {}
            }
        }
        out
    }

    /// The metadata columns an `INSERT` writes, in the order they follow the physical
    /// columns in the sink's row.
    pub fn written_metadata(&self) -> impl Iterator<Item = &MetadataColumn> {
        self.metadata.iter().filter(|m| !m.is_virtual)
    }
}

/// `WATERMARK FOR col AS expr`: the rowtime column and the watermark expression over a row.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDef {
    /// The rowtime column's index.
    pub rowtime: usize,
    /// The watermark of a row (a TIMESTAMP); the watermark is the highest seen.
    pub expr: Expr,
}

/// One aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AggFunc {
    /// `COUNT(*)`
    CountStar,
    /// `COUNT(x)`: rows where x is not NULL.
    Count,
    /// `SUM(x)`: NULL when every x is NULL.
    Sum,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
    /// `AVG(x)`: in x's type (integer average for integers, as Flink).
    Avg,
    /// `COUNT(DISTINCT x)`: distinct non-NULL values of x.
    CountDistinct,
    /// `SUM(DISTINCT x)`: the sum of the distinct non-NULL values (NULL when there are none).
    SumDistinct,
    /// `AVG(DISTINCT x)`: the average of the distinct non-NULL values, in x's type.
    AvgDistinct,
    /// A user-defined aggregate ([`AggCall::user`] says which).
    User,
}

/// An aggregate call: function, argument over the input row, result type.
#[derive(Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument (`None` for `COUNT(*)`).
    pub arg: Option<Expr>,
    /// The result type.
    pub data_type: DataType,
    /// For [`AggFunc::User`]: the function and its arguments over the input row.
    pub user: Option<UserAggregate>,
}

/// A call of a user-defined aggregate function.
#[derive(Debug, Clone, PartialEq)]
pub struct UserAggregate {
    /// The function.
    pub function: crate::udf::AggregateRef,
    /// Its arguments (cast to the declared types).
    pub args: Vec<Expr>,
}

// The window uid hashes this text: a call of a built-in prints as it did before user-defined
// aggregates existed (no `user` field), so the uids of existing queries, and with them their
// savepoints, stay valid.
impl std::fmt::Debug for AggCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("AggCall");
        d.field("func", &self.func)
            .field("arg", &self.arg)
            .field("data_type", &self.data_type);
        if let Some(user) = &self.user {
            d.field("user", user);
        }
        d.finish()
    }
}

impl AggCall {
    /// The argument expressions over the input row (none for `COUNT(*)`, several for a
    /// user-defined aggregate).
    pub fn arguments(&self) -> Vec<Expr> {
        match &self.user {
            Some(u) => u.args.clone(),
            None => self.arg.iter().cloned().collect(),
        }
    }
}

/// A window table-valued function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(TABLE t, DESCRIPTOR(ts), size)`
    Tumble {
        /// Window size in ms.
        size: i64,
    },
    /// `HOP(TABLE t, DESCRIPTOR(ts), slide, size)`
    Hop {
        /// Slide in ms.
        slide: i64,
        /// Window size in ms.
        size: i64,
    },
    /// `SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)`: a window per burst of rows
    /// of a key, closed after `gap` without rows (the key is the GROUP BY columns, which equal
    /// the PARTITION BY columns).
    Session {
        /// The gap in ms.
        gap: i64,
    },
    /// `CUMULATE(TABLE t, DESCRIPTOR(ts), step, size)`: windows from a common start growing
    /// by `step` up to `size`.
    Cumulate {
        /// Step in ms.
        step: i64,
        /// Maximum window size in ms (a multiple of the step).
        size: i64,
    },
}

/// One key of a window Top-N's `ORDER BY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// The input column.
    pub column: usize,
    /// `DESC`.
    pub descending: bool,
    /// NULLs rank first (Flink's default: `ASC` NULLS FIRST, `DESC` NULLS LAST).
    pub nulls_first: bool,
}

/// Where the windows of a window Top-N come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopNWindow {
    /// A window TVF over the input rows (`TUMBLE`, `HOP`, `CUMULATE`, `SESSION`); the output
    /// rows get window_start, window_end and window_time after the input columns.
    Tvf {
        /// The window.
        window: WindowKind,
        /// The rowtime column it windows on.
        time_column: usize,
    },
    /// The `window_start`/`window_end` columns of a window aggregation's result rows.
    Columns {
        /// The window_start column.
        start: usize,
        /// The window_end column.
        end: usize,
    },
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowKind::Tumble { size } => write!(f, "TUMBLE(size={size} ms)"),
            WindowKind::Hop { slide, size } => write!(f, "HOP(slide={slide} ms, size={size} ms)"),
            WindowKind::Cumulate { step, size } => {
                write!(f, "CUMULATE(step={step} ms, size={size} ms)")
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap={gap} ms)"),
        }
    }
}

/// A step of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Filter, then project (Flink's `Calc`): stateless, chained to its input.
    Calc {
        /// Rows where this is TRUE pass.
        filter: Option<Expr>,
        /// The output columns.
        projection: Vec<Expr>,
    },
    /// A keyed event-time window aggregation. Output columns: window_start, window_end,
    /// window_time (window_end - 1 ms), the keys, the aggregates.
    WindowAggregate {
        /// The window.
        window: WindowKind,
        /// The rowtime column it windows on.
        time_column: usize,
        /// The windows are of the wall clock (`time_column` is a `PROCTIME()` column): rows
        /// are assigned by the time they are processed and windows fire when the clock passes
        /// their end.
        proctime: bool,
        /// The input columns of the GROUP BY key.
        keys: Vec<usize>,
        /// The aggregates.
        aggs: Vec<AggCall>,
        /// The operator's uid, derived from the plan, so an unchanged query finds its state
        /// in a savepoint.
        uid: String,
    },
    /// A window Top-N (`ROW_NUMBER() OVER (PARTITION BY window_start, window_end, ... ORDER
    /// BY ...)` with `rownum <= N`; deduplication is N = 1 ordered by the rowtime): keyed by
    /// the partition columns, the best `limit` rows of each window are kept in keyed state and
    /// emitted when the window ends. Output columns: the input columns, window_start,
    /// window_end, window_time (only for [`TopNWindow::Tvf`]), then rownum (BIGINT, from 1).
    WindowTopN {
        /// The windows.
        window: TopNWindow,
        /// The input columns of the partition key besides the window.
        keys: Vec<usize>,
        /// The sort keys over the input row.
        order: Vec<SortKey>,
        /// The `N` of `rownum <= N`.
        limit: usize,
        /// The operator's uid, derived from the plan.
        uid: String,
    },
    /// A `GROUP BY` without windows (Flink's `GroupAggregate`): keyed by the key columns,
    /// accumulators in keyed state, and an updating result: `+I` for a key's first row, `-U`
    /// and `+U` when its result changes, `-D` when retractions empty it (see
    /// [`crate::group_agg`]). Output columns: the keys, the aggregates.
    GroupAggregate {
        /// The input columns of the GROUP BY key (none: one global group).
        keys: Vec<usize>,
        /// The aggregates.
        aggs: Vec<AggCall>,
        /// The operator's uid, derived from the plan.
        uid: String,
    },
    /// A Top-N (or deduplication) over the whole stream: `ROW_NUMBER() OVER (PARTITION BY
    /// ... ORDER BY ...)` with `rownum <= N`, without window columns in `PARTITION BY`. Keyed by
    /// the partition columns, the rows in rank order in keyed state, and an updating result
    /// (see [`crate::rank`]). Output columns: the input columns, then rownum (BIGINT from 1;
    /// NULL when `with_rank` is false and the query does not read it).
    TopN {
        /// The input columns of the partition key.
        keys: Vec<usize>,
        /// The sort keys over the input row.
        order: Vec<SortKey>,
        /// The `N` of `rownum <= N`.
        limit: usize,
        /// The query reads rownum: changes are per rank (else per row).
        with_rank: bool,
        /// The operator's uid, derived from the plan.
        uid: String,
    },
    /// An OVER aggregation in event time (`agg(x) OVER (PARTITION BY ... ORDER BY rowtime
    /// ROWS|RANGE BETWEEN ... PRECEDING AND CURRENT ROW)`): keyed by the partition columns,
    /// rows wait for the watermark and are aggregated over their frame in rowtime order (see
    /// [`crate::over_agg`]). Output columns: the input columns, then the aggregates; appended
    /// rows that keep their rowtime.
    OverAggregate {
        /// The input columns of the partition key.
        keys: Vec<usize>,
        /// The number of input columns.
        width: usize,
        /// The rowtime column it orders by.
        time_column: usize,
        /// The frame.
        frame: crate::over_agg::OverFrame,
        /// The aggregates.
        aggs: Vec<AggCall>,
        /// The operator's uid, derived from the plan.
        uid: String,
    },
    /// `MATCH_RECOGNIZE`: keyed by the partition columns, rows buffered until the watermark and
    /// matched in rowtime order by the CEP library's NFA (partial matches in keyed state);
    /// one output row per match: the partition columns, then the measures. Appended rows.
    MatchRecognize(Box<MatchSpec>),
    /// A window TVF without aggregation (`SELECT ... FROM TABLE(TUMBLE(TABLE t,
    /// DESCRIPTOR(ts), size))`, and HOP, CUMULATE): stateless, chained; each row once per
    /// window it falls in (HOP and CUMULATE put a row in several). Output columns: the input
    /// columns, then window_start, window_end, window_time (window_end - 1 ms); none of them
    /// is a time attribute. A window join reads these rows (see [`WindowJoinSpec`]).
    WindowTvf {
        /// The window (not SESSION: its windows need state).
        window: WindowKind,
        /// The rowtime column it windows on.
        time_column: usize,
        /// The number of input columns (window_start is the column after them).
        width: usize,
    },
    /// A join with a user-defined table function (`, LATERAL TABLE(f(x)) AS T(a, b)`, or
    /// `LEFT JOIN LATERAL TABLE(...) ON TRUE` when `left_outer`): stateless, chained. Output
    /// columns: the input columns, then the function's.
    Lateral {
        /// The function.
        function: crate::udf::TableRef,
        /// Its arguments over the input row.
        args: Vec<Expr>,
        /// Keep input rows the function emits nothing for, with NULL function columns.
        left_outer: bool,
    },
}

/// The kind of a regular join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinKind {
    /// `[INNER] JOIN`: the matching pairs.
    Inner,
    /// `LEFT [OUTER] JOIN`: and the left rows without a match, with NULLs.
    Left,
    /// `RIGHT [OUTER] JOIN`: and the right rows without a match, with NULLs.
    Right,
    /// `FULL [OUTER] JOIN`: and the rows of either side without a match.
    Full,
}

impl JoinKind {
    /// Left rows without a match are kept (padded with NULLs).
    pub fn keeps_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    /// Right rows without a match are kept (padded with NULLs).
    pub fn keeps_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }

    /// `INNER`, `LEFT`, `RIGHT` or `FULL`.
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
        }
    }
}

/// A regular join of two inputs (Flink's `Join` on unbounded streams): both sides' rows are
/// kept in keyed state by the equi-join key, and every row joins the other side's rows of its
/// key as they are then. Output columns: the left columns, then the right ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// The left input.
    pub left: Pipeline,
    /// The right input.
    pub right: Pipeline,
    /// Inner or outer.
    pub kind: JoinKind,
    /// The equi-join key over a left row (the `=` conditions of `ON`), in a common type
    /// with `right_keys`; empty when `ON` has none (every row then meets in one group).
    pub left_keys: Vec<Expr>,
    /// The equi-join key over a right row.
    pub right_keys: Vec<Expr>,
    /// The rest of `ON` over a joined row (left columns, then right columns).
    pub condition: Option<Expr>,
    /// An interval join: `ON` bounds the two rowtimes (see [`IntervalBounds`]) and both
    /// inputs append, so rows are kept only as long as a match can still arrive.
    pub interval: Option<IntervalBounds>,
    /// An event-time temporal join (`JOIN v FOR SYSTEM_TIME AS OF l.rowtime`): each left row
    /// joins the version of its key's right row current at its time (see
    /// [`crate::temporal_join`]); the result appends.
    pub temporal: Option<TemporalTimes>,
    /// A window join: both inputs are rows of the same windows (a window TVF or a window
    /// aggregation) and `ON` equates their window_start and window_end, so rows wait per key
    /// and window until the watermark passes the window's end, are joined then and dropped.
    pub window: Option<WindowJoinSpec>,
    /// The operator's uid, derived from the plan.
    pub uid: String,
}

/// The two rowtimes of a temporal join: the left row's (the `AS OF` column) and the versioned
/// table's (in a right row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalTimes {
    /// The left rowtime column.
    pub left_time: usize,
    /// The right rowtime column (in a right row).
    pub right_time: usize,
}

/// What makes a join a window join (Flink's `WindowJoin`): both inputs' rows carry the same
/// window's bounds, equated in `ON` (they are in the equi-join key, so one key holds the rows
/// of one window). The join fires when the watermark passes window_end - 1 ms and appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowJoinSpec {
    /// The windows of both inputs.
    pub window: WindowKind,
    /// The window_end column of a left row.
    pub left_end: usize,
    /// The window_end column of a right row.
    pub right_end: usize,
}

/// The time bounds of an interval join: `lower <= left.rowtime - right.rowtime <= upper`
/// (ms), from conditions such as `l.ts BETWEEN r.ts - INTERVAL '1' MINUTE AND r.ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalBounds {
    /// The left rowtime column.
    pub left_time: usize,
    /// The right rowtime column (in a right row).
    pub right_time: usize,
    /// The least `left - right`.
    pub lower: i64,
    /// The greatest `left - right`.
    pub upper: i64,
}

/// A planned `MATCH_RECOGNIZE` (see [`crate::match_recognize`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSpec {
    /// The input columns of `PARTITION BY`.
    pub keys: Vec<usize>,
    /// The rowtime column of `ORDER BY`.
    pub time_column: usize,
    /// The pattern variables in order, with quantifiers and conditions.
    pub vars: Vec<crate::match_recognize::PatternVar>,
    /// `AFTER MATCH SKIP`.
    pub skip: crate::match_recognize::Skip,
    /// `WITHIN`: a match's last row at most this long after its first (in event time).
    pub within: Option<std::time::Duration>,
    /// The measures.
    pub measures: Vec<crate::match_recognize::NavExpr>,
    /// The operator's uid, derived from the plan.
    pub uid: String,
}

/// Where a pipeline's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A table's connector.
    Table(Arc<TableDef>),
    /// `UNION ALL`: every row of each branch (two or more), in the branches' common column
    /// types; the watermark is the minimum of the branches' watermarks.
    UnionAll(Vec<Pipeline>),
    /// A regular join of two inputs.
    Join(Box<Join>),
    /// A lookup join of an input with a `jdbc` table.
    Lookup(Box<LookupJoin>),
}

/// A lookup join (Flink's `LookupJoin`: `JOIN t FOR SYSTEM_TIME AS OF o.proc_time AS c ON
/// o.k = c.id`): each input row's key is looked up in the table as the row is processed;
/// stateless and chained, a changelog's kinds pass through. Output columns: the input
/// columns, then the table's.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupJoin {
    /// The probe side.
    pub input: Pipeline,
    /// The `jdbc` table looked up.
    pub table: Arc<TableDef>,
    /// The lookup key: a column of the table and its value over an input row (in the
    /// column's type), from the `=` conditions of `ON`.
    pub keys: Vec<(usize, Expr)>,
    /// The rest of `ON` over a joined row (input columns, then the table's).
    pub condition: Option<Expr>,
    /// `LEFT JOIN`: input rows without a match are kept, padded with NULLs.
    pub left_outer: bool,
}

impl Source {
    /// What identifies the rows in a stateful operator's uid: the table's name, or the
    /// branches of a union with their steps.
    pub fn name(&self) -> String {
        match self {
            Source::Table(t) => t.name.clone(),
            Source::UnionAll(branches) => {
                let parts: Vec<String> = branches
                    .iter()
                    .map(|b| format!("{}|{:?}", b.source.name(), b.steps))
                    .collect();
                format!("UNION ALL[{}]", parts.join("; "))
            }
            Source::Join(j) => format!(
                "{} JOIN[{}|{:?}; {}|{:?}]",
                j.kind.name(),
                j.left.source.name(),
                j.left.steps,
                j.right.source.name(),
                j.right.steps
            ),
            Source::Lookup(l) => format!(
                "{}|{:?} LOOKUP JOIN {}",
                l.input.source.name(),
                l.input.steps,
                l.table.name
            ),
        }
    }

    /// The tables read, in the order their sources are built.
    pub fn tables(&self) -> Vec<&Arc<TableDef>> {
        match self {
            Source::Table(t) => vec![t],
            Source::UnionAll(branches) => branches.iter().flat_map(|b| b.source.tables()).collect(),
            Source::Join(j) => {
                let mut t = j.left.source.tables();
                t.extend(j.right.source.tables());
                t
            }
            // The looked-up table is not read as a source.
            Source::Lookup(l) => l.input.source.tables(),
        }
    }
}

/// Rows from a source through steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Where the rows come from.
    pub source: Source,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// The schema of the last step's output.
    pub schema: Schema,
}

impl Pipeline {
    /// Whether the rows are a changelog (updates and deletes besides inserts): a `GROUP BY`
    /// without windows makes one, and the steps after it pass its kinds on.
    pub fn is_changelog(&self) -> bool {
        let source = match &self.source {
            // upsert-kafka and debezium-json tables read as changelogs.
            Source::Table(t) => crate::connectors::is_changelog_source(t),
            Source::UnionAll(branches) => branches.iter().any(Pipeline::is_changelog),
            // An inner join of appended rows appends; outer joins take back padded rows.
            // An interval join's padded rows leave only once no match can come, a window
            // join's once the window is over, a temporal join's at the watermark: all append.
            Source::Join(j)
                if j.interval.is_some() || j.window.is_some() || j.temporal.is_some() =>
            {
                false
            }
            Source::Join(j) => {
                j.kind != JoinKind::Inner || j.left.is_changelog() || j.right.is_changelog()
            }
            Source::Lookup(l) => l.input.is_changelog(),
        };
        source
            || self
                .steps
                .iter()
                .any(|s| matches!(s, Step::GroupAggregate { .. } | Step::TopN { .. }))
    }

    /// The first step that makes the rows a changelog, for messages (`GroupAggregate(keys=[...])`).
    pub fn changelog_origin(&self) -> Option<String> {
        let here = self.steps.iter().find_map(|s| match s {
            Step::GroupAggregate { keys, .. } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("${k}")).collect();
                Some(format!("GroupAggregate(groupBy=[{}])", keys.join(", ")))
            }
            Step::TopN { keys, limit, .. } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("${k}")).collect();
                Some(format!(
                    "Rank(partitionBy=[{}], rownum <= {limit})",
                    keys.join(", ")
                ))
            }
            _ => None,
        });
        here.or_else(|| match &self.source {
            Source::UnionAll(branches) => branches.iter().find_map(Pipeline::changelog_origin),
            Source::Join(j)
                if j.kind != JoinKind::Inner
                    && j.interval.is_none()
                    && j.window.is_none()
                    && j.temporal.is_none() =>
            {
                Some(format!("Join(joinType=[{}])", j.kind.name()))
            }
            Source::Join(j) => j
                .left
                .changelog_origin()
                .or_else(|| j.right.changelog_origin()),
            Source::Lookup(l) => l.input.changelog_origin(),
            Source::Table(t) if crate::connectors::is_changelog_source(t) => Some(format!(
                "TableSourceScan(table=[{}], changelogMode=[I,UB,UA,D])",
                t.name
            )),
            Source::Table(_) => None,
        })
    }
}

/// One `INSERT INTO sink SELECT ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// The sink table.
    pub sink: Arc<TableDef>,
    /// The rows it receives (already cast to the sink's column types).
    pub pipeline: Pipeline,
}

/// Job settings from `SET 'key' = 'value'`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `parallelism.default`
    pub parallelism: Option<usize>,
    /// `execution.checkpointing.interval`
    pub checkpoint_interval: Option<Duration>,
    /// `pipeline.name`
    pub pipeline_name: Option<String>,
    /// `table.exec.state.ttl`: how long the state of a key of an unbounded operator (a `GROUP
    /// BY` without windows) is kept after its last change; unset keeps it forever.
    pub state_ttl: Option<Duration>,
}

/// A planned script: settings and the inserts that make the job.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlJob {
    /// The settings.
    pub settings: Settings,
    /// The inserts (each one a pipeline from a source to a sink).
    pub inserts: Vec<Insert>,
}

impl SqlJob {
    /// The plan as text: per insert, the operators from source to sink with their schemas,
    /// keys, state and uids, and the settings.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "== Settings ==\nparallelism.default: {}\nexecution.checkpointing.interval: {}",
            s.parallelism
                .map_or("(number of cores)".into(), |p| p.to_string()),
            s.checkpoint_interval
                .map_or("(off)".into(), |d| format!("{} ms", d.as_millis())),
        );
        if let Some(ttl) = s.state_ttl {
            let _ = writeln!(out, "table.exec.state.ttl: {} ms", ttl.as_millis());
        }
        for (n, insert) in self.inserts.iter().enumerate() {
            let p = &insert.pipeline;
            let _ = writeln!(out, "\n== Insert {} into {} ==", n + 1, insert.sink.name);
            explain_pipeline(&mut out, p, n, &mut 0, "");
            let _ = writeln!(
                out,
                "  -> Sink: {} (connector={}) {}",
                insert.sink.name,
                insert.sink.connector(),
                p.schema
            );
        }
        out
    }
}

/// The uid of the `k`-th source (0-based, in [`Source::tables`] order) of the `n`-th insert
/// (0-based) reading `table`; the first keeps the uid it had before unions existed.
pub fn source_uid(n: usize, k: usize, table: &str) -> String {
    if k == 0 {
        format!("sql-source-{n}-{table}")
    } else {
        format!("sql-source-{n}-{k}-{table}")
    }
}

/// Writes the operators of `p` (its sources first) to `out`, each line after `indent`;
/// `leaf` counts the sources of insert `n` built so far (their uids).
/// The explain line of a repartition by `keys` (column indexes).
fn write_key_by(out: &mut String, indent: &str, keys: &[usize]) {
    let keys: Vec<String> = keys.iter().map(|k| format!("${k}")).collect();
    let _ = writeln!(
        out,
        "{indent}  => Hash partition by [{}] (keyBy)",
        keys.join(", ")
    );
}

fn explain_pipeline(out: &mut String, p: &Pipeline, n: usize, leaf: &mut usize, indent: &str) {
    match &p.source {
        Source::Table(src) => {
            // What the source produces: the table's columns, unless they are computed.
            let mut read = match src.source_projection {
                None => src.columns.to_string(),
                Some(_) => src.schema.to_string(),
            };
            if src.source_projection.is_some() && !src.metadata.is_empty() {
                let meta: Vec<String> = src
                    .metadata
                    .iter()
                    .map(|m| format!("{} {} FROM '{}'", m.name, m.key_type, m.key))
                    .collect();
                let _ = write!(read, " + metadata [{}]", meta.join(", "));
            }
            let _ = writeln!(
                out,
                "{indent}Source: {} (connector={}) {read}  [uid {}, state: read position as splits]",
                src.name,
                src.connector(),
                source_uid(n, *leaf, &src.name)
            );
            if let Some(projection) = &src.source_projection {
                let cols: Vec<String> = projection.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    "{indent}  -> Calc(table columns): select=[{}] -> {}",
                    cols.join(", "),
                    src.columns
                );
            }
            if let Some(wm) = &src.watermark {
                let _ = writeln!(
                    out,
                    "{indent}  -> Watermarks: rowtime={}, watermark={}",
                    src.columns.columns[wm.rowtime].name, wm.expr
                );
            }
            *leaf += 1;
        }
        Source::UnionAll(branches) => {
            for (b, branch) in branches.iter().enumerate() {
                let _ = writeln!(out, "{indent}  Branch {} of UNION ALL:", b + 1);
                explain_pipeline(out, branch, n, leaf, &format!("{indent}    "));
            }
            let _ = writeln!(
                out,
                "{indent}  -> UnionAll({} inputs; watermark = the minimum of theirs)",
                branches.len()
            );
        }
        Source::Join(j) => {
            for (side, p) in [("Left", &j.left), ("Right", &j.right)] {
                let _ = writeln!(out, "{indent}  {side} input of the join:");
                explain_pipeline(out, p, n, leaf, &format!("{indent}    "));
            }
            let keys = |ks: &[Expr]| {
                ks.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "{indent}  -> {}Join(joinType=[{}], leftKey=[{}], rightKey=[{}]{})  [uid {}, state: keyed rows of both inputs{}]",
                match (j.interval, j.window, j.temporal) {
                    (Some(b), _, _) => format!(
                        "Interval(${} - right ${} in [{} ms, {} ms], event time) ",
                        b.left_time, b.right_time, b.lower, b.upper
                    ),
                    (None, Some(w), _) => format!(
                        "Window({}, window_end ${} and right ${}, fires at the watermark) ",
                        w.window, w.left_end, w.right_end
                    ),
                    (None, None, Some(t)) => format!(
                        "Temporal(right versions by ${} as of ${}, event time) ",
                        t.right_time, t.left_time
                    ),
                    (None, None, None) => String::new(),
                },
                j.kind.name(),
                keys(&j.left_keys),
                keys(&j.right_keys),
                j.condition
                    .as_ref()
                    .map_or(String::new(), |c| format!(", where={c}")),
                j.uid,
                if p.is_changelog() {
                    ", updating result"
                } else if j.window.is_some() {
                    " per window, dropped when it fires; event-time timers"
                } else {
                    ""
                }
            );
        }
        Source::Lookup(l) => {
            explain_pipeline(out, &l.input, n, leaf, indent);
            let keys: Vec<String> = l
                .keys
                .iter()
                .map(|(c, e)| format!("{}={e}", l.table.columns.columns[*c].name))
                .collect();
            let _ = writeln!(
                out,
                "{indent}  -> LookupJoin(table=[{}], joinType=[{}], lookup=[{}]{})  [stateless, a query per key (connector={})]",
                l.table.name,
                if l.left_outer { "LEFT" } else { "INNER" },
                keys.join(", "),
                l.condition
                    .as_ref()
                    .map_or(String::new(), |c| format!(", where={c}")),
                l.table.connector()
            );
        }
    }
    for step in &p.steps {
        match step {
            Step::Calc { filter, projection } => {
                let cols: Vec<String> = projection.iter().map(ToString::to_string).collect();
                match filter {
                    Some(f) => {
                        let _ = writeln!(
                            out,
                            "{indent}  -> Calc: where={f}, select=[{}]",
                            cols.join(", ")
                        );
                    }
                    None => {
                        let _ = writeln!(out, "{indent}  -> Calc: select=[{}]", cols.join(", "));
                    }
                }
            }
            Step::WindowAggregate {
                window,
                time_column,
                proctime,
                keys,
                aggs,
                uid,
            } => {
                write_key_by(out, indent, keys);
                let w = window.to_string();
                let aggs = explain_aggs(aggs);
                let time = if *proctime { "processing" } else { "event" };
                let _ = writeln!(
                    out,
                    "{indent}  -> WindowAggregate: {w} on ${time_column} ({time} time), aggs=[{}]  [uid {uid}, state: keyed accumulators per window, {time}-time timers]",
                    aggs.join(", ")
                );
            }
            Step::GroupAggregate { keys, aggs, uid } => {
                write_key_by(out, indent, keys);
                let _ = writeln!(
                    out,
                    "{indent}  -> GroupAggregate: aggs=[{}]  [uid {uid}, state: keyed accumulators, updating result (+I, -U, +U, -D)]",
                    explain_aggs(aggs).join(", ")
                );
            }
            Step::OverAggregate {
                keys,
                time_column,
                frame,
                aggs,
                uid,
                ..
            } => {
                write_key_by(out, indent, keys);
                let _ = writeln!(
                    out,
                    "{indent}  -> OverAggregate: ORDER BY ${time_column} (event time) {frame}, aggs=[{}]  [uid {uid}, state: keyed rows waiting for the watermark and the frame's accumulators, event-time timers]",
                    explain_aggs(aggs).join(", ")
                );
            }
            Step::MatchRecognize(m) => {
                write_key_by(out, indent, &m.keys);
                let vars: Vec<String> = m
                    .vars
                    .iter()
                    .map(|v| {
                        let q = v.quantifier;
                        let quant = match (q.min, q.max) {
                            (1, Some(1)) => String::new(),
                            (0, Some(1)) => "?".into(),
                            (0, None) => "*".into(),
                            (1, None) => "+".into(),
                            (n, None) => format!("{{{n},}}"),
                            (n, Some(k)) if n == k => format!("{{{n}}}"),
                            (n, Some(k)) => format!("{{{n},{k}}}"),
                        };
                        let reluctant = if q.greedy || q.max == Some(1) {
                            ""
                        } else {
                            "?"
                        };
                        format!("{}{quant}{reluctant}", v.name)
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{indent}  -> Match: ORDER BY ${} (event time), PATTERN ({}){}, AFTER MATCH SKIP {:?}, {} measures  [uid {}, state: keyed rows waiting for the watermark and the NFA's partial matches, event-time timers]",
                    m.time_column,
                    vars.join(" "),
                    m.within
                        .map(|w| format!(" WITHIN {w:?}"))
                        .unwrap_or_default(),
                    m.skip,
                    m.measures.len(),
                    m.uid
                );
            }
            Step::TopN {
                keys,
                order,
                limit,
                with_rank,
                uid,
            } => {
                write_key_by(out, indent, keys);
                let _ = writeln!(
                    out,
                    "{indent}  -> Rank: order=[{}], rownum <= {limit}{}  [uid {uid}, state: keyed rows in rank order, updating result]",
                    explain_order(order).join(", "),
                    if *with_rank {
                        ""
                    } else {
                        " (rownum not selected)"
                    }
                );
            }
            Step::WindowTopN {
                window,
                keys,
                order,
                limit,
                uid,
            } => {
                write_key_by(out, indent, keys);
                let w = match window {
                    TopNWindow::Tvf {
                        window,
                        time_column,
                    } => format!("{window} on ${time_column} (event time)"),
                    TopNWindow::Columns { start, end } => {
                        format!("window [${start}, ${end}) of each row (event time)")
                    }
                };
                let order = explain_order(order);
                let _ = writeln!(
                    out,
                    "{indent}  -> WindowTopN: {w}, order=[{}], rownum <= {limit}  [uid {uid}, state: keyed best {limit} rows per window, event-time timers]",
                    order.join(", ")
                );
            }
            Step::WindowTvf {
                window,
                time_column,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{indent}  -> WindowTableFunction: {window} on ${time_column} (event time), adds window_start, window_end, window_time  [stateless]"
                );
            }
            Step::Lateral {
                function,
                args,
                left_outer,
            } => {
                let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    "{indent}  -> {}: {}({})  [user-defined table function, stateless]",
                    if *left_outer {
                        "LeftLateralJoin"
                    } else {
                        "LateralJoin"
                    },
                    function.name(),
                    args.join(", ")
                );
            }
        }
    }
}

/// Sort keys as explain shows them (`$2 DESC NULLS LAST`).
fn explain_order(order: &[SortKey]) -> Vec<String> {
    order
        .iter()
        .map(|k| {
            format!(
                "${} {} NULLS {}",
                k.column,
                if k.descending { "DESC" } else { "ASC" },
                if k.nulls_first { "FIRST" } else { "LAST" }
            )
        })
        .collect()
}

/// The aggregate calls as explain shows them (`SUM($2)`, `COUNT(*)`, `f($1, $2)`).
fn explain_aggs(aggs: &[AggCall]) -> Vec<String> {
    aggs.iter()
        .map(|a| match (&a.user, &a.arg) {
            (Some(u), _) => {
                let args: Vec<String> = u.args.iter().map(ToString::to_string).collect();
                format!("{}({})", u.function.name(), args.join(", "))
            }
            (None, Some(e)) => format!("{}({e})", format!("{:?}", a.func).to_uppercase()),
            (None, None) => "COUNT(*)".into(),
        })
        .collect()
}

/// A stable 64-bit FNV-1a hash (for uids: the same plan text gives the same uid in every
/// build and on every machine).
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
