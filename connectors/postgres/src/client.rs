//! One connection to the server, driven from the caller's synchronous thread (a sink writer,
//! a lookup in a user function) on a single-threaded tokio runtime of its own: every call
//! blocks until the server has answered. The connection's task runs only inside those calls,
//! which is all it needs.
//!
//! Errors are sorted here: [`Failure::Transient`] (no connection, the server starting up or
//! shutting down, a serialization failure or deadlock: reconnect and run again) and
//! [`Failure::Permanent`] (a missing table or column, a constraint, credentials: a message
//! saying what to do).

use crate::error::PostgresError;
use crate::statement;
use crate::value::{PgColumn, PgType, READABLE_TYPES};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

/// Where and how to connect; shared by the sink and the lookup.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    /// `postgres://user[:password]@host:port/database` (or a key=value string).
    pub(crate) url: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) connect_timeout: Duration,
}

impl ConnectOptions {
    /// The parsed configuration.
    ///
    /// # Errors
    /// [`PostgresError::Config`] for a URL the client cannot read or that asks for TLS.
    pub(crate) fn config(&self) -> Result<tokio_postgres::Config, PostgresError> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|e| {
            PostgresError::Config(format!(
                "'{}' is not a PostgreSQL connection URL ({e}); write postgres://user@host:port/database",
                self.redacted_url()
            ))
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(PostgresError::Config(
                "sslmode=require: the connector speaks plain connections only (no TLS); connect on a trusted network or through a local TLS proxy".into(),
            ));
        }
        if let Some(u) = &self.username {
            config.user(u);
        }
        if let Some(p) = &self.password {
            config.password(p);
        }
        if config.get_user().is_none() {
            return Err(PostgresError::Config(format!(
                "no user for {}: put it in the URL (postgres://user@host:port/database) or set the username",
                self.redacted_url()
            )));
        }
        config.connect_timeout(self.connect_timeout);
        Ok(config)
    }

    /// The URL without its password, for messages.
    pub(crate) fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Why a call did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth retrying on a new connection; the reason.
    Transient(String),
    /// A retry cannot help.
    Permanent(Box<PostgresError>),
}

impl Failure {
    /// A permanent failure of `e`.
    pub(crate) fn permanent(e: PostgresError) -> Failure {
        Failure::Permanent(Box::new(e))
    }
}

/// Whether a server error (by SQLSTATE) may pass: connection exceptions (08), operator
/// intervention (57P: the server shutting down, starting up), insufficient resources (53: too
/// many connections), serialization failures and deadlocks (40001, 40P01).
fn transient_code(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || c.starts_with("57P")
        || c.starts_with("53")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// Whether `e` is worth a retry: a server error with a transient SQLSTATE, or no server error
/// at all (I/O, a closed connection, a timeout), except a value that did not fit its
/// parameter (which the callers check before sending).
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => transient_code(code),
        None => !error_chain(e).contains("error serializing parameter"),
    }
}

/// An error with its sources (the top level alone says little: "db error", "error connecting
/// to server").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// One connection and the runtime that drives it.
pub(crate) struct Connection {
    runtime: tokio::runtime::Runtime,
    client: Client,
    url: String,
}

