//! Planning a script: statements in order, a catalog of tables and views, and every
//! `INSERT INTO` turned into a [`Pipeline`] of typed steps.

use crate::bind::{AggContext, Binder, coerce, map_type, pos_of};
use crate::connectors;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::plan::{
    AggCall, Insert, Pipeline, Settings, Source, SqlJob, Step, TableDef, WatermarkDef, WindowKind,
    stable_hash,
};
use crate::plan::{ColumnKind, MetadataColumn};
use crate::script::{Preparsed, preparse};
use crate::types::{Column, DataType, Schema};
use sqlparser::ast::{self, Spanned};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The supported `SET` keys.
const SETTINGS: &str = "parallelism.default, execution.checkpointing.interval, pipeline.name, table.exec.state.ttl, execution.runtime-mode ('streaming')";

#[derive(Default)]
pub(crate) struct Catalog {
    tables: HashMap<String, (Arc<TableDef>, Pos)>,
    views: HashMap<String, Pipeline>,
    /// Whether a `filesystem` source's path must exist on this machine (not when the script is
    /// checked for running elsewhere, as the operator does).
    local_paths: bool,
}

impl Catalog {
    /// The table of this name (created with `CREATE TABLE`).
    pub(crate) fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.tables.get(name).map(|(t, _)| t.clone())
    }

    /// Whether a view of this name exists.
    pub(crate) fn has_view(&self, name: &str) -> bool {
        self.views.contains_key(name)
    }
}

pub(crate) fn unsupported(pos: Pos, message: impl Into<String>) -> SqlError {
    SqlError::at(ErrorKind::Unsupported, pos, message)
}

pub(crate) fn object_name(name: &ast::ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map_or_else(|| name.to_string(), |i| i.value.clone())
}

/// Plans a whole script: `CREATE TABLE`, `CREATE VIEW`, `SET` and `INSERT INTO` statements.
///
/// # Errors
/// The first mistake in the script, with its line and column and what to do.
pub fn plan(script: &str) -> Result<SqlJob> {
    plan_with(script, true)
}

/// [`plan`] with the user-defined functions of a worker binary callable from the script
/// (docs/sql.md, "User-defined functions").
///
/// # Errors
/// As [`plan`]; a call of a function neither built in nor in `functions` is
/// [`ErrorKind::UnknownFunction`].
pub fn plan_with_functions(
    script: &str,
    functions: &crate::udf::FunctionRegistry,
) -> Result<SqlJob> {
    crate::udf::registry::with_functions(functions, || plan_with(script, true))
}

/// [`plan_portable`] with the user-defined functions of a worker binary.
///
/// # Errors
/// As [`plan_with_functions`].
pub fn plan_portable_with_functions(
    script: &str,
    functions: &crate::udf::FunctionRegistry,
) -> Result<SqlJob> {
    crate::udf::registry::with_functions(functions, || plan_with(script, false))
}

/// [`plan`] for a script that runs on another machine (a StreamJob's `spec.job.sql`, checked by
/// the operator): the paths of `filesystem` sources are not looked up here.
///
/// # Errors
/// As [`plan`].
pub fn plan_portable(script: &str) -> Result<SqlJob> {
    plan_with(script, false)
}

fn plan_with(script: &str, local_paths: bool) -> Result<SqlJob> {
    let mut pre = preparse(script)?;
    crate::udf::create_function::lift(&mut pre.text)?;
    let statements = crate::parse::statements(&pre.text).map_err(|e| {
        // sqlparser's messages end with "at Line: l, Column: c"; lift that out.
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        let (text, pos) = match msg.rsplit_once(" at Line: ") {
            Some((text, rest)) => {
                let mut nums = rest.split(", Column: ");
                let line = nums.next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
                let column = nums.next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
                (text.to_string(), Pos { line, column })
            }
            None => (msg, Pos::default()),
        };
        SqlError::at(
            ErrorKind::Syntax,
            pos,
            format!("{text} (see docs/sql.md for the supported statements)"),
        )
    })?;
    let mut catalog = Catalog {
        local_paths,
        ..Catalog::default()
    };
    let mut settings = Settings::default();
    let mut inserts = Vec::new();
    for statement in &statements {
        let pos = Pos::of(statement.span());
        match statement {
            ast::Statement::CreateTable(ct) => create_table(&mut catalog, ct, &pre)?,
            ast::Statement::CreateView(cv) => {
                let name = object_name(&cv.name);
                if !cv.columns.is_empty() {
                    return Err(unsupported(
                        pos,
                        "a column list on CREATE VIEW is not supported yet; alias the columns in the SELECT instead",
                    ));
                }
                if catalog.tables.contains_key(&name) || catalog.views.contains_key(&name) {
                    return Err(SqlError::at(
                        ErrorKind::InvalidOption,
                        Pos::of(cv.name.span()),
                        format!("'{name}' already exists; choose another name"),
                    ));
                }
                let pipeline = plan_query(&catalog, &cv.query)?;
                catalog.views.insert(name, pipeline);
            }
            ast::Statement::Set(set) => set_option(&mut settings, set, pos)?,
            ast::Statement::Insert(insert) => inserts.push(plan_insert(&catalog, insert, pos)?),
            ast::Statement::Query(_) => {
                return Err(unsupported(
                    pos,
                    "a SELECT needs a sink: write INSERT INTO <table> SELECT ..., with a table WITH ('connector' = 'print') to see rows",
                ));
            }
            other => {
                let text = other.to_string();
                let first: String = text
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(unsupported(
                    pos,
                    format!(
                        "'{first} ...' statements are not supported; use CREATE TABLE, CREATE VIEW, SET and INSERT INTO"
                    ),
                ));
            }
        }
    }
    if inserts.is_empty() {
        return Err(SqlError::at(
            ErrorKind::InvalidOption,
            Pos::default(),
            "the script has no INSERT INTO statement, so there is no job to run; add INSERT INTO <sink> SELECT ...",
        ));
    }
    Ok(SqlJob { settings, inserts })
}

