//! Lowering a planned job onto the DataStream runtime: a source per table an insert reads
//! (several for a `UNION ALL`, whose branches' streams are merged with `union`), the watermark
//! assigner on the rowtime column, `Calc` steps as chained flat-maps, window aggregations
//! as `keyBy` + event-time windows + incremental aggregation (keyed state), and the sink.

use crate::agg::SqlAggregate;
use crate::changelog::Change;
use crate::connectors::{
    activemq, avro_file, blackhole, cassandra, datagen, elasticsearch, filesystem, jdbc, kafka,
    kinesis, parquet, print, rabbitmq, redis, upsert_kafka,
};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::{EvalError, Expr};
use crate::group_agg::GroupAggregateFn;
use crate::plan::{
    Insert, Pipeline, Settings, SortKey, Source, SqlJob, Step, TableDef, TopNWindow, WindowKind,
};
use crate::topn::{TopN, WindowFromColumns};
use crate::types::{DataType, Row, Value};
use fjord::sinks::{BulkFormat, ExactlyOnceFileSink};
use fjord::time::{WatermarkGenerator, WatermarkStrategy};
use fjord::windows::{
    CumulativeEventTimeWindows, EventTimeSessionWindows, ProcessWindowFunction,
    ProcessingTimeSessionWindows, SlidingEventTimeWindows, SlidingProcessingTimeWindows,
    TimeWindow, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowContext,
};
use fjord::{
    AggregateFunction, BoxError, Collector, Data, DataStream, FlatMapFunction, KeyedStream,
    SingleOutputStreamOperator, StreamExecutionEnvironment,
};
use std::sync::Arc;
use std::time::Duration;

/// Aggregates every window of a window table-valued function's kind, keyed by `keyed`'s key:
/// the one place where a [`WindowKind`] becomes the engine's window assigner.
fn aggregate_in_windows<ACC: Data, V: Data, A, P>(
    keyed: &KeyedStream<Row, Vec<Value>>,
    window: &WindowKind,
    proctime: bool,
    f: A,
    emit: P,
) -> SingleOutputStreamOperator<Row>
where
    A: AggregateFunction<Row, ACC, V> + Clone,
    P: ProcessWindowFunction<V, Row, Vec<Value>, TimeWindow> + Clone,
{
    if proctime {
        return match *window {
            WindowKind::Tumble { size } => keyed
                .window(TumblingProcessingTimeWindows::of(ms(size)))
                .aggregate_with_process(f, emit),
            WindowKind::Hop { slide, size } => keyed
                .window(SlidingProcessingTimeWindows::of(ms(size), ms(slide)))
                .aggregate_with_process(f, emit),
            WindowKind::Session { gap } => keyed
                .window(ProcessingTimeSessionWindows::<Row>::with_gap(ms(gap)))
                .aggregate_with_process(f, emit),
            WindowKind::Cumulate { .. } => unreachable!("refused at planning"),
        };
    }
    match *window {
        WindowKind::Tumble { size } => keyed
            .window(TumblingEventTimeWindows::of(ms(size)))
            .aggregate_with_process(f, emit),
        WindowKind::Hop { slide, size } => keyed
            .window(SlidingEventTimeWindows::of(ms(size), ms(slide)))
            .aggregate_with_process(f, emit),
        WindowKind::Session { gap } => keyed
            .window(EventTimeSessionWindows::with_gap(ms(gap)))
            .aggregate_with_process(f, emit),
        WindowKind::Cumulate { step, size } => keyed
            .window(CumulativeEventTimeWindows::of(ms(size), ms(step)))
            .aggregate_with_process(f, emit),
    }
}

/// Adds the job's settings and every insert's operators to `env`.
///
/// # Errors
/// Connector options that became invalid since planning (a file removed, say).
pub fn build(job: &SqlJob, env: &StreamExecutionEnvironment) -> Result<()> {
    apply_settings(job, env);
    for (n, insert) in job.inserts.iter().enumerate() {
        build_insert(env, n, insert, &job.settings)?;
    }
    Ok(())
}

/// Adds the job's operators to `env` as [`build`] does, except that each insert's rows are
/// collected in memory instead of written to its sink table: Flink's
/// `TableResult.collect()`, for tests and small results. Appended rows are collected as
/// inserts, an updating query's rows with their change kinds. Returns, per insert in order,
/// the sink table's name and the collected changes (readable once the job ran).
///
/// # Errors
/// As [`build`].
pub fn build_collecting(
    job: &SqlJob,
    env: &StreamExecutionEnvironment,
) -> Result<Vec<(String, fjord::sinks::CollectedOutput<Change>)>> {
    apply_settings(job, env);
    let mut out = Vec::new();
    for (n, insert) in job.inserts.iter().enumerate() {
        let rows = build_pipeline(env, n, &mut 0, &insert.pipeline, &job.settings)?;
        let (sink, collected) = fjord::sinks::CollectSink::new();
        rows.into_changes()
            .sink_to(sink, &format!("Collect: {}", insert.sink.name));
        out.push((insert.sink.name.clone(), collected));
    }
    Ok(out)
}

/// The job's `SET` parallelism and checkpoint interval on `env`.
fn apply_settings(job: &SqlJob, env: &StreamExecutionEnvironment) {
    if let Some(p) = job.settings.parallelism {
        env.set_parallelism(p);
    }
    if let Some(interval) = job.settings.checkpoint_interval {
        env.enable_checkpointing(interval);
    }
}

fn option_error(table: &TableDef, message: String) -> SqlError {
    SqlError::at(
        ErrorKind::InvalidOption,
        Pos::default(),
        format!("table '{}': {message}", table.name),
    )
}

/// Filter and projection of one row (Flink's `Calc`); evaluation errors fail the job.
///
/// The input row is owned, so a projected column (or a field of one, `bid.price`) that no
/// other projected path overlaps is moved into the output instead of copied: the other
/// expressions are evaluated first, then the moves. A view that picks the fields of a nested
/// ROW (Nexmark's `bid` view) copies no strings.
#[derive(Clone)]
struct CalcFn {
    /// Rows pass when each is TRUE, tested in order (a merged step's filters).
    filters: Arc<Vec<Expr>>,
    projection: Arc<Vec<Expr>>,
    /// Per projected expression: the path (column, then field indices) to move, if it is one.
    moves: Arc<Vec<Option<Vec<usize>>>>,
    name: String,
}