impl Connection {
    /// Connects once.
    pub(crate) fn connect(options: &ConnectOptions) -> Result<Connection, Failure> {
        let config = options.config().map_err(Failure::permanent)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::permanent(PostgresError::Config(format!(
                    "cannot start the client's runtime: {e}"
                )))
            })?;
        let url = options.redacted_url();
        let connected = runtime.block_on(async {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the connection breaks; the next call on
                // the client then fails, and the caller reconnects.
                if let Err(e) = connection.await {
                    tracing::debug!("PostgreSQL connection ended: {e}");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match connected {
            Ok(client) => Ok(Connection {
                runtime,
                client,
                url,
            }),
            Err(e) if is_transient(&e) => Err(Failure::Transient(error_chain(&e))),
            Err(e) => Err(Failure::permanent(refused(&url, &e))),
        }
    }

    /// Connects, retrying transient failures with `backoff`.
    pub(crate) fn connect_with_retries(
        options: &ConnectOptions,
        backoff: &crate::Backoff,
        what: &str,
    ) -> Result<Connection, PostgresError> {
        let mut retry = 0;
        loop {
            match Connection::connect(options) {
                Ok(c) => return Ok(c),
                Err(Failure::Permanent(e)) => return Err(*e),
                Err(Failure::Transient(reason)) => {
                    retry += 1;
                    let Some(d) = backoff.delay_before(retry) else {
                        return Err(PostgresError::Unreachable {
                            url: options.redacted_url(),
                            attempts: retry,
                            reason,
                        });
                    };
                    tracing::warn!(
                        "{what}: cannot connect to PostgreSQL at {} ({reason}); retry {retry} in {d:?}",
                        options.redacted_url()
                    );
                    std::thread::sleep(d);
                }
            }
        }
    }

    /// The client, for futures run with [`block_on`](Self::block_on).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Blocks on `future`.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The table's columns in table order, with their types.
    pub(crate) fn table_columns(&self, table: &str) -> Result<Vec<(String, String)>, Failure> {
        let stmt = self
            .block_on(self.client.prepare(&statement::describe(table)))
            .map_err(|e| self.classify(&e, table, &[], "the table's columns"))?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().name().to_string()))
            .collect())
    }

    /// Prepares `sql` on `table`, naming a missing table or column (`what`: which option
    /// named the columns) and a missing unique key clearly.
    pub(crate) fn prepare(
        &self,
        sql: &str,
        table: &str,
        key: &[String],
        what: &'static str,
    ) -> Result<Statement, Failure> {
        self.block_on(self.client.prepare(sql)).map_err(|e| {
            let f = self.classify(&e, table, key, what);
            if let Failure::Permanent(e) = &f
                && let PostgresError::MissingColumn {
                    table,
                    column,
                    what,
                    ..
                } = &**e
            {
                let (table, column, what) = (table.clone(), column.clone(), *what);
                let available = self
                    .table_columns(&table)
                    .map(|cols| {
                        cols.iter()
                            .map(|(n, t)| format!("{n} ({t})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_else(|_| "(could not be read)".into());
                return Failure::permanent(PostgresError::MissingColumn {
                    table,
                    column,
                    what,
                    available,
                });
            }
            f
        })
    }

    /// Sorts an error of a statement on `table`.
    pub(crate) fn classify(
        &self,
        e: &tokio_postgres::Error,
        table: &str,
        key: &[String],
        what: &'static str,
    ) -> Failure {
        if is_transient(e) {
            return Failure::Transient(error_chain(e));
        }
        let Some(db) = e.as_db_error() else {
            return Failure::permanent(PostgresError::Config(error_chain(e)));
        };
        let code = db.code();
        let f = if *code == SqlState::UNDEFINED_TABLE {
            PostgresError::MissingTable {
                table: table.to_string(),
                url: self.url.clone(),
            }
        } else if *code == SqlState::UNDEFINED_COLUMN {
            PostgresError::MissingColumn {
                table: table.to_string(),
                column: quoted_name(db.message()).unwrap_or_else(|| db.message().to_string()),
                what,
                available: String::new(),
            }
        } else if *code == SqlState::INVALID_COLUMN_REFERENCE
            && db.message().contains("ON CONFLICT")
        {
            PostgresError::NoUniqueKey {
                table: table.to_string(),
                key: key.join(", "),
            }
        } else {
            PostgresError::Statement {
                table: table.to_string(),
                statement: format!("the statement for {what}"),
                code: code.code().to_string(),
                message: db.message().to_string(),
                detail: detail_of(db),
            }
        };
        Failure::permanent(f)
    }
}

/// The server's detail and hint, as `; detail; hint` (empty without).
pub(crate) fn detail_of(db: &tokio_postgres::error::DbError) -> String {
    let mut s = String::new();
    for part in [db.detail(), db.hint()].into_iter().flatten() {
        s.push_str("; ");
        s.push_str(part);
    }
    s
}

/// The first double-quoted name in a server message (`column "x" does not exist` → `x`).
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].to_string())
}

/// The error of a connection the server refused for good.
fn refused(url: &str, e: &tokio_postgres::Error) -> PostgresError {
    let Some(db) = e.as_db_error() else {
        return PostgresError::Config(format!(
            "cannot connect to PostgreSQL at {url}: {}",
            error_chain(e)
        ));
    };
    let code = db.code().code();
    let hint = if code.starts_with("28") {
        "check the user and password (in the URL, or the 'username' / 'password' options) and the server's pg_hba.conf"
    } else if code == "3D000" {
        "create the database, or name an existing one in the URL's path (postgres://user@host:port/database)"
    } else {
        "check the server's log"
    };
    PostgresError::Refused {
        url: url.to_string(),
        code: code.to_string(),
        message: db.message().to_string(),
        hint,
    }
}

/// The columns of a prepared statement's result, as the connector reads them.
///
/// # Errors
/// [`PostgresError::UnsupportedType`] naming the first column of a type it cannot read.
pub(crate) fn result_columns(
    stmt: &Statement,
    table: &str,
) -> Result<Vec<PgColumn>, PostgresError> {
    stmt.columns()
        .iter()
        .map(|c| {
            let pg_type =
                PgType::from_type(c.type_()).ok_or_else(|| PostgresError::UnsupportedType {
                    table: table.to_string(),
                    column: c.name().to_string(),
                    column_type: c.type_().name().to_string(),
                    supported: READABLE_TYPES,
                })?;
            Ok(PgColumn {
                name: c.name().to_string(),
                pg_type,
                type_name: c.type_().name().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=h user=u"), "host=h user=u");
    }

    #[test]
    fn server_messages_name_the_missing_column() {
        assert_eq!(
            quoted_name("column \"scroe\" of relation \"t\" does not exist").as_deref(),
            Some("scroe")
        );
        assert_eq!(quoted_name("no quotes"), None);
    }

    #[test]
    fn tls_only_urls_are_refused_and_users_are_required() {
        let o = |url: &str| ConnectOptions {
            url: url.into(),
            username: None,
            password: None,
            connect_timeout: Duration::from_secs(1),
        };
        let e = o("postgres://u@h/db?sslmode=require").config().unwrap_err();
        assert!(e.to_string().contains("no TLS"), "{e}");
        let e = o("postgres://h/db").config().unwrap_err();
        assert!(e.to_string().contains("no user"), "{e}");
        assert!(o("postgres://u:p@h:1/db").config().is_ok());
    }
}