fn create_table(catalog: &mut Catalog, ct: &ast::CreateTable, pre: &Preparsed) -> Result<()> {
    let name = object_name(&ct.name);
    let pos = Pos::of(ct.name.span());
    if catalog.tables.contains_key(&name) || catalog.views.contains_key(&name) {
        return Err(SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            format!("table '{name}' already exists; choose another name"),
        ));
    }
    if ct.query.is_some() || ct.like.is_some() {
        return Err(unsupported(
            pos,
            "CREATE TABLE ... AS / LIKE is not supported yet; list the columns",
        ));
    }
    // `PRIMARY KEY (a, b) NOT ENFORCED`, as a table constraint or a column option (Flink's
    // only mode: the key is a promise about the data, not checked).
    let mut primary_key: Option<(Vec<String>, Pos)> = None;
    for c in &ct.constraints {
        let ast::TableConstraint::PrimaryKey(pk) = c else {
            return Err(unsupported(
                pos,
                format!(
                    "table constraint '{c}' is not supported; only PRIMARY KEY (...) NOT ENFORCED is"
                ),
            ));
        };
        let cols = pk
            .columns
            .iter()
            .map(|ic| match &ic.column.expr {
                ast::Expr::Identifier(i) => Ok(i.value.clone()),
                other => Err(unsupported(
                    pos,
                    format!("PRIMARY KEY lists columns, not '{other}'"),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        set_primary_key(&mut primary_key, cols, pk.characteristics.as_ref(), pos)?;
    }
    // Physical and metadata columns (sqlparser's), with the computed columns (lifted out by
    // the pre-parse) put back in their declared places.
    let mut schema = Schema::default();
    let mut metadata: Vec<MetadataColumn> = Vec::new();
    let mut columns = Schema::default();
    let mut kinds = Vec::new();
    let mut computed = Vec::new();
    let computed_here: Vec<_> = pre.computed.iter().filter(|c| c.table == name).collect();
    fn declare(column: Column, cpos: Pos, columns: &mut Schema) -> Result<()> {
        if columns.index_of(&column.name).is_some() {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                cpos,
                format!("column '{}' is declared twice", column.name),
            ));
        }
        columns.columns.push(column);
        Ok(())
    }
    for n in 0..=ct.columns.len() {
        for c in computed_here.iter().filter(|c| c.after == n) {
            // Typed once the source row is known (below).
            declare(
                Column {
                    name: c.column.clone(),
                    data_type: DataType::Int,
                    rowtime: false,
                },
                c.column_pos,
                &mut columns,
            )?;
            kinds.push(ColumnKind::Computed);
            computed.push((columns.columns.len() - 1, *c));
        }
        let Some(c) = ct.columns.get(n) else { break };
        let cpos = Pos::of(c.name.span);
        for o in &c.options {
            if let ast::ColumnOption::PrimaryKey(pk) = &o.option {
                set_primary_key(
                    &mut primary_key,
                    vec![c.name.value.clone()],
                    pk.characteristics.as_ref(),
                    cpos,
                )?;
                continue;
            }
            if !matches!(
                o.option,
                ast::ColumnOption::NotNull | ast::ColumnOption::Null
            ) {
                return Err(unsupported(
                    cpos,
                    format!("column option '{}' is not supported yet", o.option),
                ));
            }
        }
        let column = Column {
            name: c.name.value.clone(),
            data_type: map_type(&c.data_type, cpos)?,
            rowtime: false,
        };
        declare(column.clone(), cpos, &mut columns)?;
        let meta = pre
            .metadata
            .iter()
            .find(|m| m.table == name && m.column == c.name.value);
        match meta {
            Some(m) => {
                kinds.push(ColumnKind::Metadata(metadata.len()));
                metadata.push(MetadataColumn {
                    name: column.name.clone(),
                    key: m.key.clone(),
                    // Checked against the connector below.
                    key_type: column.data_type,
                    is_virtual: m.is_virtual,
                    pos: m.key_pos,
                });
            }
            None => {
                kinds.push(ColumnKind::Physical(schema.columns.len()));
                schema.columns.push(column);
            }
        }
    }
    let mut options = BTreeMap::new();
    match &ct.table_options {
        ast::CreateTableOptions::With(opts) => {
            for o in opts {
                match o {
                    ast::SqlOption::KeyValue { key, value } => {
                        let k = key
                            .0
                            .last()
                            .and_then(|p| p.as_ident())
                            .map_or_else(|| key.to_string(), |i| i.value.clone());
                        let v = match value {
                            ast::Expr::Value(v) => match &v.value {
                                ast::Value::SingleQuotedString(s) => s.clone(),
                                other => other.to_string(),
                            },
                            other => other.to_string(),
                        };
                        options.insert(k, v);
                    }
                    other => {
                        return Err(SqlError::at(
                            ErrorKind::InvalidOption,
                            pos,
                            format!("option '{other}' is not a 'key' = 'value' pair"),
                        ));
                    }
                }
            }
        }
        ast::CreateTableOptions::None => {}
        _ => {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                pos,
                "table options go in WITH ('connector' = '...', ...)",
            ));
        }
    }
    let connector_name = options.get("connector").cloned().unwrap_or_default();
    // Metadata keys the connector has, in its types.
    let keys = connectors::metadata_keys(&connector_name);
    for m in &mut metadata {
        let Some(key) = keys.iter().find(|k| k.key == m.key) else {
            let offered: Vec<&str> = keys.iter().map(|k| k.key).collect();
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                m.pos,
                if offered.is_empty() {
                    format!(
                        "metadata column '{}': the '{connector_name}' connector has no metadata keys (supported keys: none); make '{}' a physical column or remove it",
                        m.name, m.name
                    )
                } else {
                    format!(
                        "metadata column '{}': the '{connector_name}' connector has no metadata key '{}'; its keys are: {}",
                        m.name,
                        m.key,
                        offered.join(", ")
                    )
                },
            ));
        };
        let declared = m.key_type;
        if coerce(Expr::Column(0, key.data_type), declared).is_none() {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                m.pos,
                format!(
                    "metadata column '{}': key '{}' is {}, not {declared}; declare it {} {} METADATA FROM '{}'",
                    m.name, m.key, key.data_type, m.name, key.data_type, m.key,
                ),
            ));
        }
        m.key_type = key.data_type;
    }
    // A source row: the physical columns, then the metadata columns in their key types.
    let mut source_row = schema.clone();
    source_row.columns.extend(metadata.iter().map(|m| Column {
        name: m.name.clone(),
        data_type: m.key_type,
        rowtime: false,
    }));
    let mut projection = Vec::with_capacity(columns.columns.len());
    let mut computed = computed.into_iter();
    for (i, kind) in kinds.iter().enumerate() {
        let e = match kind {
            ColumnKind::Physical(p) => Expr::Column(*p, schema.columns[*p].data_type),
            ColumnKind::Metadata(m) => {
                let from = Expr::Column(schema.columns.len() + m, metadata[*m].key_type);
                coerce(from, columns.columns[i].data_type).unwrap_or_else(|| unreachable!())
            }
            ColumnKind::Computed => {
                let Some((_, c)) = computed.next() else {
                    unreachable!("a computed column without its clause")
                };
                let bound = Binder::new(&source_row).bind(&c.expr).map_err(|e| {
                    // Flink computes a computed column from the physical and metadata
                    // columns only.
                    let other = pre.computed.iter().find(|o| {
                        o.table == name
                            && o.column != c.column
                            && e.to_string().contains(&format!("column '{}' not found", o.column))
                    });
                    match (e, other) {
                        (SqlError::Plan { line, column, .. }, Some(o)) => SqlError::Plan {
                            kind: ErrorKind::UnknownColumn,
                            line,
                            column,
                            message: format!(
                                "computed column '{}' refers to computed column '{}'; a computed column is computed from physical and metadata columns only (Flink's rule): repeat the expression of '{}'",
                                c.column, o.column, o.column
                            ),
                        },
                        (SqlError::Plan { kind, line, column, message }, None) => SqlError::Plan {
                            kind,
                            line,
                            column,
                            message: format!("in computed column '{}': {message}", c.column),
                        },
                        (other, _) => other,
                    }
                })?;
                columns.columns[i].data_type = bound.data_type();
                bound
            }
        };
        projection.push(e);
    }
    let identity = projection.len() == source_row.columns.len()
        && projection
            .iter()
            .enumerate()
            .all(|(i, e)| *e == Expr::Column(i, source_row.columns[i].data_type));
    let mut watermark = None;
    for wm in pre.watermarks.iter().filter(|w| w.table == name) {
        if watermark.is_some() {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                wm.column_pos,
                "a table has at most one WATERMARK",
            ));
        }
        let Some(i) = columns.index_of(&wm.column) else {
            return Err(SqlError::at(
                ErrorKind::UnknownColumn,
                wm.column_pos,
                format!(
                    "WATERMARK FOR '{}': no such column; the table has: {}",
                    wm.column,
                    columns.names()
                ),
            ));
        };
        let rowtime_type = columns.columns[i].data_type;
        if !matches!(rowtime_type, DataType::Timestamp | DataType::TimestampLtz) {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                wm.column_pos,
                format!(
                    "the rowtime column '{}' must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {}",
                    wm.column, rowtime_type
                ),
            ));
        }
        let expr = Binder::new(&columns).bind(&wm.expr)?;
        if expr.data_type() != rowtime_type {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                pos_of(&wm.expr),
                format!(
                    "the WATERMARK expression must be a {rowtime_type} like its column, e.g. {0} - INTERVAL '5' SECOND, not {1}",
                    wm.column,
                    expr.data_type()
                ),
            ));
        }
        watermark = Some(WatermarkDef { rowtime: i, expr });
    }
    if let Some(wm) = &watermark {
        columns.columns[wm.rowtime].rowtime = true;
    }
    let primary_key = match primary_key {
        None => Vec::new(),
        Some((cols, kpos)) => {
            for col in &cols {
                if schema.index_of(col).is_none() {
                    return Err(SqlError::at(
                        ErrorKind::InvalidOption,
                        kpos,
                        format!(
                            "PRIMARY KEY column '{col}' is not a physical column of table '{name}'"
                        ),
                    ));
                }
            }
            cols
        }
    };
    let table = TableDef {
        name: name.clone(),
        schema,
        metadata,
        columns,
        kinds,
        source_projection: (!identity).then_some(projection),
        options,
        watermark,
        primary_key,
    };
    if !table.primary_key.is_empty() && connectors::REFUSES_PRIMARY_KEY.contains(&table.connector())
    {
        return Err(unsupported(
            pos,
            format!(
                "table '{name}': a '{}' table cannot declare a PRIMARY KEY, because an append-only topic cannot guarantee it (as in Flink); remove it, or use 'connector' = 'upsert-kafka' (the key is the record key, updates and deletes are upserts and tombstones)",
                table.connector()
            ),
        ));
    }
    let connector = table.connector().to_string();
    if !connectors::KNOWN.contains(&connector.as_str()) {
        return Err(SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            format!(
                "table '{name}': connector '{connector}' is not supported; use one of {} in WITH ('connector' = '...')",
                connectors::KNOWN.join(", ")
            ),
        ));
    }
    catalog.tables.insert(name, (Arc::new(table), pos));
    Ok(())
}

/// Records a table's primary key, refusing a second one and ENFORCED keys (as Flink does).
fn set_primary_key(
    key: &mut Option<(Vec<String>, Pos)>,
    columns: Vec<String>,
    characteristics: Option<&ast::ConstraintCharacteristics>,
    pos: Pos,
) -> Result<()> {
    if key.is_some() {
        return Err(SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            "a table has at most one PRIMARY KEY",
        ));
    }
    if characteristics.and_then(|c| c.enforced) != Some(false) {
        return Err(SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            "write PRIMARY KEY (...) NOT ENFORCED: the key is not checked against the data (Fjord, like Flink, does not own it), so ENFORCED is not supported",
        ));
    }
    *key = Some((columns, pos));
    Ok(())
}