impl CalcFn {
    fn new(filters: Vec<Expr>, projection: Vec<Expr>, name: String) -> Self {
        let paths: Vec<Option<Vec<usize>>> = projection.iter().map(path_of).collect();
        let overlaps = |a: &[usize], b: &[usize]| a.starts_with(b) || b.starts_with(a);
        let moves = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = p.as_ref()?;
                let alone = paths
                    .iter()
                    .enumerate()
                    .all(|(j, q)| j == i || q.as_ref().is_none_or(|q| !overlaps(p, q)));
                alone.then(|| p.clone())
            })
            .collect();
        CalcFn {
            filters: Arc::new(filters),
            projection: Arc::new(projection),
            moves: Arc::new(moves),
            name,
        }
    }
}

/// A step to lower: consecutive `Calc` steps merged into one, or another step.
enum Merged<'a> {
    /// Filters (tested in order) and the projection.
    Calc(Vec<Expr>, Vec<Expr>),
    Other(&'a Step),
}

/// Merges consecutive `Calc` steps (a view's, the query's, the sink's type coercion) into one
/// operator, as Flink's planner merges Calcs: the later step's expressions are rewritten over
/// the earlier one's inputs. Not across a projection that calls a user-defined function,
/// which the rewrite could evaluate more than once.
fn merge_calcs(steps: &[Step]) -> Vec<Merged<'_>> {
    let mut out: Vec<Merged<'_>> = Vec::new();
    for step in steps {
        let Step::Calc { filter, projection } = step else {
            out.push(Merged::Other(step));
            continue;
        };
        if let Some(Merged::Calc(filters, inputs)) = out.last_mut()
            && !inputs.iter().any(Expr::calls_udf)
        {
            filters.extend(filter.iter().map(|f| f.substitute(inputs)));
            *inputs = projection.iter().map(|e| e.substitute(inputs)).collect();
            continue;
        }
        out.push(Merged::Calc(
            filter.iter().cloned().collect(),
            projection.clone(),
        ));
    }
    out
}

/// The path of a column or of fields into one (`$3.$0` is `[3, 0]`); `None` for other
/// expressions.
fn path_of(e: &Expr) -> Option<Vec<usize>> {
    match e {
        Expr::Column(i, _) => Some(vec![*i]),
        Expr::Field(inner, i, _) => {
            let mut p = path_of(inner)?;
            p.push(*i);
            Some(p)
        }
        _ => None,
    }
}

/// Takes the value at `path` out of `row`, leaving NULL (NULL when the path ends early).
fn take_path(row: &mut [Value], path: &[usize]) -> Value {
    let Some((first, rest)) = path.split_first() else {
        return Value::Null;
    };
    let Some(mut v) = row.get_mut(*first) else {
        return Value::Null;
    };
    for i in rest {
        v = match v {
            Value::Row(fields) => match fields.get_mut(*i) {
                Some(f) => f,
                None => return Value::Null,
            },
            _ => return Value::Null,
        };
    }
    std::mem::replace(v, Value::Null)
}

impl CalcFn {
    /// The projected row, or `None` when the filter drops it.
    fn project(&self, mut row: Row) -> Result<Option<Row>, EvalError> {
        for f in self.filters.iter() {
            if f.eval(&row)? != Value::Boolean(true) {
                return Ok(None);
            }
        }
        let mut result = Vec::with_capacity(self.projection.len());
        for (e, m) in self.projection.iter().zip(self.moves.iter()) {
            result.push(match m {
                Some(_) => Value::Null,
                None => e.eval(&row)?,
            });
        }
        for (slot, m) in result.iter_mut().zip(self.moves.iter()) {
            if let Some(path) = m {
                *slot = take_path(&mut row, path);
            }
        }
        Ok(Some(result))
    }
}

impl FlatMapFunction<Change, Change> for CalcFn {
    /// A change of a changelog keeps its kind (a filtered-out row drops the change).
    fn flat_map(
        &mut self,
        change: Change,
        out: &mut Collector<'_, Change>,
    ) -> Result<(), BoxError> {
        match self.project(change.row) {
            Ok(Some(row)) => out.collect(Change {
                kind: change.kind,
                row,
            }),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", self.name).into()),
        }
        Ok(())
    }
}

