//! Helpers for the integration tests: each test gets its own database in the cluster that
//! `make test` starts (port in PGSE_TEST_PORT), with pg_storage_ext created in it.

use postgres::{Client, Config, NoTls};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Port of the test cluster.
pub fn port() -> u16 {
    std::env::var("PGSE_TEST_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("PGSE_TEST_PORT: run the integration tests through `make test`")
}

/// A client on database `db` of the test cluster, as the superuser `postgres`.
pub fn connect(db: &str) -> Client {
    connect_as(db, "postgres")
}

/// A client on database `db` of the test cluster, as `user` (trust authentication).
pub fn connect_as(db: &str, user: &str) -> Client {
    let conf = format!("host=127.0.0.1 port={} user={user} dbname={db}", port());
    Client::connect(&conf, NoTls).expect("connect to the test cluster")
}

/// Creates a fresh, empty database named `name` (dropping an old one) and returns a client on it.
pub fn empty_db(name: &str) -> Client {
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .expect("drop old test database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    connect(name)
}

/// Creates a fresh database named `name` with pg_storage_ext installed and returns a client on it.
pub fn fresh_db(name: &str) -> Client {
    let mut c = empty_db(name);
    c.batch_execute("CREATE EXTENSION pg_storage_ext")
        .expect("create extension");
    c
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bindir of the PostgreSQL in use (`$PG_CONFIG`, as `make test` exports it, else the
/// `pg_config` on PATH): for pg_dump, pg_restore and psql.
pub fn bindir() -> String {
    let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
    let out = std::process::Command::new(pg_config)
        .arg("--bindir")
        .output()
        .expect("pg_config");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether `role` is a superuser now (what an escalation attempt must not have changed).
pub fn is_superuser(role: &str) -> bool {
    connect("postgres")
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .expect("role")
        .get(0)
}

/// An error as a line for an assertion's message: SQLSTATE, message and detail when it is the
/// server's, else the client's text.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!(
            "{}: {} ({})",
            d.code().code(),
            d.message(),
            d.detail().unwrap_or("")
        ),
        None => e.to_string(),
    }
}

/// The single bigint a query returns (a count).
pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect(sql).get(0)
}

/// The SQLSTATE of the error a statement must raise (it fails the test when the statement runs).
pub fn sqlstate(c: &mut Client, sql: &str) -> String {
    let err = c
        .batch_execute(sql)
        .expect_err(&format!("must be refused: {sql}"));
    err.code()
        .map(|s| s.code().to_owned())
        .unwrap_or_else(|| describe(&err))
}

/// What pg_cron is doing, for a test's failure message: every scheduled job, the runs not ended,
/// and the server's background processes by type (a job that never starts is most often one
/// waiting for a slot).
pub fn cron_state(cron: &mut Client) -> String {
    let lines = |c: &mut Client, sql: &str| -> String {
        match c.query(sql, &[]) {
            Ok(rows) => rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => describe(&e),
        }
    };
    let jobs = lines(
        cron,
        "SELECT format('%s %s %s %s', jobid, jobname, schedule, database) FROM cron.job ORDER BY jobid",
    );
    let runs = lines(
        cron,
        "SELECT format('%s job %s %s since %s', runid, jobid, status, start_time) FROM cron.job_run_details
          WHERE status IN ('starting', 'running') ORDER BY runid",
    );
    let processes = lines(
        cron,
        "SELECT format('%s x%s', coalesce(backend_type, '?'), count(*)) FROM pg_stat_activity GROUP BY 1 ORDER BY 1",
    );
    format!("jobs: [{jobs}]; runs not ended: [{runs}]; processes: [{processes}]")
}

/// Drops the database `0` names when it goes out of scope (declare it before the test's
/// clients): a test whose database keeps a background worker (a change feed's notifier) frees
/// the worker's slot for the tests after it. A failed test's database is kept, to look into.
pub struct DroppedAtEnd(pub &'static str);

impl Drop for DroppedAtEnd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let conf = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            port()
        );
        if let Ok(mut admin) = Client::connect(&conf, NoTls) {
            let _ =
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
        }
    }
}

/// A client on `db` as `user` whose server notices (NOTICEs, WARNINGs, auto_explain's plans) are
/// collected, each as its message and its detail.
pub fn connect_noticed(db: &str, user: &str) -> (Client, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&notices);
    let c = Config::new()
        .host("127.0.0.1")
        .port(port())
        .user(user)
        .dbname(db)
        .notice_callback(move |n| {
            if let Ok(mut s) = seen.lock() {
                s.push(format!("{} {}", n.message(), n.detail().unwrap_or("")));
            }
        })
        .connect(NoTls)
        .expect("connect");
    (c, notices)
}