fn set_option(settings: &mut Settings, set: &ast::Set, pos: Pos) -> Result<()> {
    let ast::Set::SingleAssignment {
        variable, values, ..
    } = set
    else {
        return Err(unsupported(pos, "write SET 'key' = 'value'"));
    };
    let key = object_name(variable);
    let pos = Some(Pos::of(variable.span()))
        .filter(|p| p.line > 0)
        .unwrap_or(pos);
    let value = match values.as_slice() {
        [ast::Expr::Value(v)] => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        _ => {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                pos,
                format!("SET '{key}' needs one quoted value: SET '{key}' = '...'"),
            ));
        }
    };
    let bad = |what: &str| {
        SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            format!("SET '{key}' = '{value}': {what}"),
        )
    };
    match key.as_str() {
        "parallelism.default" => {
            settings.parallelism = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("give a whole number above 0"))?,
            );
        }
        "execution.checkpointing.interval" => {
            settings.checkpoint_interval = Some(parse_duration(&value).ok_or_else(|| {
                bad("give a duration such as 10s, 500ms or 1min (a bare number is milliseconds)")
            })?);
        }
        "pipeline.name" => settings.pipeline_name = Some(value),
        "table.exec.state.ttl" => {
            let ttl = parse_duration(&value).ok_or_else(|| {
                bad("give a duration such as 1h, 30min or 10s (0 keeps state forever)")
            })?;
            // Flink: 0 (the default) disables the time-to-live.
            settings.state_ttl = (!ttl.is_zero()).then_some(ttl);
        }
        "execution.runtime-mode" if value.eq_ignore_ascii_case("streaming") => {}
        "execution.runtime-mode" => {
            return Err(bad(
                "only 'streaming' is supported (bounded inputs finish on their own)",
            ));
        }
        _ => {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                pos,
                format!("SET '{key}' is not supported; supported keys: {SETTINGS}"),
            ));
        }
    }
    Ok(())
}

/// A duration as Flink's configuration writes it: `500ms`, `10s`, `10 s`, `2min`, `1h`; a
/// bare number is milliseconds (see [`fjord::time::parse_duration`]).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    fjord::time::parse_duration(text).ok()
}

fn plan_insert(catalog: &Catalog, insert: &ast::Insert, pos: Pos) -> Result<Insert> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(unsupported(pos, "INSERT INTO needs a table name"));
    };
    let tpos = Pos::of(name.span());
    let sink_name = object_name(name);
    let Some((sink, _)) = catalog.tables.get(&sink_name) else {
        return Err(unknown_table(catalog, &sink_name, tpos));
    };
    connectors::check_sink(sink).map_err(|m| {
        SqlError::at(
            ErrorKind::InvalidOption,
            tpos,
            format!("table '{sink_name}': {m}"),
        )
    })?;
    if insert.overwrite {
        return Err(unsupported(
            tpos,
            "INSERT OVERWRITE is not supported (streaming sinks append); use INSERT INTO",
        ));
    }
    let Some(query) = &insert.source else {
        return Err(unsupported(pos, "INSERT INTO needs a SELECT"));
    };
    let mut pipeline = plan_query(catalog, query)?;
    if pipeline.is_changelog()
        && connectors::sink_changes(sink) == crate::changelog::SinkChanges::AppendOnly
    {
        return Err(SqlError::at(
            ErrorKind::Unsupported,
            tpos,
            format!(
                "table '{sink_name}' (connector '{}') only takes appended rows, but the query's result is updated ({} emits -U/+U/-D changes); {}write it to a table that takes updates ('print', 'blackhole', 'upsert-kafka', 'jdbc' with a PRIMARY KEY, 'kafka' with 'format' = 'debezium-json'), or aggregate over windows (TABLE(TUMBLE(...)) ... GROUP BY window_start, window_end, ...) to get final, append-only rows",
                sink.connector(),
                pipeline.changelog_origin().unwrap_or_default(),
                connectors::updating_hint(sink).map_or(String::new(), |h| format!("{h} "))
            ),
        ));
    }
    // An INSERT writes the persisted columns (physical and non-virtual metadata), in their
    // declared order (Flink's rule); the sink's row has them physical first.
    let persisted = sink.persisted();
    let want = &Schema {
        columns: persisted
            .iter()
            .map(|&(i, _)| sink.columns.columns[i].clone())
            .collect(),
    };
    for m in sink.written_metadata() {
        let writable = connectors::metadata_keys(sink.connector())
            .iter()
            .any(|k| k.key == m.key && k.writable);
        if !writable {
            let keys: Vec<&str> = connectors::metadata_keys(sink.connector())
                .iter()
                .filter(|k| k.writable)
                .map(|k| k.key)
                .collect();
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                m.pos,
                format!(
                    "table '{sink_name}' is written by the INSERT at line {}, column {}, but its metadata column '{}' (key '{}') cannot be written (the {} connector writes: {}); declare it {} ... METADATA FROM '{}' VIRTUAL to read it only",
                    tpos.line,
                    tpos.column,
                    m.name,
                    m.key,
                    sink.connector(),
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    },
                    m.name,
                    m.key
                ),
            ));
        }
    }
    let have = &pipeline.schema;
    // Which query column fills each sink column: all in order, or those of the column list
    // (the others get NULL, as in Flink).
    let sources: Vec<Option<usize>> = if insert.columns.is_empty() {
        (0..want.columns.len()).map(Some).collect()
    } else {
        let mut sources = vec![None; want.columns.len()];
        for (k, c) in insert.columns.iter().enumerate() {
            let (column, cpos) = (object_name(c), Pos::of(c.span()));
            let Some(at) = want.index_of(&column) else {
                if let Some(i) = sink.columns.index_of(&column) {
                    let what = match sink.kinds[i] {
                        ColumnKind::Computed => "a computed column",
                        _ => "a virtual metadata column",
                    };
                    return Err(SqlError::at(
                        ErrorKind::InvalidOption,
                        cpos,
                        format!(
                            "column '{column}' of '{sink_name}' is {what}, which is only read: an INSERT writes the physical and non-virtual metadata columns ({}); leave it out of the column list",
                            want.names()
                        ),
                    ));
                }
                return Err(SqlError::at(
                    ErrorKind::UnknownColumn,
                    cpos,
                    format!(
                        "sink '{sink_name}' has no column '{}'; its columns are: {}",
                        column,
                        want.names()
                    ),
                ));
            };
            if sources[at].is_some() {
                return Err(SqlError::at(
                    ErrorKind::InvalidOption,
                    cpos,
                    format!("column '{}' is listed twice", column),
                ));
            }
            sources[at] = Some(k);
        }
        sources
    };
    let listed = sources.iter().flatten().count();
    if have.columns.len() != listed {
        let target = if insert.columns.is_empty() {
            format!(
                "sink '{sink_name}' has {} [{}]",
                want.columns.len(),
                want.names()
            )
        } else {
            format!("the column list names {listed}")
        };
        return Err(SqlError::at(
            ErrorKind::TypeMismatch,
            tpos,
            format!(
                "the query has {} columns [{}] but {target}; select exactly those columns",
                have.columns.len(),
                have.names(),
            ),
        ));
    }
    let mut projection = Vec::new();
    for (w, source) in want.columns.iter().zip(&sources) {
        let Some(i) = *source else {
            projection.push(Expr::Literal(crate::types::Value::Null, w.data_type));
            continue;
        };
        let h = &have.columns[i];
        let e = coerce(Expr::Column(i, h.data_type), w.data_type).ok_or_else(|| {
            SqlError::at(ErrorKind::TypeMismatch, tpos, format!(
                "column {} of the query ('{}') is {} but sink column '{}' is {}; CAST it: CAST({} AS {})",
                i + 1, h.name, h.data_type, w.name, w.data_type, h.name, w.data_type
            ))
        })?;
        projection.push(e);
    }
    // In the order of the sink's row.
    let mut order: Vec<usize> = (0..persisted.len()).collect();
    order.sort_by_key(|&k| persisted[k].1);
    let projection: Vec<Expr> = order.iter().map(|&k| projection[k].clone()).collect();
    let row_schema = Schema {
        columns: order
            .iter()
            .map(|&k| Column {
                rowtime: false,
                ..want.columns[k].clone()
            })
            .collect(),
    };
    if projection
        .iter()
        .enumerate()
        .any(|(i, e)| *e != Expr::Column(i, row_schema.columns[i].data_type))
    {
        pipeline.steps.push(Step::Calc {
            filter: None,
            projection,
        });
    }
    pipeline.schema = row_schema;
    Ok(Insert {
        sink: sink.clone(),
        pipeline,
    })
}