impl FlatMapFunction<Row, Row> for CalcFn {
    fn flat_map(&mut self, row: Row, out: &mut Collector<'_, Row>) -> Result<(), BoxError> {
        match self.project(row) {
            Ok(Some(result)) => out.collect(result),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", self.name).into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod calc_tests {
    use super::*;
    use crate::types::DataType;

    #[test]
    fn moved_paths_and_evaluated_expressions_give_the_same_row_as_copies() {
        let (int, s) = (DataType::Int, DataType::String);
        let inner = DataType::row(vec![]);
        let col = |i| Box::new(Expr::Column(i, inner));
        let projection = vec![
            Expr::Field(col(0), 1, s),                                // moved
            Expr::Column(1, int),                                     // twice: copied
            Expr::Field(col(0), 0, int),                              // moved
            Expr::Column(1, int),                                     // twice: copied
            Expr::IsNull(Box::new(Expr::Field(col(0), 1, s)), false), // reads a moved field first
            Expr::Column(2, s),                                       // moved
            Expr::Field(col(3), 0, int),                              // NULL row: NULL
        ];
        let calc = CalcFn::new(Vec::new(), projection, "test".into());
        assert_eq!(
            *calc.moves,
            vec![
                Some(vec![0, 1]),
                None,
                Some(vec![0, 0]),
                None,
                None,
                Some(vec![2]),
                Some(vec![3, 0])
            ]
        );
        let row = vec![
            Value::Row(vec![Value::Int(7), Value::String("x".into())]),
            Value::Int(1),
            Value::String("y".into()),
            Value::Null,
        ];
        assert_eq!(
            calc.project(row).unwrap().unwrap(),
            vec![
                Value::String("x".into()),
                Value::Int(1),
                Value::Int(7),
                Value::Int(1),
                Value::Boolean(false),
                Value::String("y".into()),
                Value::Null,
            ]
        );
        let filtered = CalcFn::new(
            vec![Expr::Literal(Value::Boolean(false), DataType::Boolean)],
            vec![Expr::Column(0, int)],
            "test".into(),
        );
        assert_eq!(filtered.project(vec![Value::Int(1)]).unwrap(), None);
    }
}

/// Fails the job on a NULL rowtime, as Flink does: an event without a time cannot be
/// windowed, and dropping it silently would lose it.
#[derive(Clone)]
struct RowtimeCheck {
    column: usize,
    name: String,
}

impl FlatMapFunction<Row, Row> for RowtimeCheck {
    fn flat_map(&mut self, row: Row, out: &mut Collector<'_, Row>) -> Result<(), BoxError> {
        if row[self.column].is_null() {
            return Err(format!(
                "the rowtime column '{}' is NULL in a row; event-time windows need a time for every row (filter such rows in a view, or fix the input)",
                self.name
            )
            .into());
        }
        out.collect(row);
        Ok(())
    }
}

/// The watermark of Flink SQL's `WATERMARK FOR ts AS expr`: the highest `expr` seen,
/// emitted periodically (rows with a NULL watermark value are skipped, as Flink does).
#[derive(Clone)]
struct SqlWatermarks {
    expr: Arc<Expr>,
    max: Option<i64>,
}

impl WatermarkGenerator<Row> for SqlWatermarks {
    fn on_event(&mut self, row: &Row, _timestamp: i64, _output: &mut fjord::time::WatermarkOutput) {
        if let Ok(Value::Timestamp(w) | Value::TimestampLtz(w)) = self.expr.eval(row) {
            self.max = Some(self.max.map_or(w, |m| m.max(w)));
        }
    }

    fn on_periodic_emit(&mut self, output: &mut fjord::time::WatermarkOutput) {
        if let Some(m) = self.max {
            output.emit_watermark(m);
        }
    }
}

/// A window Top-N: keyed by the partition columns, the best rows of each window in keyed
/// state ([`TopN`]), emitted with the window's columns (for a TVF) and their rownum.
fn window_top_n(
    stream: DataStream<Row>,
    window: TopNWindow,
    keys: &[usize],
    order: &[SortKey],
    limit: usize,
) -> SingleOutputStreamOperator<Row> {
    let keys = keys.to_vec();
    let keyed = stream
        .key_by(move |row: &Row| keys.iter().map(|&k| row[k].clone()).collect::<Vec<Value>>());
    let f = TopN {
        order: Arc::new(order.to_vec()),
        limit,
    };
    let with_window = matches!(window, TopNWindow::Tvf { .. });
    let emit = move |_key: &Vec<Value>,
                     ctx: &mut WindowContext<'_, TimeWindow, Row>,
                     results: Vec<Vec<Row>>| {
        let (start, end) = (ctx.window().start, ctx.window().end);
        for rows in results {
            for (n, mut row) in rows.into_iter().enumerate() {
                if with_window {
                    row.push(Value::Timestamp(start));
                    row.push(Value::Timestamp(end));
                    row.push(Value::Timestamp(end - 1));
                }
                row.push(Value::BigInt(n as i64 + 1));
                ctx.collect(row);
            }
        }
    };
    match window {
        TopNWindow::Tvf { window, .. } => aggregate_in_windows(&keyed, &window, false, f, emit),
        TopNWindow::Columns { start, end } => keyed
            .window(WindowFromColumns { start, end })
            .aggregate_with_process(f, emit),
    }
}

fn ms(m: i64) -> Duration {
    Duration::from_millis(m as u64)
}

fn build_insert(
    env: &StreamExecutionEnvironment,
    n: usize,
    insert: &Insert,
    settings: &Settings,
) -> Result<()> {
    let rows = build_pipeline(env, n, &mut 0, &insert.pipeline, settings)?;
    match rows {
        Rows::Append(stream) => build_sink(n, insert, stream),
        Rows::Changes(changes) => build_changelog_sink(n, insert, changes),
    }
}

/// A pipeline's rows on the runtime: appended rows, or a changelog from the first step
/// that updates its result on (a `GROUP BY` without windows).
enum Rows {
    /// Inserts only.
    Append(DataStream<Row>),
    /// Rows with their change kinds.
    Changes(DataStream<Change>),
}

impl Rows {
    /// The rows as a changelog (appended rows become inserts).
    fn into_changes(self) -> DataStream<Change> {
        match self {
            Rows::Append(stream) => stream.map(Change::insert).name("Changelog(+I)").stream(),
            Rows::Changes(changes) => changes,
        }
    }

    /// A stateless, chained function applied to each row, keeping a change's kind.
    fn flat_map<F>(self, f: F, name: &str) -> Rows
    where
        F: FlatMapFunction<Row, Row> + FlatMapFunction<Change, Change> + Clone,
    {
        match self {
            Rows::Append(s) => Rows::Append(s.flat_map(f).name(name).stream()),
            Rows::Changes(c) => Rows::Changes(c.flat_map(f).name(name).stream()),
        }
    }

    /// The appended rows of a step that takes no changes (the planner refused updating
    /// input already).
    fn appended(self, step: &str) -> Result<DataStream<Row>> {
        match self {
            Rows::Append(stream) => Ok(stream),
            Rows::Changes(_) => Err(SqlError::at(
                ErrorKind::Unsupported,
                Pos::default(),
                format!("{step} takes appended rows only, and its input is updated"),
            )),
        }
    }
}

/// The rows of `p`: its source (or the union of its branches' streams), then its steps.
/// `leaf` counts the sources of insert `n` built so far (their uids).
fn build_pipeline(
    env: &StreamExecutionEnvironment,
    n: usize,
    leaf: &mut usize,
    p: &Pipeline,
    settings: &Settings,
) -> Result<Rows> {
    let mut rows = match &p.source {
        Source::Table(src) if crate::connectors::is_changelog_source(src) => {
            let changes = build_changelog_source(env, n, *leaf, src, settings)?;
            *leaf += 1;
            Rows::Changes(changes)
        }
        Source::Table(src) => {
            let stream = build_source(env, n, *leaf, src)?;
            *leaf += 1;
            Rows::Append(stream)
        }
        Source::Join(j) => join(env, n, leaf, j, settings)?,
        Source::Lookup(l) => lookup_join(env, n, leaf, l, settings)?,
        Source::UnionAll(branches) => {
            let mut built = Vec::with_capacity(branches.len());
            for b in branches {
                built.push(build_pipeline(env, n, leaf, b, settings)?);
            }
            if built.iter().all(|r| matches!(r, Rows::Append(_))) {
                let streams: Vec<DataStream<Row>> = built
                    .into_iter()
                    .map(|r| r.appended("UNION ALL"))
                    .collect::<Result<_>>()?;
                let others: Vec<&DataStream<Row>> = streams[1..].iter().collect();
                Rows::Append(streams[0].union(&others))
            } else {
                let streams: Vec<DataStream<Change>> =
                    built.into_iter().map(Rows::into_changes).collect();
                let others: Vec<&DataStream<Change>> = streams[1..].iter().collect();
                Rows::Changes(streams[0].union(&others))
            }
        }
    };
    for step in merge_calcs(&p.steps) {
        let step = match step {
            Merged::Calc(filters, projection) => {
                rows = rows.flat_map(CalcFn::new(filters, projection, "Calc".into()), "Calc");
                continue;
            }
            Merged::Other(step) => step,
        };
        if let Step::GroupAggregate { keys, aggs, uid } = step {
            rows = Rows::Changes(group_aggregate(rows, keys, aggs, uid, settings));
            continue;
        }
        if let Step::TopN {
            keys,
            order,
            limit,
            with_rank,
            uid,
        } = step
        {
            let retracts = matches!(rows, Rows::Changes(_));
            let keys = keys.clone();
            let f = crate::rank::RankFn::new(
                order.clone(),
                *limit,
                *with_rank,
                retracts,
                settings.state_ttl,
            );
            rows = Rows::Changes(
                rows.into_changes()
                    .key_by(move |c: &Change| keys.iter().map(|&k| c.row[k].clone()).collect())
                    .process(f)
                    .uid(uid)
                    .name(&format!("Rank({uid})"))
                    .stream(),
            );
            continue;
        }
        if let (
            Step::Lateral {
                function,
                args,
                left_outer,
            },
            Rows::Changes(changes),
        ) = (step, &rows)
        {
            let lateral = crate::udf::bind::LateralFn {
                function: function.clone(),
                args: Arc::new(args.clone()),
                left_outer: *left_outer,
            };
            rows = Rows::Changes(
                changes
                    .flat_map(lateral)
                    .name(&format!("LateralJoin({})", function.name()))
                    .stream(),
            );
            continue;
        }
        let stream = rows.appended(&format!("{step:?}"))?;
        rows = Rows::Append(match step {
            Step::Calc { .. } | Step::GroupAggregate { .. } | Step::TopN { .. } => {
                unreachable!("lowered above")
            }
            Step::WindowAggregate {
                window,
                proctime,
                keys,
                aggs,
                uid,
                ..
            } => {
                // Keys and aggregate arguments are computed first, so the window keeps only
                // them and adding to an accumulator cannot fail.
                // (Column types are not used by evaluation.)
                let pre = columns_then_arguments(keys.iter().copied(), aggs);
                let nkeys = keys.len();
                let keyed = stream
                    .flat_map(CalcFn::new(Vec::new(), pre, "WindowAggregate input".into()))
                    .name("Calc(window keys and arguments)")
                    .stream()
                    .key_by(move |row: &Row| row[..nkeys].to_vec());
                let f = SqlAggregate {
                    calls: Arc::new(aggs.iter().map(|a| (a.func, a.data_type)).collect()),
                    first_arg: nkeys,
                    user: Arc::new(
                        aggs.iter()
                            .map(|a| a.user.as_ref().map(|u| u.function.clone()))
                            .collect(),
                    ),
                };
                let emit = |key: &Vec<Value>,
                            ctx: &mut WindowContext<'_, TimeWindow, Row>,
                            results: Vec<Vec<Value>>| {
                    let (start, end) = (ctx.window().start, ctx.window().end);
                    for r in results {
                        let mut row = Vec::with_capacity(3 + key.len() + r.len());
                        row.push(Value::Timestamp(start));
                        row.push(Value::Timestamp(end));
                        // window_time: the window's last millisecond, as Flink.
                        row.push(Value::Timestamp(end - 1));
                        row.extend(key.iter().cloned());
                        row.extend(r);
                        ctx.collect(row);
                    }
                };
                let out = aggregate_in_windows(&keyed, window, *proctime, f, emit);
                out.uid(uid)
                    .name(&format!("WindowAggregate({uid})"))
                    .stream()
            }
            Step::MatchRecognize(m) => match_recognize(stream, m)?,
            Step::OverAggregate {
                keys,
                width,
                time_column,
                frame,
                aggs,
                uid,
            } => over_aggregate(
                stream,
                (keys, *width, *time_column, *frame),
                aggs,
                uid,
                settings,
            ),
            Step::WindowTopN {
                window,
                keys,
                order,
                limit,
                uid,
            } => window_top_n(stream, *window, keys, order, *limit)
                .uid(uid)
                .name(&format!("WindowTopN({uid})"))
                .stream(),
            Step::WindowTvf {
                window,
                time_column,
                ..
            } => {
                // (The source fails on a NULL rowtime first; the column's name is gone here.)
                stream
                    .flat_map(crate::window_join::WindowTvfFn::new(
                        *window,
                        *time_column,
                        format!("${time_column}"),
                    ))
                    .name(&format!("WindowTableFunction({window})"))
                    .stream()
            }
            Step::Lateral {
                function,
                args,
                left_outer,
            } => {
                let name = format!(
                    "{}({})",
                    if *left_outer {
                        "LeftLateralJoin"
                    } else {
                        "LateralJoin"
                    },
                    function.name()
                );
                stream
                    .flat_map(crate::udf::bind::LateralFn {
                        function: function.clone(),
                        args: Arc::new(args.clone()),
                        left_outer: *left_outer,
                    })
                    .name(&name)
                    .stream()
            }
        });
    }
    Ok(rows)
}

/// A regular join: both inputs as changelogs keyed by their equi-join keys into a
/// [`JoinFn`](crate::join::JoinFn); an inner join of appended rows appends.
fn join(
    env: &StreamExecutionEnvironment,
    n: usize,
    leaf: &mut usize,
    j: &crate::plan::Join,
    settings: &Settings,
) -> Result<Rows> {
    let left = build_pipeline(env, n, leaf, &j.left, settings)?;
    let right = build_pipeline(env, n, leaf, &j.right, settings)?;
    if let Some(bounds) = j.interval {
        return interval_join(left, right, j, bounds);
    }
    if let Some(times) = j.temporal {
        return temporal_join(left, right, j, times);
    }
    if let Some(window) = j.window {
        return window_join(left, right, j, window);
    }
    let appends = j.kind == crate::plan::JoinKind::Inner
        && matches!((&left, &right), (Rows::Append(_), Rows::Append(_)));
    let key = |keys: &[Expr]| {
        let key = key_of(keys);
        move |c: &Change| key(&c.row)
    };
    let f = crate::join::JoinFn::new(
        j.kind,
        (j.left.schema.columns.len(), j.right.schema.columns.len()),
        j.condition.clone(),
        settings.state_ttl,
    );
    let joined = left
        .into_changes()
        .connect(&right.into_changes())
        .key_by(key(&j.left_keys), key(&j.right_keys))
        .process(f)
        .uid(&j.uid)
        .name(&format!("Join({}, {})", j.kind.name(), j.uid))
        .stream();
    Ok(if appends {
        Rows::Append(joined.map(|c: Change| c.row).name("Rows(+I)").stream())
    } else {
        Rows::Changes(joined)
    })
}

/// A lookup join: the input's rows (or changes) through a chained flat-map that queries the
/// `jdbc` table per key ([`jdbc::LookupJoinFn`], its lookup opened in the operator's `open`).
fn lookup_join(
    env: &StreamExecutionEnvironment,
    n: usize,
    leaf: &mut usize,
    l: &crate::plan::LookupJoin,
    settings: &Settings,
) -> Result<Rows> {
    let input = build_pipeline(env, n, leaf, &l.input, settings)?;
    let table = &l.table;
    let config = jdbc::check_lookup(table).map_err(|m| option_error(table, m))?;
    let key_columns: Vec<usize> = l.keys.iter().map(|(c, _)| *c).collect();
    let lookup = config
        .lookup(&key_columns)
        .map_err(|m| option_error(table, m))?;
    let types: Vec<DataType> = table.columns.columns.iter().map(|c| c.data_type).collect();
    let f = jdbc::LookupJoinFn::new(
        lookup,
        l.keys.iter().map(|(c, e)| (e.clone(), types[*c])).collect(),
        types,
        l.condition.clone(),
        l.left_outer,
        table.name.clone(),
    );
    let name = format!(
        "LookupJoin(table=[{}], joinType=[{}])",
        table.name,
        if l.left_outer { "LEFT" } else { "INNER" }
    );
    Ok(input.flat_map(f, &name))
}

/// `MATCH_RECOGNIZE`: keyed by the partition columns into the CEP library's operator; one
/// row per match.
fn match_recognize(stream: DataStream<Row>, m: &crate::plan::MatchSpec) -> Result<DataStream<Row>> {
    let pattern = crate::match_recognize::pattern(&m.vars, &m.skip, m.within).map_err(|e| {
        SqlError::at(
            ErrorKind::Unsupported,
            Pos::default(),
            format!("MATCH_RECOGNIZE: {e}"),
        )
    })?;
    let keys = m.keys.clone();
    let keyed = stream
        .key_by(move |row: &Row| keys.iter().map(|&k| row[k].clone()).collect::<Vec<Value>>());
    let stream = fjord_cep::CEP::pattern(&keyed, pattern).map_err(|e| {
        SqlError::at(
            ErrorKind::Unsupported,
            Pos::default(),
            format!("MATCH_RECOGNIZE: {e}"),
        )
    })?;
    let (keys, measures) = (m.keys.clone(), Arc::new(m.measures.clone()));
    Ok(stream
        .select(move |found: &fjord_cep::Match<Row>| {
            crate::match_recognize::measure(found, &keys, &measures)
        })
        .uid(&m.uid)
        .name(&format!("Match({})", m.uid))
        .stream())
}

/// An OVER aggregation: the row and the aggregates' arguments computed first, keyed by the
/// partition columns into an [`OverAggregateFn`](crate::over_agg::OverAggregateFn).
fn over_aggregate(
    stream: DataStream<Row>,
    step: (&[usize], usize, usize, crate::over_agg::OverFrame),
    aggs: &[crate::plan::AggCall],
    uid: &str,
    settings: &Settings,
) -> DataStream<Row> {
    let (keys, width, time_column, frame) = step;
    let keys = keys.to_vec();
    let bounded = !matches!(
        frame,
        crate::over_agg::OverFrame::Rows(None) | crate::over_agg::OverFrame::Range(None)
    );
    let calls = GroupAggregateFn::of_calls(aggs, width, bounded, None);
    let pre = columns_then_arguments(0..width, aggs);
    stream
        .flat_map(CalcFn::new(Vec::new(), pre, "OverAggregate input".into()))
        .name("Calc(OVER arguments)")
        .stream()
        .key_by(move |row: &Row| keys.iter().map(|&k| row[k].clone()).collect::<Vec<Value>>())
        .process(crate::over_agg::OverAggregateFn::new(
            calls,
            width,
            time_column,
            frame,
            settings.state_ttl,
        ))
        .uid(uid)
        .name(&format!("OverAggregate({uid})"))
        .stream()
}

/// An interval join: both inputs append, keyed by their equi-join keys into an
/// [`IntervalJoinFn`](crate::interval_join::IntervalJoinFn); appended rows out.
fn interval_join(
    left: Rows,
    right: Rows,
    j: &crate::plan::Join,
    bounds: crate::plan::IntervalBounds,
) -> Result<Rows> {
    let f = crate::interval_join::IntervalJoinFn::new(
        j.kind,
        (j.left.schema.columns.len(), j.right.schema.columns.len()),
        bounds,
        j.condition.clone(),
    );
    let joined = left
        .appended("an interval join")?
        .connect(&right.appended("an interval join")?)
        .key_by(key_of(&j.left_keys), key_of(&j.right_keys))
        .process(f)
        .uid(&j.uid)
        .name(&format!("IntervalJoin({}, {})", j.kind.name(), j.uid))
        .stream();
    Ok(Rows::Append(joined))
}

/// An event-time temporal join: the appended left rows and the versioned table's changes,
/// keyed by the equi-join keys into a
/// [`TemporalJoinFn`](crate::temporal_join::TemporalJoinFn); appended rows out.
fn temporal_join(
    left: Rows,
    right: Rows,
    j: &crate::plan::Join,
    times: crate::plan::TemporalTimes,
) -> Result<Rows> {
    let f = crate::temporal_join::TemporalJoinFn::new(
        j.kind == crate::plan::JoinKind::Left,
        j.right.schema.columns.len(),
        (times.left_time, times.right_time),
        j.condition.clone(),
    );
    let right_keys = key_of(&j.right_keys);
    let joined = left
        .appended("a temporal join")?
        .connect(&right.into_changes())
        .key_by(key_of(&j.left_keys), move |c: &Change| right_keys(&c.row))
        .process(f)
        .uid(&j.uid)
        .name(&format!("TemporalJoin({}, {})", j.kind.name(), j.uid))
        .stream();
    Ok(Rows::Append(joined))
}

/// A window join: both inputs append, keyed by their equi-join keys (the window bounds among
/// them) into a [`WindowJoinFn`](crate::window_join::WindowJoinFn); appended rows out when
/// each window fires.
fn window_join(
    left: Rows,
    right: Rows,
    j: &crate::plan::Join,
    window: crate::plan::WindowJoinSpec,
) -> Result<Rows> {
    let f = crate::window_join::WindowJoinFn::new(
        j.kind,
        (j.left.schema.columns.len(), j.right.schema.columns.len()),
        (window.left_end, window.right_end),
        j.condition.clone(),
    );
    let joined = left
        .appended("a window join")?
        .connect(&right.appended("a window join")?)
        .key_by(key_of(&j.left_keys), key_of(&j.right_keys))
        .process(f)
        .uid(&j.uid)
        .name(&format!(
            "WindowJoin({}, {}, {})",
            j.kind.name(),
            window.window,
            j.uid
        ))
        .stream();
    Ok(Rows::Append(joined))
}

/// The input columns `columns`, then every aggregate call's arguments: what an aggregation's
/// operator reads (computed before it, so adding to an accumulator cannot fail; column types
/// are not used by evaluation).
fn columns_then_arguments(
    columns: impl Iterator<Item = usize>,
    aggs: &[crate::plan::AggCall],
) -> Vec<Expr> {
    columns
        .map(|i| Expr::Column(i, DataType::String))
        .chain(aggs.iter().flat_map(crate::plan::AggCall::arguments))
        .collect()
}

/// A key selector computing `keys` over a row; a key that cannot be computed (a failing
/// cast) is NULL, so its row matches nothing.
fn key_of(keys: &[Expr]) -> impl Fn(&Row) -> Vec<Value> + Clone + Send + Sync + use<> {
    let keys = Arc::new(keys.to_vec());
    move |row: &Row| {
        keys.iter()
            .map(|k| k.eval(row).unwrap_or(Value::Null))
            .collect()
    }
}

/// A `GROUP BY` without windows: keys and aggregate arguments computed first (so adding to
/// an accumulator cannot fail), then keyed by the key columns into [`GroupAggregateFn`].
fn group_aggregate(
    rows: Rows,
    keys: &[usize],
    aggs: &[crate::plan::AggCall],
    uid: &str,
    settings: &Settings,
) -> DataStream<Change> {
    let retracts = matches!(rows, Rows::Changes(_));
    let nkeys = keys.len();
    let calc = CalcFn::new(
        Vec::new(),
        columns_then_arguments(keys.iter().copied(), aggs),
        "GroupAggregate input".into(),
    );
    let input = rows
        .flat_map(calc, "Calc(group keys and arguments)")
        .into_changes();
    let f = GroupAggregateFn::of_calls(aggs, nkeys, retracts, settings.state_ttl).counting_apart();
    input
        .key_by(move |c: &Change| c.row[..nkeys].to_vec())
        .process(f)
        .uid(uid)
        .name(&format!("GroupAggregate({uid})"))
        .stream()
}

/// Writes a changelog into a sink that takes changes (`print`, `blackhole`; the planner
/// refused the others).
fn build_changelog_sink(n: usize, insert: &Insert, changes: DataStream<Change>) -> Result<()> {
    let sink = &insert.sink;
    let name = format!("Sink: {} ({})", sink.name, sink.connector());
    if debug_sink(&changes, sink, &name)? {
        return Ok(());
    }
    match sink.connector() {
        "upsert-kafka" => {
            let config = upsert_kafka::UpsertKafkaConfig::from_table(sink)
                .map_err(|m| option_error(sink, m))?;
            let uid = format!("sql-sink-{n}-{}", sink.name);
            upsert_kafka::write_changes(changes, &config, &name, &uid)
                .map_err(|m| option_error(sink, m))?;
        }
        "kafka" => {
            let config = kafka::KafkaTableConfig::from_table(sink, false)
                .map_err(|m| option_error(sink, m))?;
            let kafka_sink = config.change_sink().map_err(|m| option_error(sink, m))?;
            changes
                .sink_to_transactional(kafka_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "jdbc" => {
            let config =
                jdbc::JdbcTableConfig::from_table(sink).map_err(|m| option_error(sink, m))?;
            let pg = config.change_sink().map_err(|m| option_error(sink, m))?;
            // Each key's changes reach one writer, in order (Flink's planner keys an upsert
            // sink's input by the primary key too).
            let key = config.key.clone();
            changes
                .key_by(move |c: &Change| {
                    key.iter()
                        .map(|&k| c.row[k].clone())
                        .collect::<Vec<Value>>()
                })
                .sink_to(pg, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        other => {
            return Err(option_error(
                sink,
                format!(
                    "connector '{other}' takes appended rows only, and the query's result is updated"
                ),
            ));
        }
    }
    Ok(())
}

/// A changelog table's source (`upsert-kafka`, `kafka` in `debezium-json`) and its computed
/// columns.
fn build_changelog_source(
    env: &StreamExecutionEnvironment,
    n: usize,
    k: usize,
    src: &TableDef,
    settings: &Settings,
) -> Result<DataStream<Change>> {
    let name = format!("Source: {} ({})", src.name, src.connector());
    let uid = crate::plan::source_uid(n, k, &src.name);
    let mut changes = if src.connector() == "upsert-kafka" {
        let config =
            upsert_kafka::UpsertKafkaConfig::from_table(src).map_err(|m| option_error(src, m))?;
        upsert_kafka::changelog_source(env, &config, &name, &uid, settings.state_ttl)
            .map_err(|m| option_error(src, m))?
    } else {
        let config =
            kafka::KafkaTableConfig::from_table(src, true).map_err(|m| option_error(src, m))?;
        let source = config
            .changelog_source()
            .map_err(|m| option_error(src, m))?;
        env.from_source(source, &name)
            .uid(&uid)
            .flat_map(|changes: Vec<Change>| changes)
            .name(&format!("Changes({})", src.name))
            .stream()
    };
    if let Some(projection) = &src.source_projection {
        changes = changes
            .flat_map(CalcFn::new(
                Vec::new(),
                projection.clone(),
                format!("computing the columns of table '{}'", src.name),
            ))
            .name(&format!("Calc({} columns)", src.name))
            .stream();
    }
    Ok(changes)
}

/// A table's source: the connector, its computed columns, the rowtime check and watermarks.
fn build_source(
    env: &StreamExecutionEnvironment,
    n: usize,
    k: usize,
    src: &TableDef,
) -> Result<DataStream<Row>> {
    let source_name = format!("Source: {} ({})", src.name, src.connector());
    let uid = crate::plan::source_uid(n, k, &src.name);
    let mut stream: DataStream<Row> = match src.connector() {
        "datagen" => {
            let config =
                datagen::DatagenConfig::from_table(src).map_err(|m| option_error(src, m))?;
            env.from_source(datagen::DatagenSource { config }, &source_name)
                .uid(&uid)
                .stream()
        }
        "filesystem" => {
            let config =
                filesystem::FileConfig::from_table(src, true).map_err(|m| option_error(src, m))?;
            env.from_source(filesystem::FileSource { config }, &source_name)
                .uid(&uid)
                .stream()
        }
        "kafka" => {
            let config =
                kafka::KafkaTableConfig::from_table(src, true).map_err(|m| option_error(src, m))?;
            let source = config.source().map_err(|m| option_error(src, m))?;
            env.from_source(source, &source_name).uid(&uid).stream()
        }
        "rabbitmq" => {
            let config =
                rabbitmq::RabbitMqTableConfig::from_table(src).map_err(|m| option_error(src, m))?;
            let source = config.source().map_err(|m| option_error(src, m))?;
            env.from_source(source, &source_name).uid(&uid).stream()
        }
        "activemq" => {
            let config =
                activemq::ActiveMqTableConfig::from_table(src).map_err(|m| option_error(src, m))?;
            let source = config.source().map_err(|m| option_error(src, m))?;
            env.from_source(source, &source_name).uid(&uid).stream()
        }
        "kinesis" => {
            let config =
                kinesis::KinesisTableConfig::from_table(src).map_err(|m| option_error(src, m))?;
            let source = config.source().map_err(|m| option_error(src, m))?;
            env.from_source(source, &source_name).uid(&uid).stream()
        }
        "jdbc" => {
            let config =
                jdbc::JdbcTableConfig::from_table(src).map_err(|m| option_error(src, m))?;
            let source = config.scan().map_err(|m| option_error(src, m))?;
            env.from_source(source, &source_name).uid(&uid).stream()
        }
        other => {
            return Err(option_error(
                src,
                format!("connector '{other}' cannot be read"),
            ));
        }
    };
    if let Some(projection) = &src.source_projection {
        stream = stream
            .flat_map(CalcFn::new(
                Vec::new(),
                projection.clone(),
                format!("computing the columns of table '{}'", src.name),
            ))
            .name(&format!("Calc({} columns)", src.name))
            .stream();
    }
    if let Some(wm) = &src.watermark {
        let rowtime = wm.rowtime;
        let column = src.columns.columns[rowtime].name.clone();
        stream = stream
            .flat_map(RowtimeCheck {
                column: rowtime,
                name: column.clone(),
            })
            .name(&format!("RowtimeNotNull({column})"))
            .stream();
        let expr = Arc::new(wm.expr.clone());
        let strategy = WatermarkStrategy::for_generator(move || SqlWatermarks {
            expr: expr.clone(),
            max: None,
        })
        .with_timestamp_assigner(move |row: &Row, _| match row[rowtime] {
            Value::Timestamp(ms) | Value::TimestampLtz(ms) => ms,
            _ => i64::MIN,
        });
        stream = stream.assign_timestamps_and_watermarks(strategy).stream();
    }
    Ok(stream)
}

/// Writes `stream` into the insert's sink table.
/// The exactly-once file sink writing a bulk format (Parquet, Avro), rolled as the table's
/// options say.
fn sink_bulk<F: BulkFormat<Row>>(
    stream: DataStream<Row>,
    url: &str,
    format: F,
    config: &filesystem::FileConfig,
    name: &str,
    uid: &str,
) {
    stream
        .sink_to_transactional(
            ExactlyOnceFileSink::for_format(url, format)
                .with_rolling_policy(config.rolling)
                .with_bucket_check_interval(config.check_interval),
            name,
        )
        .uid(uid);
}

/// Writes appended rows or changes into a `print` or `blackhole` table (both take either);
/// false for other connectors.
fn debug_sink<T: Data>(stream: &DataStream<T>, sink: &TableDef, name: &str) -> Result<bool>
where
    print::PrintSink: fjord::Sink<T>,
    blackhole::BlackholeSink: fjord::Sink<T>,
{
    match sink.connector() {
        "print" => {
            let config = print::PrintConfig::from_table(sink).map_err(|m| option_error(sink, m))?;
            stream.sink_to(print::PrintSink { config }, name);
        }
        "blackhole" => {
            stream.sink_to(blackhole::BlackholeSink, name);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn build_sink(n: usize, insert: &Insert, stream: DataStream<Row>) -> Result<()> {
    let sink = &insert.sink;
    let name = format!("Sink: {} ({})", sink.name, sink.connector());
    if debug_sink(&stream, sink, &name)? {
        return Ok(());
    }
    match sink.connector() {
        "filesystem" => {
            let config = filesystem::FileConfig::from_table(sink, false)
                .map_err(|m| option_error(sink, m))?;
            let uid = format!("sql-sink-{n}-{}", sink.name);
            match (config.url(), &config.format) {
                (Some(url), filesystem::FileFormat::Parquet(options)) => {
                    let format = parquet::format(&config.schema, *options)
                        .map_err(|m| option_error(sink, m))?;
                    sink_bulk(stream, &url, format, &config, &name, &uid);
                }
                (Some(url), filesystem::FileFormat::Avro(options)) => {
                    let format = avro_file::format(&config.schema, *options)
                        .map_err(|m| option_error(sink, m))?;
                    sink_bulk(stream, &url, format, &config, &name, &uid);
                }
                (Some(url), filesystem::FileFormat::Row(_) | filesystem::FileFormat::Raw(_)) => {
                    let encode = filesystem::EncodeLines::new(&config)
                        .map_err(|m| option_error(sink, m.to_string()))?;
                    stream
                        .map(encode)
                        .name(&format!("Encode: {} ({})", sink.name, sink.connector()))
                        .uid(&format!("{uid}-encode"))
                        .sink_to_transactional(
                            ExactlyOnceFileSink::new(url)
                                .with_rolling_policy(config.rolling)
                                .with_bucket_check_interval(config.check_interval)
                                .with_part_names("part", config.extension()),
                            &name,
                        )
                        .uid(&uid);
                }
                (None, _) => {
                    stream.sink_to(filesystem::FileSink { config }, &name);
                }
            }
        }
        "kafka" => {
            let config = kafka::KafkaTableConfig::from_table(sink, false)
                .map_err(|m| option_error(sink, m))?;
            let kafka_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to_transactional(kafka_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "upsert-kafka" => {
            // Appended rows are upserts too (each key's last row stays).
            let changes = Rows::Append(stream).into_changes();
            return build_changelog_sink(n, insert, changes);
        }
        "redis" => {
            let config =
                redis::RedisTableConfig::from_table(sink).map_err(|m| option_error(sink, m))?;
            let redis_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to(redis_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "rabbitmq" => {
            let config = rabbitmq::RabbitMqTableConfig::from_table(sink)
                .map_err(|m| option_error(sink, m))?;
            let rmq_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to(rmq_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "activemq" => {
            let config = activemq::ActiveMqTableConfig::from_table(sink)
                .map_err(|m| option_error(sink, m))?;
            let amq_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to(amq_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        c if elasticsearch::CONNECTORS.contains(&c) => {
            let config = elasticsearch::ElasticsearchTableConfig::from_table(sink)
                .map_err(|m| option_error(sink, m))?;
            let es_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to(es_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "cassandra" => {
            let config = cassandra::CassandraTableConfig::from_table(sink)
                .map_err(|m| option_error(sink, m))?;
            let uid = format!("sql-sink-{n}-{}", sink.name);
            if config.write_ahead_log {
                let wal = config
                    .write_ahead_sink()
                    .map_err(|m| option_error(sink, m))?;
                stream.sink_to_transactional(wal, &name).uid(&uid);
            } else {
                let c_sink = config.sink().map_err(|m| option_error(sink, m))?;
                stream.sink_to(c_sink, &name).uid(&uid);
            }
        }
        "kinesis" => {
            let config =
                kinesis::KinesisTableConfig::from_table(sink).map_err(|m| option_error(sink, m))?;
            let kinesis_sink = config.sink().map_err(|m| option_error(sink, m))?;
            stream
                .sink_to(kinesis_sink, &name)
                .uid(&format!("sql-sink-{n}-{}", sink.name));
        }
        "jdbc" => {
            let config =
                jdbc::JdbcTableConfig::from_table(sink).map_err(|m| option_error(sink, m))?;
            let pg = config.row_sink().map_err(|m| option_error(sink, m))?;
            let uid = format!("sql-sink-{n}-{}", sink.name);
            if config.upserts() {
                // Rows of one key reach one writer in order (the last one wins).
                let key = config.key.clone();
                stream
                    .key_by(move |row: &Row| {
                        key.iter().map(|&k| row[k].clone()).collect::<Vec<Value>>()
                    })
                    .sink_to(pg, &name)
                    .uid(&uid);
            } else {
                stream.sink_to(pg, &name).uid(&uid);
            }
        }
        other => {
            return Err(option_error(
                sink,
                format!("connector '{other}' cannot be written"),
            ));
        }
    }
    Ok(())
}
