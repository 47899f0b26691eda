//! Materialized views across sessions: no queueing behind a running refresh, changes committed
//! during a refresh picked up by the next one, and the pg_cron job created by schedule_jobs.

use pg_storage_integration::{connect, fresh_db, wait_for};
use postgres::Client;
use std::time::{Duration, Instant};

const SETUP: &str = "
    CREATE TABLE src (id int PRIMARY KEY, v int NOT NULL);
    INSERT INTO src SELECT i, i FROM generate_series(1, 100) AS i;
    CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(v) AS total FROM src;
    CREATE UNIQUE INDEX ON totals (n);
    SELECT storage.register_matview('totals', '1 second');";

fn refresh(c: &mut Client, force: bool) -> String {
    c.query_one("SELECT storage.refresh_matview('totals', $1)", &[&force])
        .expect("refresh_matview")
        .get(0)
}

#[test]
fn second_refresh_is_skipped_not_queued() {
    let mut a = fresh_db("itest_mv_running");
    a.batch_execute(SETUP).expect("setup");
    let mut b = connect("itest_mv_running");
    b.batch_execute("SET statement_timeout = '10s'")
        .expect("timeout");

    a.batch_execute("BEGIN").expect("begin");
    assert_eq!(refresh(&mut a, true), "refreshed");
    // a holds the refresh open: b must come back at once, not wait for a's commit
    let t0 = Instant::now();
    assert_eq!(refresh(&mut b, true), "skipped: running");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the second refresh waited"
    );
    a.batch_execute("COMMIT").expect("commit");
    assert_eq!(refresh(&mut b, true), "refreshed");

    let logged: Vec<String> = b
        .query(
            "SELECT outcome FROM storage.matview_refresh_log ORDER BY id",
            &[],
        )
        .expect("log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged, ["refreshed", "skipped: running", "refreshed"]);
}