fn unknown_table(catalog: &Catalog, name: &str, pos: Pos) -> SqlError {
    let mut known: Vec<&str> = catalog
        .tables
        .keys()
        .chain(catalog.views.keys())
        .map(String::as_str)
        .collect();
    known.sort_unstable();
    SqlError::at(
        ErrorKind::UnknownTable,
        pos,
        format!(
            "table or view '{name}' not found; create it first with CREATE TABLE {name} (...) WITH (...) (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    )
}

/// The pipeline that reads a table or view.
pub(crate) fn scan(catalog: &Catalog, name: &str, pos: Pos) -> Result<Pipeline> {
    if let Some(view) = catalog.views.get(name) {
        return Ok(view.clone());
    }
    let Some((table, _)) = catalog.tables.get(name) else {
        return Err(unknown_table(catalog, name, pos));
    };
    connectors::check_source(table, catalog.local_paths).map_err(|m| {
        SqlError::at(
            ErrorKind::InvalidOption,
            pos,
            format!("table '{name}': {m}"),
        )
    })?;
    Ok(Pipeline {
        source: Source::Table(table.clone()),
        steps: Vec::new(),
        schema: table.columns.clone(),
    })
}

pub(crate) fn output_name(item: &ast::SelectItem, e: &ast::Expr, n: usize) -> String {
    match item {
        ast::SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
        _ => match e {
            ast::Expr::Identifier(id) => id.value.clone(),
            ast::Expr::CompoundIdentifier(ids) => ids
                .last()
                .map_or_else(|| format!("EXPR${n}"), |i| i.value.clone()),
            _ => format!("EXPR${n}"),
        },
    }
}

/// Refuses a query with the clauses a streaming query cannot have yet (WITH, ORDER BY, LIMIT,
/// FETCH), with `message` at the query's position.
pub(crate) fn refuse_query_clauses(query: &ast::Query, message: &str) -> Result<()> {
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return Err(unsupported(Pos::of(query.span()), message));
    }
    Ok(())
}

pub(crate) fn plan_query(catalog: &Catalog, query: &ast::Query) -> Result<Pipeline> {
    let qpos = Pos::of(query.span());
    refuse_query_clauses(
        query,
        "WITH, ORDER BY, LIMIT and FETCH are not supported yet in streaming queries",
    )?;
    plan_set_expr(catalog, &query.body, qpos)
}

/// Plans a query's body: a SELECT, a parenthesized query, or a `UNION ALL` of them.
pub(crate) fn plan_set_expr(catalog: &Catalog, body: &ast::SetExpr, qpos: Pos) -> Result<Pipeline> {
    match body {
        ast::SetExpr::Select(select) => plan_select(catalog, select),
        ast::SetExpr::Query(query) => plan_query(catalog, query),
        ast::SetExpr::SetOperation { .. } => crate::plan_union::plan_union(catalog, body),
        _ => Err(unsupported(
            qpos,
            "only SELECT queries and UNION ALL of them are supported yet (no VALUES)",
        )),
    }
}

fn plan_select(catalog: &Catalog, select: &ast::Select) -> Result<Pipeline> {
    let spos = Pos::of(select.span());
    // WINDOW w AS (...) names the window of OVER aggregations only.
    if select.distinct.is_some()
        || (!select.named_window.is_empty() && !crate::plan_over::has_over_aggregate(select))
        || select.qualify.is_some()
    {
        return Err(unsupported(
            spos,
            "DISTINCT, QUALIFY and a WINDOW clause without OVER aggregations are not supported yet",
        ));
    }
    if let Some(joined) = crate::udf::bind::plan_lateral(catalog, select)? {
        return Ok(joined);
    }
    if let Some((joined, selection)) = crate::plan_join::plan_from_join(catalog, select)? {
        let group_by: Vec<&ast::Expr> = match &select.group_by {
            ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => exprs.iter().collect(),
            _ => {
                return Err(unsupported(
                    spos,
                    "GROUP BY ALL and GROUP BY modifiers are not supported",
                ));
            }
        };
        let mut rest = select.clone();
        rest.selection = selection.cloned();
        return plan_grouped_or_calc(joined, &rest, &group_by);
    }
    let [from] = select.from.as_slice() else {
        return Err(unsupported(
            spos,
            "select from exactly one table (joins are not supported yet)",
        ));
    };
    if !from.joins.is_empty() {
        return Err(unsupported(
            Pos::of(from.joins[0].relation.span()),
            "joins are not supported yet",
        ));
    }
    let group_by: Vec<&ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => exprs.iter().collect(),
        _ => {
            return Err(unsupported(
                spos,
                "GROUP BY ALL and GROUP BY modifiers are not supported",
            ));
        }
    };
    // ROW_NUMBER() is a column of the subquery a window Top-N filters, never of this SELECT.
    if let Some(item) = select.projection.iter().find(|i| {
        matches!(i, ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
            | ast::SelectItem::ExprWithAlias { expr: ast::Expr::Function(f), .. }
            if f.over.is_some() && f.name.to_string().eq_ignore_ascii_case("ROW_NUMBER"))
    }) {
        return Err(unsupported(
            Pos::of(item.span()),
            "ROW_NUMBER() OVER (...) is supported in a Top-N, as a column of a subquery filtered by it: SELECT ... FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) AS rownum FROM t) WHERE rownum <= N",
        ));
    }
    match &from.relation {
        ast::TableFactor::Table {
            name, args: None, ..
        } => {
            let input = scan(catalog, &object_name(name), Pos::of(name.span()))?;
            plan_grouped_or_calc(input, select, &group_by)
        }
        ast::TableFactor::TableFunction {
            expr: ast::Expr::Function(f),
            ..
        } => plan_window(catalog, f, select, &group_by),
        ast::TableFactor::MatchRecognize { .. } => {
            let input = crate::plan_match::plan_match(catalog, &from.relation)?;
            plan_grouped_or_calc(input, select, &group_by)
        }
        ast::TableFactor::Derived {
            lateral: false,
            subquery,
            ..
        } => {
            if crate::plan_topn::row_number_of(subquery).is_some() {
                return crate::plan_topn::plan_top_n(catalog, select, subquery);
            }
            // A subquery in FROM reads like a view.
            let input = plan_query(catalog, subquery)?;
            plan_grouped_or_calc(input, select, &group_by)
        }
        other => Err(unsupported(
            Pos::of(other.span()),
            "only tables, views, subqueries and TABLE(TUMBLE(...)) / TABLE(HOP(...)) can be selected from",
        )),
    }
}

/// A SELECT over a table, view or subquery: a GROUP BY aggregation (also without GROUP BY
/// when the SELECT list or HAVING aggregates every row), else filter and projection.
fn plan_grouped_or_calc(
    input: Pipeline,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<Pipeline> {
    if crate::plan_over::has_over_aggregate(select) {
        return crate::plan_over::plan_over(input, select);
    }
    if let Some(p) = plan_group_window(input.clone(), select, group_by)? {
        return Ok(p);
    }
    if !group_by.is_empty() || select.having.is_some() {
        return plan_group_aggregate(input, select, group_by);
    }
    match plan_calc(input.clone(), select) {
        Ok(p) => Ok(p),
        // `SELECT COUNT(*) FROM t`: one global group, when the list binds as an aggregation.
        Err(e) => match plan_group_aggregate(input, select, group_by) {
            Ok(p)
                if p.steps.iter().any(
                    |s| matches!(s, Step::GroupAggregate { aggs, .. } if !aggs.is_empty()),
                ) =>
            {
                Ok(p)
            }
            _ => Err(e),
        },
    }
}

pub(crate) fn plan_calc(mut input: Pipeline, select: &ast::Select) -> Result<Pipeline> {
    let filter = select
        .selection
        .as_ref()
        .map(|w| Binder::new(&input.schema).bind_condition(w, "WHERE"))
        .transpose()?;
    let (projection, schema) = project(&input.schema, &select.projection, |e| {
        Binder::new(&input.schema).bind(e)
    })?;
    let identity = projection.len() == input.schema.columns.len()
        && projection
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(j, _) if *j == i));
    if filter.is_some() || !identity {
        input.steps.push(Step::Calc { filter, projection });
    }
    input.schema = schema;
    Ok(input)
}

/// Binds the select list; `*` expands to the input's columns. A column passed through keeps
/// its rowtime attribute.
pub(crate) fn project(
    input: &Schema,
    items: &[ast::SelectItem],
    mut bind: impl FnMut(&ast::Expr) -> Result<Expr>,
) -> Result<(Vec<Expr>, Schema)> {
    let mut projection = Vec::new();
    let mut schema = Schema::default();
    for item in items {
        let e = match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                // `t.*` of a join: the columns of that table.
                let only = match item {
                    ast::SelectItem::QualifiedWildcard(
                        ast::SelectItemQualifiedWildcardKind::ObjectName(q),
                        _,
                    ) => Some(format!("{}.", object_name(q))),
                    ast::SelectItem::QualifiedWildcard(..) => {
                        return Err(unsupported(Pos::of(item.span()), "write table.* or *"));
                    }
                    _ => None,
                };
                for (i, c) in input.columns.iter().enumerate() {
                    if only
                        .as_ref()
                        .is_some_and(|q| !c.name.starts_with(q.as_str()))
                    {
                        continue;
                    }
                    projection.push(Expr::Column(i, c.data_type));
                    // A join's `t.col` is `col` in the output, as in Flink; a name taken
                    // already gets the first free number appended (`id`, `id0`).
                    let bare = c.name.rsplit_once('.').map_or(c.name.as_str(), |(_, n)| n);
                    let mut name = bare.to_string();
                    let mut k = 0;
                    while schema.columns.iter().any(|o| o.name == name) {
                        name = format!("{bare}{k}");
                        k += 1;
                    }
                    schema.columns.push(Column { name, ..c.clone() });
                }
                continue;
            }
            other => {
                return Err(unsupported(
                    Pos::of(other.span()),
                    "this kind of select item is not supported",
                ));
            }
        };
        let bound = bind(e)?;
        let rowtime =
            matches!(bound, Expr::Column(i, _) if input.columns.get(i).is_some_and(|c| c.rowtime));
        let mut name = output_name(item, e, projection.len());
        let taken = |name: &str, schema: &Schema| schema.columns.iter().any(|c| c.name == name);
        if taken(&name, &schema) {
            if matches!(item, ast::SelectItem::ExprWithAlias { .. }) {
                return Err(SqlError::at(
                    ErrorKind::InvalidOption,
                    pos_of(e),
                    format!("the output has two columns named '{name}'; give one another alias"),
                ));
            }
            // A derived name taken already (`A.dateTime, B.dateTime`) gets the first free
            // number appended, as Flink names it (`dateTime0`).
            let bare = name.clone();
            let mut k = 0;
            while taken(&name, &schema) {
                name = format!("{bare}{k}");
                k += 1;
            }
        }
        schema.columns.push(Column {
            name,
            data_type: bound.data_type(),
            rowtime,
        });
        projection.push(bound);
    }
    Ok((projection, schema))
}

