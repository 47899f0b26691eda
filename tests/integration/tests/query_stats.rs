//! Issue 39: the query statistics history from pg_stat_statements (preloaded in the test cluster
//! by scripts/test.sh): per-queryid deltas kept by metrics_snapshot(), never negative across a
//! pg_stat_statements_reset(); storage.top_queries() with the text only as pg_stat_statements
//! shows it to the caller; the Prometheus families; the report without text unless asked; a
//! query that got slower after a migration named with its version.

use pg_storage_integration::{connect, connect_as, fresh_db};
use std::time::Duration;

const DB: &str = "itest_query_stats";

fn snapshot(c: &mut postgres::Client) {
    c.batch_execute("SELECT storage.metrics_snapshot()")
        .expect("snapshot");
}

/// The deltas of one query in the snapshots, oldest first.
fn deltas(c: &mut postgres::Client, queryid: i64) -> Vec<i64> {
    c.query(
        "SELECT calls FROM storage.query_stats WHERE queryid = $1 ORDER BY ts",
        &[&queryid],
    )
    .expect("deltas")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn queryid(c: &mut postgres::Client, like: &str) -> i64 {
    c.query_one(
        "SELECT queryid FROM pg_stat_statements WHERE query LIKE $1 AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1",
        &[&like],
    )
    .expect("the query in pg_stat_statements")
    .get(0)
}

#[test]
fn deltas_top_queries_exposition_and_report() {
    let mut c = fresh_db(DB);
    let preloaded: String = c
        .query_one("SHOW shared_preload_libraries", &[])
        .expect("show")
        .get(0);
    assert!(
        preloaded.contains("pg_stat_statements"),
        "scripts/test.sh preloads pg_stat_statements in the test cluster: {preloaded}"
    );
    c.batch_execute(
        "CREATE EXTENSION pg_stat_statements;
         CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;",
    )
    .expect("setup");
    // the first snapshot takes the baseline only
    snapshot(&mut c);
    let kept: i64 = c
        .query_one("SELECT count(*) FROM storage.query_stats", &[])
        .expect("count")
        .get(0);
    assert_eq!(kept, 0, "the first snapshot keeps no deltas");
    for i in 0..20 {
        c.query_one("SELECT count(*) FROM t WHERE v > $1", &[&i])
            .expect("q");
    }
    snapshot(&mut c);
    let q = queryid(&mut c, "SELECT count(*) FROM t WHERE v > $1");
    assert_eq!(deltas(&mut c, q), vec![20]);
    for i in 0..5 {
        c.query_one("SELECT count(*) FROM t WHERE v > $1", &[&i])
            .expect("q");
    }
    snapshot(&mut c);
    assert_eq!(deltas(&mut c, q), vec![20, 5]);
    // a reset: the counters start again from zero, the delta is what ran since, never negative
    c.batch_execute("SELECT pg_stat_statements_reset()")
        .expect("reset");
    for i in 0..3 {
        c.query_one("SELECT count(*) FROM t WHERE v > $1", &[&i])
            .expect("q");
    }
    snapshot(&mut c);
    assert_eq!(deltas(&mut c, q), vec![20, 5, 3]);
    let negative: i64 = c
        .query_one(
            "SELECT count(*) FROM storage.query_stats WHERE calls < 0 OR total_ms < 0 OR rows < 0 OR shared_blks_hit < 0 OR shared_blks_read < 0 OR wal_bytes < 0",
            &[],
        )
        .expect("negative")
        .get(0);
    assert_eq!(negative, 0);

    // storage.top_queries: the sums, the text as pg_stat_statements shows it
    let row = c
        .query_one(
            "SELECT calls, rows, mean_ms > 0, query FROM storage.top_queries('1 hour', 50) WHERE queryid = $1",
            &[&q],
        )
        .expect("top_queries");
    assert_eq!(row.get::<_, i64>(0), 28);
    assert_eq!(row.get::<_, i64>(1), 28);
    assert!(row.get::<_, bool>(2));
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("SELECT count(*) FROM t WHERE v > $1")
    );

    // the Prometheus families, by queryid, no text
    let expo: String = c
        .query_one("SELECT storage.metrics_prometheus()", &[])
        .expect("expo")
        .get(0);
    let line = format!("pg_storage_ext_query_calls_total{{datname=\"{DB}\",queryid=\"{q}\"}} 3");
    assert!(expo.lines().any(|l| l == line), "no {line}");
    assert!(expo.contains("# TYPE pg_storage_ext_query_seconds_total counter"));
    assert!(
        !expo.contains("FROM t WHERE"),
        "query text in the exposition"
    );

    // the report: the top queries without their text, unless asked (and then escaped)
    let (plain, with_text): (String, String) = {
        let r = c
            .query_one(
                "SELECT storage.health_report_html('1 hour'), storage.health_report_html('1 hour', true)",
                &[],
            )
            .expect("report");
        (r.get(0), r.get(1))
    };
    assert!(plain.contains(&format!("<tr><td>{q}</td><td>{DB}</td><td>28</td>")));
    assert!(
        !plain.contains("FROM t WHERE"),
        "query text in the plain report"
    );
    assert!(with_text.contains("<td>SELECT count(*) FROM t WHERE v &gt; $1</td>"));

    // a pg_monitor role sees the history; a role without it may not call top_queries; a role
    // that may read pg_stat_statements but not other users' statements gets no other text
    c.batch_execute(
        "DROP ROLE IF EXISTS qs_monitor; DROP ROLE IF EXISTS qs_nobody;
         CREATE ROLE qs_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE qs_nobody LOGIN;",
    )
    .expect("roles");
    let mut monitor = connect_as(DB, "qs_monitor");
    let n: i64 = monitor
        .query_one(
            "SELECT count(*) FROM storage.top_queries('1 hour') WHERE query IS NOT NULL",
            &[],
        )
        .expect("monitor top_queries")
        .get(0);
    assert!(n >= 1);
    let mut nobody = connect_as(DB, "qs_nobody");
    let err = nobody
        .query("SELECT * FROM storage.top_queries()", &[])
        .expect_err("top_queries without pg_monitor");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let err = nobody
        .query("SELECT * FROM storage.query_stats", &[])
        .expect_err("query_stats without pg_monitor");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    drop((monitor, nobody));
    c.batch_execute("DROP OWNED BY qs_monitor, qs_nobody; DROP ROLE qs_monitor, qs_nobody;")
        .expect("drop roles");
}

