//! Every lock wait of the scheduled jobs is bounded (issue 36, F5): with an
//! idle-in-transaction session holding ACCESS EXCLUSIVE on a partitioned, audited table that a
//! registered matview reads, the jobs return within their bound, skip that table with a
//! WARNING, and do the rest of their work (another parent, another matview).

use pg_storage_integration::{connect, fresh_db};
use std::time::{Duration, Instant};

#[test]
fn jobs_skip_a_locked_table_and_do_the_rest() {
    const DB: &str = "itest_lock_bounds";
    let mut db = fresh_db(DB);
    db.batch_execute(
        "CREATE TABLE articles (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
         SELECT storage.create_partitions('articles', '1 day', premake => 2);
         SELECT audit.enable('articles');
         INSERT INTO articles SELECT g, now() FROM generate_series(1, 100) g;
         CREATE MATERIALIZED VIEW article_count AS SELECT count(*) AS n FROM articles;
         SELECT storage.register_matview('article_count', '1 second');
         CREATE TABLE other (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
         SELECT storage.create_partitions('other', '1 day', premake => 2);
         CREATE TABLE plain (n int); INSERT INTO plain VALUES (1);
         CREATE MATERIALIZED VIEW plain_count AS SELECT count(*) AS n FROM plain;
         SELECT storage.register_matview('plain_count', '1 second');
         SET pg_storage_ext.partition_lock_timeout = 200;
         ALTER DATABASE itest_lock_bounds SET pg_storage_ext.partition_lock_timeout = 200;
         ALTER DATABASE itest_lock_bounds SET pg_storage_ext.maintenance_lock_timeout = 200;
         ALTER DATABASE itest_lock_bounds SET pg_storage_ext.maintenance_retries = 1;",
    )
    .unwrap();
    // work for maintenance on the other parent: more premade partitions wanted
    db.batch_execute(
        "UPDATE storage.partition_config SET premake = 5 WHERE parent = 'other'::regclass",
    )
    .unwrap();
    let mut holder = connect(DB);
    holder
        .batch_execute("BEGIN; LOCK TABLE articles IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let mut job = connect(DB);
    // the maintenance job
    let t = Instant::now();
    job.batch_execute("CALL storage.run_maintenance_proc()")
        .expect("maintenance returns");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "maintenance waited {took:?}"
    );
    let made: i64 = job
        .query_one(
            "SELECT count(*) FROM pg_partition_tree('other') WHERE isleaf",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        made >= 6,
        "the other parent was maintained: {made} partitions"
    );
    // one parent by name: a WARNING, not an error
    let t = Instant::now();
    job.batch_execute("SELECT * FROM storage.run_maintenance('articles')")
        .expect("skipped with a warning");
    assert!(t.elapsed() < Duration::from_secs(15));
    // the refresh job: the blocked view fails this run, the other is refreshed
    job.batch_execute("INSERT INTO plain VALUES (2)").unwrap();
    let t = Instant::now();
    let outcomes: Vec<(String, String)> = job
        .query(
            "SELECT view::text, outcome FROM storage.refresh_due() ORDER BY 1",
            &[],
        )
        .expect("refresh_due returns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes[0].1.contains("lock timeout"), "{outcomes:?}");
    assert_eq!(outcomes[1], ("plain_count".into(), "refreshed".into()));
    // the metrics, maintenance plan and heartbeat jobs
    for job_sql in [
        "SELECT storage.metrics_snapshot()",
        "SELECT count(*) FROM storage.run_maintenance_plan()",
        "SELECT storage._heartbeat()",
    ] {
        let t = Instant::now();
        job.batch_execute(job_sql).expect(job_sql);
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{job_sql} waited {:?}",
            t.elapsed()
        );
    }
    let sampled: i64 = job
        .query_one(
            "SELECT count(*) FROM storage.metrics WHERE metric = 'pg_settings_max_connections'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(sampled >= 1, "the snapshot took the rest of its samples");
    holder.batch_execute("ROLLBACK").unwrap();
    // once the lock is gone, the next runs catch up (after the view's 1 s interval)
    std::thread::sleep(Duration::from_millis(1100));
    let outcome: String = job
        .query_one(
            "SELECT outcome FROM storage.refresh_due() WHERE view = 'article_count'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(outcome, "refreshed");
}