/// A window table-valued function's call: its input, window and rowtime column.
pub(crate) struct WindowTvf<'q> {
    /// `TUMBLE`, `HOP`, `CUMULATE` or `SESSION`.
    pub name: String,
    /// The rows of its table argument.
    pub input: Pipeline,
    /// The window.
    pub window: WindowKind,
    /// The rowtime column of `input` in `DESCRIPTOR(...)`.
    pub time_column: usize,
    /// SESSION's `PARTITION BY` argument.
    pub partition_by: Option<&'q ast::Expr>,
    /// From a legacy group window (`GROUP BY SESSION(ts, gap), k`): sessions are per the
    /// other GROUP BY columns, whatever they are.
    pub legacy: bool,
    /// The time column is a processing-time attribute (`PROCTIME()`): windows of the wall
    /// clock, fired when it passes their end.
    pub proctime: bool,
}

/// Whether column `col` of `p` is a processing-time attribute: `PROCTIME()` computed in a
/// projection (a view's `PROCTIME() AS pt`, a table's computed column `pt AS PROCTIME()`) and
/// passed through unchanged since.
pub(crate) fn is_proctime(p: &Pipeline, col: usize) -> bool {
    let mut col = col;
    for step in p.steps.iter().rev() {
        match step {
            Step::Calc { projection, .. } => match projection.get(col) {
                Some(Expr::Call(crate::functions::Func::Proctime, ..)) => return true,
                Some(Expr::Column(c, _)) => col = *c,
                _ => return false,
            },
            _ => return false,
        }
    }
    match &p.source {
        Source::Table(t) => t
            .source_projection
            .as_ref()
            .and_then(|proj| proj.get(col))
            .is_some_and(|e| matches!(e, Expr::Call(crate::functions::Func::Proctime, ..))),
        _ => false,
    }
}

/// Reads a window TVF call `TUMBLE(TABLE t, DESCRIPTOR(ts), ...)` (and HOP, CUMULATE,
/// SESSION).
pub(crate) fn window_tvf<'q>(catalog: &Catalog, f: &'q ast::Function) -> Result<WindowTvf<'q>> {
    let fpos = Pos::of(f.span());
    let fname = f.name.to_string().to_uppercase();
    let mut args: Vec<&ast::Expr> = match &f.args {
        ast::FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let usage = "write TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND), HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND), CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '1' MINUTE) or SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)";
    // SESSION's PARTITION BY columns arrive as the second argument (see script::preparse).
    let partition_by = (fname == "SESSION" && args.len() == 4).then(|| args.remove(1));
    let expected = match fname.as_str() {
        "TUMBLE" | "SESSION" => 3,
        "HOP" | "CUMULATE" => 4,
        _ => {
            return Err(unsupported(
                fpos,
                format!("table function {fname} is not supported; {usage}"),
            ));
        }
    };
    if args.len() != expected {
        return Err(SqlError::at(
            ErrorKind::Syntax,
            fpos,
            format!("{fname} takes {expected} arguments; {usage}"),
        ));
    }
    let table_name = match args[0] {
        ast::Expr::Identifier(id) => id.value.clone(),
        ast::Expr::CompoundIdentifier(ids) => {
            ids.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        other => {
            return Err(unsupported(
                pos_of(other),
                format!("the first argument of {fname} is TABLE <name> of a table or view"),
            ));
        }
    };
    let input = scan(catalog, &table_name, pos_of(args[0]))?;
    if let Some(origin) = input.changelog_origin() {
        return Err(unsupported(
            pos_of(args[0]),
            format!(
                "{fname} windows append-only rows, but '{table_name}' is updated ({origin} emits -U/+U/-D changes, and an updated row has no event time to window); window the table it aggregates instead"
            ),
        ));
    }
    let time_col = match args[1] {
        ast::Expr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
            match &d.args {
                ast::FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                        ast::Expr::Identifier(id),
                    )) => id.clone(),
                    _ => {
                        return Err(SqlError::at(
                            ErrorKind::Syntax,
                            pos_of(args[1]),
                            "DESCRIPTOR takes one column name",
                        ));
                    }
                },
                _ => {
                    return Err(SqlError::at(
                        ErrorKind::Syntax,
                        pos_of(args[1]),
                        "DESCRIPTOR takes one column name",
                    ));
                }
            }
        }
        other => {
            return Err(SqlError::at(
                ErrorKind::Syntax,
                pos_of(other),
                format!("the second argument of {fname} is DESCRIPTOR(<rowtime column>)"),
            ));
        }
    };
    let tpos = Pos::of(time_col.span);
    let Some(time_column) = input.schema.index_of(&time_col.value) else {
        return Err(SqlError::at(
            ErrorKind::UnknownColumn,
            tpos,
            format!(
                "column '{}' not found in '{table_name}' (columns: {})",
                time_col.value,
                input.schema.names()
            ),
        ));
    };
    if !input.schema.columns[time_column].rowtime && matches!(input.source, Source::UnionAll(_)) {
        return Err(SqlError::at(
            ErrorKind::TypeMismatch,
            tpos,
            format!(
                "'{}' is not a time attribute: a column of a UNION ALL is one only when every branch has a time attribute (a column with WATERMARK FOR, passed through unchanged) in its place, as in Flink",
                time_col.value
            ),
        ));
    }
    let proctime = is_proctime(&input, time_column);
    if !input.schema.columns[time_column].rowtime && !proctime {
        return Err(SqlError::at(
            ErrorKind::TypeMismatch,
            tpos,
            format!(
                "'{}' is not a time attribute; declare WATERMARK FOR {} AS {} - INTERVAL '5' SECOND in the CREATE TABLE of the source (event time), or window a processing-time column (pt AS PROCTIME())",
                time_col.value, time_col.value, time_col.value
            ),
        ));
    }
    let interval = |e: &ast::Expr| -> Result<i64> {
        match Binder::new(&input.schema).bind(e)? {
            Expr::Literal(crate::types::Value::BigInt(ms), DataType::Interval) if ms > 0 => Ok(ms),
            _ => Err(SqlError::at(
                ErrorKind::TypeMismatch,
                pos_of(e),
                format!(
                    "expected a positive interval literal such as INTERVAL '10' SECOND; {usage}"
                ),
            )),
        }
    };
    let window = if fname == "TUMBLE" {
        WindowKind::Tumble {
            size: interval(args[2])?,
        }
    } else if fname == "SESSION" {
        WindowKind::Session {
            gap: interval(args[2])?,
        }
    } else if fname == "CUMULATE" {
        let (step, size) = (interval(args[2])?, interval(args[3])?);
        if size % step != 0 {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                pos_of(args[3]),
                format!(
                    "a CUMULATE window's max size ({size} ms) must be an integral multiple of its step ({step} ms), as in Flink"
                ),
            ));
        }
        WindowKind::Cumulate { step, size }
    } else {
        let (slide, size) = (interval(args[2])?, interval(args[3])?);
        if size % slide != 0 {
            return Err(unsupported(
                pos_of(args[3]),
                "HOP windows whose size is not a multiple of the slide are not supported yet",
            ));
        }
        WindowKind::Hop { slide, size }
    };
    Ok(WindowTvf {
        name: fname,
        input,
        window,
        time_column,
        partition_by,
        legacy: false,
        proctime,
    })
}