#[test]
fn a_query_slower_after_a_migration_names_the_version() {
    let mut c = fresh_db("itest_query_regressions");
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE FUNCTION work() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(0.002)';",
    )
    .expect("setup");
    snapshot(&mut c);
    for _ in 0..10 {
        c.batch_execute("SELECT work()").expect("work");
    }
    snapshot(&mut c);
    // the migration makes it ten times slower
    c.batch_execute(
        "SELECT storage.migrate('7', 'slower work', $m$CREATE OR REPLACE FUNCTION work() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(0.02)'$m$)",
    )
    .expect("migrate");
    for _ in 0..10 {
        c.batch_execute("SELECT work()").expect("work");
    }
    std::thread::sleep(Duration::from_millis(1500));
    snapshot(&mut c);
    let rows = c
        .query(
            "SELECT version, calls_before, calls_after, slowdown, query FROM storage.query_regressions('1 hour')",
            &[],
        )
        .expect("regressions");
    let work: Vec<_> = rows
        .iter()
        .filter(|r| r.get::<_, Option<String>>(4).as_deref() == Some("SELECT work()"))
        .collect();
    assert_eq!(work.len(), 1, "{rows:?}");
    let r = work[0];
    assert_eq!(r.get::<_, String>(0), "7");
    assert_eq!(r.get::<_, i64>(1), 10);
    assert_eq!(r.get::<_, i64>(2), 10);
    let slowdown: f64 = r.get(3);
    assert!(slowdown > 4.0, "slowdown {slowdown}");
    // a higher factor than the slowdown: not reported
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM storage.query_regressions('1 hour', factor => 1000) WHERE query = 'SELECT work()'",
            &[],
        )
        .expect("factor")
        .get(0);
    assert_eq!(n, 0);
    let err = c
        .query("SELECT * FROM storage.query_regressions('-1 hour')", &[])
        .expect_err("negative since");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::INVALID_PARAMETER_VALUE)
    );
    drop(connect("postgres"));
}