#[test]
fn changes_committed_during_a_refresh_are_not_missed() {
    let mut a = fresh_db("itest_mv_during");
    a.batch_execute(SETUP).expect("setup");
    let mut w = connect("itest_mv_during");
    assert_eq!(refresh(&mut a, false), "refreshed");
    assert_eq!(refresh(&mut a, false), "skipped: unchanged");

    // a writer commits while a refresh (its snapshot already taken) is open
    a.batch_execute("BEGIN").expect("begin");
    assert_eq!(refresh(&mut a, true), "refreshed");
    w.batch_execute("INSERT INTO src VALUES (1001, 1)")
        .expect("insert");
    a.batch_execute("COMMIT").expect("commit");
    assert_eq!(
        refresh(&mut a, false),
        "refreshed",
        "the change committed during the refresh was missed"
    );
    assert_eq!(refresh(&mut a, false), "skipped: unchanged");

    // a writer still running when the refresh starts, committing after it
    w.batch_execute("BEGIN; INSERT INTO src VALUES (1002, 1)")
        .expect("open writer");
    assert_eq!(refresh(&mut a, true), "refreshed");
    w.batch_execute("COMMIT").expect("writer commit");
    assert_eq!(
        refresh(&mut a, false),
        "refreshed",
        "the change in progress during the refresh was missed"
    );
    let n: i64 = a
        .query_one("SELECT n FROM totals", &[])
        .expect("totals")
        .get(0);
    assert_eq!(n, 102);

    // a rolled-back writer changes nothing
    w.batch_execute("BEGIN; DELETE FROM src; ROLLBACK")
        .expect("rollback");
    assert_eq!(refresh(&mut a, false), "skipped: unchanged");

    // concurrent writers do not wait on each other (no shared counter row)
    let handles: Vec<_> = (0..4)
        .map(|k| {
            std::thread::spawn(move || {
                let mut c = connect("itest_mv_during");
                c.batch_execute("SET lock_timeout = '2s'")
                    .expect("lock_timeout");
                for i in 0..50 {
                    let id = 10_000 + k * 1000 + i;
                    c.execute("INSERT INTO src VALUES ($1, 1)", &[&id])
                        .expect("concurrent insert");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
    assert_eq!(refresh(&mut a, false), "refreshed");
    let n: i64 = a
        .query_one("SELECT n FROM totals", &[])
        .expect("totals")
        .get(0);
    assert_eq!(n, 302);
}

#[test]
fn schedule_jobs_runs_refresh_due_from_pg_cron() {
    // pg_cron lives in the database named by cron.database_name (postgres in the test cluster)
    let mut c = connect("postgres");
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_cron;
         DROP EXTENSION IF EXISTS pg_storage_ext CASCADE;
         DROP TABLE IF EXISTS src CASCADE;
         CREATE EXTENSION pg_storage_ext;",
    )
    .expect("extensions");
    c.batch_execute(SETUP).expect("setup");
    c.execute(
        "SELECT storage.schedule_jobs('1 seconds', '*/15 * * * *', '2 seconds')",
        &[],
    )
    .expect("schedule_jobs");
    // calling again updates the jobs instead of adding more
    c.execute(
        "SELECT storage.schedule_jobs('1 seconds', '*/15 * * * *', '1 seconds', \
                                      maintenance_plan_schedule => '2 seconds')",
        &[],
    )
    .expect("schedule_jobs again");
    let jobs: Vec<(String, String)> = c
        .query(
            "SELECT jobname, schedule FROM cron.job WHERE jobname LIKE 'pg_storage_ext.%' ORDER BY jobname",
            &[],
        )
        .expect("jobs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        jobs,
        [
            (
                "pg_storage_ext.heartbeat".to_string(),
                "5 seconds".to_string()
            ),
            (
                "pg_storage_ext.maintenance".to_string(),
                "*/15 * * * *".to_string()
            ),
            (
                "pg_storage_ext.maintenance_plan".to_string(),
                "2 seconds".to_string()
            ),
            (
                "pg_storage_ext.metrics".to_string(),
                "1 seconds".to_string()
            ),
            (
                "pg_storage_ext.refresh_due".to_string(),
                "1 seconds".to_string()
            ),
        ]
    );
    // the metrics job snapshots from pg_cron
    let sampled = wait_for(Duration::from_secs(30), || {
        let n: i64 = c
            .query_one("SELECT count(DISTINCT ts) FROM storage.metrics", &[])
            .ok()?
            .get(0);
        (n >= 2).then_some(n)
    });
    assert!(sampled.is_some(), "pg_cron's metrics job took no snapshot");
    // and the heartbeat job beats
    let beat = wait_for(Duration::from_secs(30), || {
        c.query_opt(
            "SELECT 1 FROM storage.heartbeat WHERE primary_time > now() - interval '30 seconds'",
            &[],
        )
        .ok()?
    });
    assert!(beat.is_some(), "pg_cron's heartbeat job wrote no heartbeat");

    let refreshed = wait_for(Duration::from_secs(30), || {
        let row = c
            .query_opt(
                "SELECT 1 FROM storage.matview_refresh_log WHERE view = 'totals'::regclass AND outcome = 'refreshed'",
                &[],
            )
            .ok()?;
        row.map(|_| ())
    });
    // the maintenance-plan job: pg_cron runs the plan, its worker vacuums a table left with dead
    // tuples (autovacuum off for it)
    c.batch_execute(
        "CREATE TABLE cron_churn (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
         INSERT INTO cron_churn SELECT generate_series(1, 20000);
         ANALYZE cron_churn;
         DELETE FROM cron_churn WHERE id > 1000;",
    )
    .expect("a table to vacuum");
    let vacuumed = wait_for(Duration::from_secs(60), || {
        c.query_opt(
            "SELECT 1 FROM storage.maintenance_log WHERE object_name = 'public.cron_churn' AND outcome = 'done' \
                AND dead_tuples_after < dead_tuples_before",
            &[],
        )
        .ok()?
    });
    c.batch_execute(
        "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pg_storage_ext.%';
         DROP EXTENSION pg_storage_ext CASCADE;
         DROP TABLE src CASCADE;
         DROP TABLE cron_churn;",
    )
    .expect("cleanup");
    assert!(
        vacuumed.is_some(),
        "the pg_cron maintenance-plan job never vacuumed the table"
    );
    assert!(
        refreshed.is_some(),
        "the pg_cron job never refreshed the view"
    );
}