fn plan_window(
    catalog: &Catalog,
    f: &ast::Function,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<Pipeline> {
    let tvf = window_tvf(catalog, f)?;
    if group_by.is_empty() && select.having.is_none() {
        // The TVF's rows themselves (what a window join reads).
        let rows = window_rows(tvf, Pos::of(f.span()))?;
        return plan_calc(rows, select);
    }
    plan_window_over(tvf, select, group_by)
}

/// The rows of a window TVF without aggregation: each input row once per window it falls in,
/// with window_start, window_end and window_time after its columns ([`Step::WindowTvf`]).
/// No column stays a time attribute (Flink keeps window_time one; Fjord cannot window or
/// interval-join these rows again yet).
///
/// # Errors
/// A SESSION TVF: its windows are known only once a session closes, which needs state (it is
/// supported in a window aggregation and a window Top-N).
pub(crate) fn window_rows(tvf: WindowTvf<'_>, pos: Pos) -> Result<Pipeline> {
    if tvf.proctime {
        return Err(unsupported(
            pos,
            "a processing-time window TVF is supported in a window aggregation (GROUP BY window_start, window_end, ...); its rows on their own and window joins run in event time",
        ));
    }
    if matches!(tvf.window, WindowKind::Session { .. }) {
        return Err(unsupported(
            pos,
            "a SESSION window TVF is supported in a window aggregation (GROUP BY window_start, window_end, ...) and a window Top-N, not on its own or in a window join (as in Flink)",
        ));
    }
    let mut p = tvf.input;
    p.steps.push(Step::WindowTvf {
        window: tvf.window,
        time_column: tvf.time_column,
        width: p.schema.columns.len(),
    });
    for c in &mut p.schema.columns {
        c.rowtime = false;
    }
    for name in ["window_start", "window_end", "window_time"] {
        p.schema.columns.push(Column {
            name: name.into(),
            data_type: DataType::Timestamp,
            rowtime: false,
        });
    }
    Ok(p)
}

/// A window aggregation over the windows of `tvf` (see [`plan_window`]).
fn plan_window_over(
    tvf: WindowTvf<'_>,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<Pipeline> {
    let WindowTvf {
        name: fname,
        mut input,
        window,
        time_column,
        partition_by,
        legacy,
        proctime,
    } = tvf;
    if proctime && matches!(window, WindowKind::Cumulate { .. }) {
        return Err(unsupported(
            spos_of(select),
            "CUMULATE windows run in event time: window a rowtime attribute (a column with a WATERMARK)",
        ));
    }
    // WHERE applies to the rows before windowing.
    filter_before_grouping(&mut input, select)?;
    // GROUP BY window_start, window_end[, window_time], keys... The aggregation always
    // emits window_time as its third column; it can be selected only when grouped by (as in
    // Flink), so until then its name in the group list is one no identifier can spell.
    let mut keys = Vec::new();
    let mut group = vec![
        ("window_start".to_string(), DataType::Timestamp),
        ("window_end".to_string(), DataType::Timestamp),
        (UNGROUPED_WINDOW_TIME.to_string(), DataType::Timestamp),
    ];
    let (mut has_start, mut has_end) = (false, false);
    for g in group_by {
        let name = grouped_name(g, &input.schema)?;
        match name.as_str() {
            "window_start" => has_start = true,
            "window_end" => has_end = true,
            "window_time" => group[2].0 = "window_time".to_string(),
            _ => {
                let Some(i) = input.schema.index_of(&name) else {
                    return Err(SqlError::at(
                        ErrorKind::UnknownColumn,
                        pos_of(g),
                        format!(
                            "GROUP BY column '{name}' not found; the input has columns: {}, window_start, window_end",
                            input.schema.names()
                        ),
                    ));
                };
                if !keys.contains(&i) {
                    keys.push(i);
                    group.push((name, input.schema.columns[i].data_type));
                }
            }
        }
    }
    if !(has_start && has_end) {
        return Err(unsupported(
            spos_of(select),
            "a window aggregation must GROUP BY window_start, window_end (and optionally more columns)",
        ));
    }
    if fname == "SESSION" && !legacy {
        // Sessions are per PARTITION BY key; the aggregation is keyed by the GROUP BY columns,
        // so the two must be the same columns.
        let partition = match partition_by {
            None => Vec::new(),
            Some(p) => partition_columns(p)?,
        };
        let mut grouped: Vec<String> = group[3..].iter().map(|(n, _)| n.clone()).collect();
        let mut wanted = partition.clone();
        grouped.sort();
        wanted.sort();
        wanted.dedup();
        if grouped != wanted {
            return Err(unsupported(
                spos_of(select),
                format!(
                    "a SESSION window aggregation must GROUP BY window_start, window_end and exactly its PARTITION BY columns ({}); found ({})",
                    partition.join(", "),
                    grouped.join(", ")
                ),
            ));
        }
    }
    let Aggregation {
        projection,
        schema,
        having,
        aggs,
    } = bind_aggregation(
        &input.schema,
        group,
        select,
        "SELECT * is not allowed in a window aggregation; list window_start, window_end, the keys and the aggregates",
    )?;
    let (keys_len, aggs_len) = (keys.len(), aggs.len());
    let identity = format!(
        "{}|{:?}|{window:?}|{time_column}|{keys:?}|{aggs:?}",
        input.source.name(),
        input.steps
    );
    let uid = format!("sql-window-agg-{:016x}", stable_hash(&identity));
    input.steps.push(Step::WindowAggregate {
        window,
        time_column,
        proctime,
        keys,
        aggs,
        uid,
    });
    // The columns after the aggregation: window_start, window_end, window_time, keys,
    // aggregates.
    project_aggregated(&mut input, 3 + keys_len + aggs_len, projection, having);
    input.schema = schema;
    Ok(input)
}

/// Pushes the WHERE of an aggregating SELECT as a filter of its input rows.
pub(crate) fn filter_before_grouping(input: &mut Pipeline, select: &ast::Select) -> Result<()> {
    if let Some(w) = &select.selection {
        let filter = Binder::new(&input.schema).bind_condition(w, "WHERE")?;
        let projection = input
            .schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Expr::Column(i, c.data_type))
            .collect();
        input.steps.push(Step::Calc {
            filter: Some(filter),
            projection,
        });
    }
    Ok(())
}

/// The column a GROUP BY item names (`t.col` of a join is the column so named).
pub(crate) fn grouped_name(g: &ast::Expr, input: &Schema) -> Result<String> {
    column_name(g, input).ok_or_else(|| {
        unsupported(
            pos_of(g),
            "only a GROUP BY without windows takes expressions; here name columns (compute the expression in a view first)",
        )
    })
}

/// The column a bare or qualified name means in `input` (`t.col` of a join is the column so
/// named, else the last name); `None` for an expression that is not a name.
pub(crate) fn column_name(e: &ast::Expr, input: &Schema) -> Option<String> {
    match e {
        ast::Expr::Identifier(id) => Some(id.value.clone()),
        ast::Expr::CompoundIdentifier(ids) => {
            let joined: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
            let qualified = joined.join(".");
            if input.columns.iter().any(|c| c.name == qualified) {
                return Some(qualified);
            }
            Some(ids.last().map(|i| i.value.clone()).unwrap_or_default())
        }
        _ => None,
    }
}

/// An aggregating SELECT bound over its groups: the projection and HAVING over the rows after
/// the aggregation (the group columns, then the aggregates), and the aggregate calls found.
pub(crate) struct Aggregation {
    pub(crate) projection: Vec<Expr>,
    pub(crate) schema: Schema,
    pub(crate) having: Option<Expr>,
    pub(crate) aggs: Vec<AggCall>,
}

/// Binds the SELECT list and HAVING of an aggregation whose rows start with `group` (name and
/// type per column); `SELECT *` is refused with `no_wildcard`.
pub(crate) fn bind_aggregation(
    input: &Schema,
    group: Vec<(String, DataType)>,
    select: &ast::Select,
    no_wildcard: &str,
) -> Result<Aggregation> {
    if select
        .projection
        .iter()
        .any(|i| matches!(i, ast::SelectItem::Wildcard(_)))
    {
        return Err(unsupported(spos_of(select), no_wildcard));
    }
    let mut ctx = AggContext {
        input,
        group,
        aggs: Vec::new(),
    };
    let mut binder = Binder {
        schema: input,
        agg: Some(&mut ctx),
    };
    let post = Schema::default();
    let (projection, schema) = project(&post, &select.projection, |e| binder.bind(e))?;
    let having = select
        .having
        .as_ref()
        .map(|h| binder.bind_condition(h, "HAVING"))
        .transpose()?;
    Ok(Aggregation {
        projection,
        schema,
        having,
        aggs: ctx.aggs,
    })
}

/// Pushes the projection (and HAVING) after an aggregation whose rows are `width` wide,
/// unless it is the identity.
fn project_aggregated(
    input: &mut Pipeline,
    width: usize,
    projection: Vec<Expr>,
    having: Option<Expr>,
) {
    let identity = projection.len() == width
        && projection
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(j, _) if *j == i));
    if having.is_some() || !identity {
        input.steps.push(Step::Calc {
            filter: having,
            projection,
        });
    }
}

/// A `GROUP BY` without windows (or aggregates over every row, without GROUP BY): Flink's
/// GroupAggregate, whose result is updated as rows arrive (a changelog).
fn plan_group_aggregate(
    mut input: Pipeline,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<Pipeline> {
    filter_before_grouping(&mut input, select)?;
    let (select, group_by) = &group_by_expressions(&mut input, select, group_by)?;
    let group_by: Vec<&ast::Expr> = group_by.iter().collect();
    let mut keys = Vec::new();
    let mut group = Vec::new();
    for g in group_by {
        let name = grouped_name(g, &input.schema)?;
        let Some(i) = input.schema.index_of(&name) else {
            return Err(SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(g),
                format!(
                    "GROUP BY column '{name}' not found; the input has columns: {}",
                    input.schema.names()
                ),
            ));
        };
        if !keys.contains(&i) {
            keys.push(i);
            let c = &input.schema.columns[i];
            group.push((c.name.clone(), c.data_type));
        }
    }
    let Aggregation {
        projection,
        schema,
        having,
        aggs,
    } = bind_aggregation(
        &input.schema,
        group,
        select,
        "SELECT * is not allowed in an aggregation; list the GROUP BY columns and the aggregates",
    )?;
    if input.is_changelog()
        && let Some(a) = aggs.iter().find_map(|a| a.user.as_ref())
    {
        return Err(unsupported(
            spos_of(select),
            format!(
                "the user-defined aggregate {} cannot take back rows, and its input is updated ({}); aggregate an append-only input",
                a.function.name(),
                input.changelog_origin().unwrap_or_default()
            ),
        ));
    }
    let width = keys.len() + aggs.len();
    let identity = format!(
        "{}|{:?}|{keys:?}|{aggs:?}",
        input.source.name(),
        input.steps
    );
    let uid = format!("sql-group-agg-{:016x}", stable_hash(&identity));
    input.steps.push(Step::GroupAggregate { keys, aggs, uid });
    project_aggregated(&mut input, width, projection, having);
    input.schema = schema;
    Ok(input)
}

/// `GROUP BY` expressions that are not column names (`GROUP BY DATE_FORMAT(ts, 'yyyy-MM-dd')`,
/// Nexmark q15-q17): each is computed into a column `EXPR$g<i>` after the input's (a Calc
/// before the aggregation), and the SELECT list and HAVING read that column wherever they
/// repeat the expression (compared as written, as Flink matches them). Returns the SELECT and
/// GROUP BY to plan; both unchanged when every item is a name.
fn group_by_expressions(
    input: &mut Pipeline,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<(ast::Select, Vec<ast::Expr>)> {
    // Each computed expression: its column's name, its text as written, its bound form.
    let mut computed: Vec<(String, String, Expr)> = Vec::new();
    let mut names = Vec::new();
    for g in group_by {
        if column_name(g, &input.schema).is_some() {
            names.push((*g).clone());
            continue;
        }
        let text = g.to_string();
        let name = match computed.iter().find(|(_, t, _)| *t == text) {
            Some((n, _, _)) => n.clone(),
            None => {
                let bound = Binder::new(&input.schema).bind(g)?;
                let n = format!("EXPR$g{}", computed.len());
                computed.push((n.clone(), text, bound));
                n
            }
        };
        names.push(ast::Expr::Identifier(ast::Ident::new(name)));
    }
    if computed.is_empty() {
        return Ok((select.clone(), names));
    }
    let mut projection = crate::plan_topn::identity(&input.schema);
    for (name, _, bound) in &computed {
        input.schema.columns.push(Column {
            name: name.clone(),
            data_type: bound.data_type(),
            rowtime: false,
        });
        projection.push(bound.clone());
    }
    input.steps.push(Step::Calc {
        filter: None,
        projection,
    });
    let mut replace = |x: &ast::Expr| {
        let text = x.to_string();
        computed
            .iter()
            .find(|(_, t, _)| *t == text)
            .map(|(n, _, _)| ast::Expr::Identifier(ast::Ident::new(n.clone())))
    };
    let mut rewritten = select.clone();
    for item in &mut rewritten.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => *e = crate::ast_map::map_expr(e, &mut replace),
            ast::SelectItem::ExprWithAlias { expr, .. } => {
                *expr = crate::ast_map::map_expr(expr, &mut replace);
            }
            _ => {}
        }
    }
    if let Some(h) = &mut rewritten.having {
        *h = crate::ast_map::map_expr(h, &mut replace);
    }
    Ok((rewritten, names))
}

/// Flink's legacy group windows: `GROUP BY TUMBLE(ts, size)` (or `HOP(ts, slide, size)`,
/// `SESSION(ts, gap)`) with the other GROUP BY columns, and `TUMBLE_START(...)`,
/// `TUMBLE_END(...)`, `TUMBLE_ROWTIME(...)` (and `HOP_`, `SESSION_`) in the SELECT list: the
/// same window aggregation as the TVF form, its window functions read as `window_start`,
/// `window_end`, `window_time`. `None` when GROUP BY has no group window.
fn plan_group_window(
    input: Pipeline,
    select: &ast::Select,
    group_by: &[&ast::Expr],
) -> Result<Option<Pipeline>> {
    fn window_call(e: &ast::Expr) -> Option<&ast::Function> {
        match e {
            ast::Expr::Function(f)
                if matches!(
                    f.name.to_string().to_uppercase().as_str(),
                    "TUMBLE" | "HOP" | "SESSION"
                ) =>
            {
                Some(f)
            }
            _ => None,
        }
    }
    let Some((at, f)) = group_by
        .iter()
        .enumerate()
        .find_map(|(i, g)| window_call(g).map(|f| (i, f)))
    else {
        return Ok(None);
    };
    let fpos = Pos::of(f.span());
    let name = f.name.to_string().to_uppercase();
    let args: Vec<&ast::Expr> = match &f.args {
        ast::FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let usage = "write GROUP BY TUMBLE(ts, INTERVAL '10' SECOND), HOP(ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) or SESSION(ts, INTERVAL '10' SECOND) with a rowtime ts";
    let expected = if name == "HOP" { 3 } else { 2 };
    if args.len() != expected {
        return Err(unsupported(
            fpos,
            format!("{name} takes {expected} arguments here; {usage}"),
        ));
    }
    let time_column = match Binder::new(&input.schema).bind(args[0])? {
        Expr::Column(i, _) if input.schema.columns[i].rowtime || is_proctime(&input, i) => i,
        _ => {
            return Err(unsupported(
                pos_of(args[0]),
                format!(
                    "a group window's first argument is a time attribute: a rowtime (a column with a WATERMARK) or a processing-time column (pt AS PROCTIME()); {usage}"
                ),
            ));
        }
    };
    let proctime = is_proctime(&input, time_column);
    let ms = |e: &ast::Expr| -> Result<i64> {
        match Binder::new(&input.schema).bind(e)? {
            Expr::Literal(crate::types::Value::BigInt(ms), DataType::Interval) if ms > 0 => Ok(ms),
            _ => Err(unsupported(
                pos_of(e),
                format!("a window size is a positive INTERVAL; {usage}"),
            )),
        }
    };
    let window = match name.as_str() {
        "TUMBLE" => WindowKind::Tumble { size: ms(args[1])? },
        "HOP" => WindowKind::Hop {
            slide: ms(args[1])?,
            size: ms(args[2])?,
        },
        _ => WindowKind::Session { gap: ms(args[1])? },
    };
    // The window's functions become its columns.
    let mut rowtime_used = false;
    let mut rewrite = |e: &ast::Expr| {
        crate::ast_map::map_expr(e, &mut |x| {
            let ast::Expr::Function(g) = x else {
                return None;
            };
            let n = g.name.to_string().to_uppercase();
            let (prefix, part) = n.rsplit_once('_')?;
            if !matches!(prefix, "TUMBLE" | "HOP" | "SESSION") {
                return None;
            }
            let column = match part {
                "START" => "window_start",
                "END" => "window_end",
                "ROWTIME" => {
                    rowtime_used = true;
                    "window_time"
                }
                _ => return None,
            };
            Some(ast::Expr::Identifier(ast::Ident::new(column)))
        })
    };
    let mut rewritten = select.clone();
    for item in &mut rewritten.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                let new = rewrite(e);
                if new != *e {
                    // The output name of the original call (EXPR$n), not window_start.
                    *item = ast::SelectItem::ExprWithAlias {
                        alias: ast::Ident::new(format!("EXPR${}", 0)),
                        expr: new,
                    };
                }
            }
            ast::SelectItem::ExprWithAlias { expr, .. } => *expr = rewrite(expr),
            _ => {}
        }
    }
    // Unaliased window functions are named as Flink names expressions: EXPR$<position>.
    for (n, item) in rewritten.projection.iter_mut().enumerate() {
        if let ast::SelectItem::ExprWithAlias { alias, .. } = item
            && alias.value == "EXPR$0"
        {
            alias.value = format!("EXPR${n}");
        }
    }
    rewritten.having = rewritten.having.as_ref().map(&mut rewrite);
    let mut groups: Vec<ast::Expr> = group_by
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, g)| (*g).clone())
        .collect();
    for c in ["window_start", "window_end"] {
        groups.push(ast::Expr::Identifier(ast::Ident::new(c)));
    }
    if rowtime_used {
        groups.push(ast::Expr::Identifier(ast::Ident::new("window_time")));
    }
    let groups: Vec<&ast::Expr> = groups.iter().collect();
    let tvf = WindowTvf {
        name,
        input,
        window,
        time_column,
        partition_by: None,
        legacy: true,
        proctime,
    };
    plan_window_over(tvf, &rewritten, &groups).map(Some)
}

/// The column names of SESSION's `PARTITION BY k` or `PARTITION BY (k1, k2)`.
pub(crate) fn partition_columns(e: &ast::Expr) -> Result<Vec<String>> {
    let one = |e: &ast::Expr| match e {
        ast::Expr::Identifier(id) => Ok(id.value.clone()),
        other => Err(unsupported(
            pos_of(other),
            "PARTITION BY takes column names: PARTITION BY k or PARTITION BY (k1, k2)",
        )),
    };
    match e {
        ast::Expr::Nested(inner) => Ok(vec![one(inner)?]),
        ast::Expr::Tuple(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// The group-list name of an aggregation's window_time column while it is not grouped by.
const UNGROUPED_WINDOW_TIME: &str = "\0window_time";

fn spos_of(select: &ast::Select) -> Pos {
    Pos::of(select.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AggFunc;

    const KAFKA: &str = "'connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json', 'scan.startup.mode' = 'earliest-offset'";

    fn table<'a>(job: &'a SqlJob, name: &str) -> &'a TableDef {
        job.inserts
            .iter()
            .flat_map(|i| {
                let mut tables = i.pipeline.source.tables();
                tables.push(&i.sink);
                tables
            })
            .find(|t| t.name == name)
            .unwrap()
    }

    #[test]
    fn computed_columns_take_their_declared_place_and_may_be_the_rowtime() {
        let job = plan_portable(
            "CREATE TABLE src (
               s STRING,
               ts AS CAST(s AS TIMESTAMP(3)),
               n INT,
               doubled AS n * 2,
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
             ) WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
             CREATE TABLE out (ts TIMESTAMP(3), doubled INT) WITH ('connector' = 'print');
             INSERT INTO out SELECT ts, doubled FROM src;",
        )
        .unwrap();
        let src = table(&job, "src");
        assert_eq!(src.schema.names(), "s, n");
        assert_eq!(
            src.columns.to_string(),
            "[s STRING, ts TIMESTAMP(3) *ROWTIME*, n INT, doubled INT]"
        );
        assert_eq!(src.watermark.as_ref().unwrap().rowtime, 1);
        let projection = src.source_projection.as_ref().unwrap();
        assert_eq!(projection.len(), 4);
        assert_eq!(projection[2], Expr::Column(1, DataType::Int));
        let explain = job.explain();
        assert!(
            explain.contains("Source: src (connector=filesystem) [s STRING, n INT]")
                && explain.contains(
                    "-> Calc(table columns): select=[$0, CAST($0 AS TIMESTAMP(3)), $1, *($1, 2)]"
                )
                && explain.contains("-> Watermarks: rowtime=ts"),
            "{explain}"
        );
    }

    #[test]
    fn kafka_metadata_columns_are_read_after_the_value_and_timestamp_is_written() {
        let job = plan_portable(&format!(
            "CREATE TABLE k (
               kts TIMESTAMP(3) METADATA FROM 'timestamp',
               id INT,
               part BIGINT METADATA FROM 'partition' VIRTUAL,
               `offset` BIGINT METADATA VIRTUAL,
               next_id AS id + 1
             ) WITH ({KAFKA});
             CREATE TABLE out (kts TIMESTAMP(3), id INT, part BIGINT, o BIGINT, next_id INT)
               WITH ('connector' = 'print');
             INSERT INTO out SELECT * FROM k;
             INSERT INTO k SELECT kts, id FROM k;"
        ))
        .unwrap();
        let k = table(&job, "k");
        assert_eq!(
            k.columns.names(),
            "kts, id, part, offset, next_id",
            "declared order"
        );
        // Source row: id, then timestamp, partition (INT, widened), offset.
        assert_eq!(
            k.source_projection.as_ref().unwrap()[..3],
            [
                Expr::Column(1, DataType::Timestamp),
                Expr::Column(0, DataType::Int),
                Expr::Cast(
                    Box::new(Expr::Column(2, DataType::Int)),
                    DataType::BigInt,
                    false
                ),
            ]
        );
        // The INSERT writes kts and id; the sink's row is the value (id), then the timestamp.
        assert_eq!(k.persisted(), [(0, 1), (1, 0)]);
        let insert = &job.inserts[1];
        assert_eq!(insert.pipeline.schema.names(), "id, kts");
        let config = connectors::kafka::KafkaTableConfig::from_table(k, false).unwrap();
        assert_eq!(config.timestamp_column, Some(1));
        assert_eq!(config.metadata, ["timestamp", "partition", "offset"]);
    }

    #[test]
    fn window_functions_and_distinct_aggregates_refuse_what_flink_refuses() {
        let head = "CREATE TABLE t (k STRING, n INT, ts TIMESTAMP(3),
                      WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
                    WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
                    CREATE TABLE out (a TIMESTAMP(3), b BIGINT) WITH ('connector' = 'blackhole');
                    INSERT INTO out ";
        for (query, want) in [
            (
                "SELECT window_end, COUNT(*) FROM TABLE(CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '4' SECOND, INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
                "must be an integral multiple of its step",
            ),
            (
                "SELECT window_time, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
                "window_time",
            ),
            (
                "SELECT window_end, COUNT(DISTINCT *) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
                "COUNT(DISTINCT column)",
            ),
            (
                "SELECT window_end, COUNT(*) FROM TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
                "exactly its PARTITION BY columns (k)",
            ),
            (
                "SELECT window_end, COUNT(*) FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k",
                "exactly its PARTITION BY columns ()",
            ),
        ] {
            let err = plan_portable(&format!("{head}{query};"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{query}\n{err}");
        }
        // Grouped by, window_time is the third column of the aggregation; CUMULATE plans.
        let job = plan_portable(&format!(
            "{head}SELECT window_time, COUNT(DISTINCT n) FROM TABLE(CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) GROUP BY window_start, window_end, window_time;"
        ))
        .unwrap();
        let steps = &job.inserts[0].pipeline.steps;
        assert!(steps.iter().any(|s| matches!(
            s,
            Step::WindowAggregate { window: WindowKind::Cumulate { step: 5000, size: 10000 }, aggs, .. }
                if aggs[0].func == AggFunc::CountDistinct
        )));
        assert!(steps.iter().any(|s| matches!(
            s,
            Step::Calc { projection, .. } if matches!(projection[0], Expr::Column(2, DataType::Timestamp))
        )));
    }

    #[test]
    fn misused_computed_and_metadata_columns_name_their_place() {
        let fs = "'connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv'";
        let sink = "CREATE TABLE out (a INT) WITH ('connector' = 'blackhole');";
        for (script, want) in [
            (
                format!(
                    "CREATE TABLE t (a INT,\n b TIMESTAMP(3) METADATA FROM 'timestamp') WITH ({fs}); {sink} INSERT INTO out SELECT a FROM t;"
                ),
                "line 2, column 31: metadata column 'b': the 'filesystem' connector has no metadata keys (supported keys: none)",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, h STRING METADATA FROM 'headers') WITH ({KAFKA}); {sink} INSERT INTO out SELECT a FROM t;"
                ),
                "line 1, column 47: metadata column 'h': the 'kafka' connector has no metadata key 'headers'; its keys are: timestamp, partition, offset, topic",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, p STRING METADATA FROM 'partition') WITH ({KAFKA}); {sink} INSERT INTO out SELECT a FROM t;"
                ),
                "line 1, column 47: metadata column 'p': key 'partition' is INT, not STRING",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT,\n  c AS a + x) WITH ({fs}); {sink} INSERT INTO out SELECT a FROM t;"
                ),
                "line 2, column 12: in computed column 'c': column 'x' not found; the input has columns: a",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, c AS a + 1, d AS c * 2) WITH ({fs}); {sink} INSERT INTO out SELECT a FROM t;"
                ),
                "line 1, column 41: computed column 'd' refers to computed column 'c'",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, c AS a + 1) WITH ({fs}); {sink} INSERT INTO t (a, c) SELECT a, a AS b FROM t;"
                ),
                "column 'c' of 't' is a computed column, which is only read: an INSERT writes the physical and non-virtual metadata columns (a)",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, c AS a + 1) WITH ({fs}); {sink} INSERT INTO t SELECT a, a AS b FROM t;"
                ),
                "the query has 2 columns [a, b] but sink 't' has 1 [a]",
            ),
            (
                format!(
                    "CREATE TABLE t (a INT, p INT METADATA FROM 'partition') WITH ({KAFKA});\nINSERT INTO t SELECT a, p FROM t;"
                ),
                "line 1, column 44: table 't' is written by the INSERT at line 2, column 13, but its metadata column 'p' (key 'partition') cannot be written (the kafka connector writes: timestamp)",
            ),
        ] {
            let err = plan_portable(&script).unwrap_err().to_string();
            assert!(err.contains(want), "{script}\n{err}");
        }
    }

    #[test]
    fn a_subquery_in_from_reads_like_a_view() {
        let job = plan_portable(
            "CREATE TABLE t (k STRING, n INT) WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
             CREATE TABLE out (k STRING, m INT) WITH ('connector' = 'blackhole');
             INSERT INTO out SELECT k, m FROM (SELECT k, n * 2 AS m FROM t WHERE n > 1) AS s WHERE m < 10;",
        )
        .unwrap();
        let p = &job.inserts[0].pipeline;
        assert_eq!(p.schema.names(), "k, m");
        assert!(
            matches!(
                p.steps.as_slice(),
                [
                    Step::Calc {
                        filter: Some(_),
                        ..
                    },
                    Step::Calc {
                        filter: Some(_),
                        ..
                    }
                ]
            ),
            "{:?}",
            p.steps
        );
        // GROUP BY over a subquery: an updating aggregation, which a blackhole takes and a
        // file sink refuses.
        let script = |sink: &str| {
            format!(
                "CREATE TABLE t (k STRING, n INT) WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
                 CREATE TABLE out (k STRING, m BIGINT) WITH ({sink});
                 INSERT INTO out SELECT k, COUNT(*) FROM (SELECT k FROM t) GROUP BY k;"
            )
        };
        let job = plan_portable(&script("'connector' = 'blackhole'")).unwrap();
        let p = &job.inserts[0].pipeline;
        assert!(p.is_changelog(), "{:?}", p.steps);
        let err = plan_portable(&script(
            "'connector' = 'filesystem', 'path' = '/out', 'format' = 'csv'",
        ))
        .unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::Unsupported), "{err}");
        assert!(
            err.to_string().contains("only takes appended rows")
                && err.to_string().contains("GroupAggregate(groupBy=[$0])"),
            "{err}"
        );
    }
}
