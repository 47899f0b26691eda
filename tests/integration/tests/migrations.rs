//! storage.migrate with real sessions: two migrators at once, a migration blocked by a long
//! reader (and the readers queued behind it), a non-transactional index build killed halfway.

use pg_storage_integration::{connect, fresh_db, wait_for};
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn scalar<T: for<'a> postgres::types::FromSql<'a>>(db: &mut Client, sql: &str) -> T {
    db.query_one(sql, &[]).expect(sql).get(0)
}

#[test]
fn two_migrators_at_once_apply_it_once() {
    let mut db = fresh_db("itest_mig_race");
    db.batch_execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0);")
        .unwrap();
    let up = "UPDATE counter SET n = n + 1; SELECT pg_sleep(1);";
    let migrators: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect("itest_mig_race");
                c.query_one("SELECT storage.migrate('1', 'bump', $1)", &[&up])
                    .map(|r| r.get::<_, String>(0))
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut outcomes: Vec<String> = migrators
        .into_iter()
        .map(|m| m.join().unwrap().expect("both migrators return"))
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, vec!["already applied", "applied"]);
    let n: i32 = scalar(&mut db, "SELECT n FROM counter");
    assert_eq!(n, 1, "the script ran once");
    let rows: i64 = scalar(&mut db, "SELECT count(*) FROM storage._migration_history");
    assert_eq!(rows, 1);
}

#[test]
fn a_blocked_migration_gives_up_without_holding_readers_back() {
    let mut db = fresh_db("itest_mig_blocked");
    db.batch_execute(
        "CREATE TABLE hot (id int PRIMARY KEY, v text);
         INSERT INTO hot SELECT g, 'v' FROM generate_series(1, 1000) g;",
    )
    .unwrap();
    // a long reader holds ACCESS SHARE for the whole test
    let mut reader = connect("itest_mig_blocked");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM hot;")
        .unwrap();
    // 20 readers keep querying; each query's latency is kept
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (stop, worst) = (Arc::clone(&stop), Arc::clone(&worst));
            std::thread::spawn(move || {
                let mut c = connect("itest_mig_blocked");
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    c.query_one("SELECT count(*) FROM hot WHERE id < 10", &[])
                        .expect("reader");
                    let took = t.elapsed();
                    let mut w = worst.lock().unwrap();
                    if took > *w {
                        *w = took;
                    }
                    drop(w);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let failed = db.batch_execute(
        "SET pg_storage_ext.migration_lock_timeout = '200ms';
         SET pg_storage_ext.migration_retries = 3;
         SELECT storage.migrate('1', 'add column', 'ALTER TABLE hot ADD COLUMN w int');",
    );
    let gave_up_after = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().unwrap();
    }
    let err = failed.expect_err("the migration cannot get its lock");
    let db_err = err.as_db_error().expect("a database error");
    assert_eq!(
        db_err.code(),
        &postgres::error::SqlState::LOCK_NOT_AVAILABLE
    );
    assert!(db_err.message().contains("gave up"), "{}", db_err.message());
    assert!(db_err
        .hint()
        .is_some_and(|h| h.contains("long transaction")));
    // four attempts of 200 ms with pauses between them, not the reader's whole transaction
    assert!(
        gave_up_after < Duration::from_secs(5),
        "gave up after {gave_up_after:?}"
    );
    let worst = *worst.lock().unwrap();
    assert!(
        worst < Duration::from_millis(200 + 400),
        "the readers waited at most about the lock_timeout: worst {worst:?}"
    );
    // the attempt is recorded, and nothing of it applied
    let status: String = scalar(
        &mut db,
        "SELECT status FROM storage.migrations WHERE version = '1'",
    );
    assert_eq!(status, "failed");
    let cols: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'hot' AND column_name = 'w'",
    );
    assert_eq!(cols, 0);
    reader.batch_execute("COMMIT").unwrap();
    // once the reader is gone, the same migration applies
    let applied: String = scalar(
        &mut db,
        "SELECT storage.migrate('1', 'add column', 'ALTER TABLE hot ADD COLUMN w int')",
    );
    assert_eq!(applied, "applied");
}

#[test]
fn a_killed_concurrent_index_build_is_resumed_to_a_valid_index() {
    let mut db = fresh_db("itest_mig_resume");
    db.batch_execute(
        "CREATE TABLE big (id bigint, v text);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 3000000) g;",
    )
    .unwrap();
    let up =
        "CREATE INDEX CONCURRENTLY big_v ON big (v); CREATE INDEX CONCURRENTLY big_id ON big (id);";
    let migrate = |db: &mut Client| -> String {
        db.query_one(
            "SELECT storage.migrate('1', 'indexes', $1, transactional => false)",
            &[&up],
        )
        .unwrap()
        .get(0)
    };
    let first = migrate(&mut db);
    assert_eq!(first, "pending");
    // kill the worker while it builds the first index
    let mut admin = connect("itest_mig_resume");
    let killed = wait_for(Duration::from_secs(30), || {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration' \
                    AND query LIKE 'CREATE INDEX CONCURRENTLY big_v%'",
                &[],
            )
            .ok()??;
        let pid: i32 = row.get(0);
        std::thread::sleep(Duration::from_millis(300));
        admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .ok()
            .map(|r| r.get::<_, bool>(0))
    });
    assert_eq!(killed, Some(true), "the worker was seen building the index");
    let gone = wait_for(Duration::from_secs(10), || {
        let n: i64 = scalar(
            &mut db,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration'",
        );
        (n == 0).then_some(())
    });
    assert!(gone.is_some());
    let (status, done): (String, i32) = {
        let r = db
            .query_one(
                "SELECT status, done_statements FROM storage.migrations WHERE version = '1'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), done), ("pending", 0));
    let invalid: bool = scalar(
        &mut db,
        "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'big_v'::regclass",
    );
    assert!(invalid, "the killed build left an invalid index");

    // called again: resumed where it stopped (the invalid index dropped and rebuilt)
    let again = migrate(&mut db);
    assert_eq!(again, "pending");
    let applied = wait_for(Duration::from_secs(120), || {
        let s: String = scalar(
            &mut db,
            "SELECT status FROM storage.migrations WHERE version = '1'",
        );
        (s != "pending").then_some(s)
    });
    assert_eq!(applied.as_deref(), Some("applied"));
    let valid: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM pg_index WHERE indrelid = 'big'::regclass AND indisvalid",
    );
    assert_eq!(valid, 2, "both indexes built and valid");
    let all: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM pg_index WHERE indrelid = 'big'::regclass",
    );
    assert_eq!(all, 2, "no leftover");
    let again = migrate(&mut db);
    assert_eq!(again, "already applied");
}

/// A non-transactional CREATE INDEX CONCURRENTLY that times out waiting for an older snapshot (a
/// long REPEATABLE READ reader) leaves its index invalid; the retry drops it and builds the index
/// again once the reader is gone, instead of failing on "relation already exists".
#[test]
fn a_concurrent_build_that_timed_out_is_retried_after_dropping_its_invalid_index() {
    let mut db = fresh_db("itest_mig_cic_retry");
    db.batch_execute(
        "CREATE TABLE docs (id bigint PRIMARY KEY, v text);
         INSERT INTO docs SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
         ALTER DATABASE itest_mig_cic_retry SET pg_storage_ext.migration_lock_timeout = 300;
         ALTER DATABASE itest_mig_cic_retry SET pg_storage_ext.migration_retries = 20;",
    )
    .unwrap();
    // a reader whose snapshot the build must wait out, for about 3 s
    let reader = std::thread::spawn(|| {
        let mut r = connect("itest_mig_cic_retry");
        r.batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM docs; SELECT pg_sleep(3); COMMIT;",
        )
        .unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut db = connect("itest_mig_cic_retry");
    let first: String = db
        .query_one(
            "SELECT storage.migrate('1', 'index', 'CREATE INDEX CONCURRENTLY docs_v ON docs (v)', transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(first, "pending");
    let outcome = wait_for(Duration::from_secs(60), || {
        let r = db
            .query_one(
                "SELECT status, coalesce(error, '') FROM storage.migrations WHERE version = '1'",
                &[],
            )
            .ok()?;
        let status: String = r.get(0);
        (status != "pending").then(|| (status, r.get::<_, String>(1)))
    });
    reader.join().unwrap();
    assert_eq!(
        outcome,
        Some(("applied".to_string(), String::new())),
        "retried until the reader was gone"
    );
    let indexes: Vec<(String, bool)> = db
        .query(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index WHERE indrelid = 'docs'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        indexes,
        vec![
            ("docs_pkey".to_string(), true),
            ("docs_v".to_string(), true)
        ]
    );
}

/// The blog ships its schema as migrations: each file one `SELECT storage.migrate(…)`, applied
/// in order (as `psql -v ON_ERROR_STOP=1 -f` would), then again (nothing to do), then the seed.
#[test]
fn the_blog_schema_applies_as_migrations() {
    let mut db = fresh_db("itest_mig_blog");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/blog");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("migrations"))
        .expect("examples/blog/migrations")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for round in ["applied", "already applied"] {
        for f in &files {
            let sql = std::fs::read_to_string(f).unwrap();
            let out: String = db
                .query_one(sql.trim().trim_end_matches(';'), &[])
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .get(0);
            assert_eq!(out, round, "{}", f.display());
        }
    }
    let seed = std::fs::read_to_string(dir.join("seed.sql")).unwrap();
    db.batch_execute(&seed)
        .expect("the seed loads into the migrated schema");
    let applied: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM storage.migrations WHERE status = 'applied'",
    );
    assert_eq!(applied, files.len() as i64);
    let users: i64 = scalar(&mut db, "SELECT count(*) FROM users");
    assert!(users > 0);
}

/// A migration applied with transactional => false is reverted the way it ran (issue 36, F8):
/// its `DROP INDEX CONCURRENTLY` down runs in the background executor, and a down that cannot
/// run is left with a way out (force => true, recorded), so older migrations can be reverted.
#[test]
fn a_non_transactional_down_runs_in_the_executor_and_a_failed_one_has_a_way_out() {
    let mut db = fresh_db("itest_mig_down");
    db.batch_execute("CREATE TABLE t (id int, v int)").unwrap();
    let status = |db: &mut Client, v: &str| -> (String, String, Option<String>) {
        let r = db
            .query_one(
                "SELECT status, direction, error FROM storage.migrations WHERE version = $1",
                &[&v],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let settle = |db: &mut Client, v: &str| {
        wait_for(Duration::from_secs(60), || {
            let s = status(db, v);
            (s.0 != "pending").then_some(s)
        })
        .expect("the executor finished")
    };
    for (v, up, down) in [
        (
            "1",
            "CREATE INDEX CONCURRENTLY t_id ON t (id)",
            "DROP INDEX CONCURRENTLY t_id",
        ),
        (
            "2",
            "CREATE INDEX CONCURRENTLY t_v ON t (v)",
            "DROP INDEX CONCURRENTLY t_v_missing",
        ),
    ] {
        let r: String = db
            .query_one(
                "SELECT storage.migrate($1, 'index', $2, down => $3, transactional => false)",
                &[&v, &up, &down],
            )
            .unwrap()
            .get(0);
        assert_eq!(r, "pending");
        assert_eq!(settle(&mut db, v).0, "applied");
    }
    // the down of 2 fails in the executor: recorded, and 1 cannot be reverted before 2
    let r: String = db
        .query_one("SELECT storage.migrate_down('2')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r, "pending");
    let (s, d, e) = settle(&mut db, "2");
    assert_eq!((s.as_str(), d.as_str()), ("failed", "down"));
    assert!(e.unwrap_or_default().contains("t_v_missing"));
    let blocked = db.query_one("SELECT storage.migrate_down('1')", &[]);
    assert!(blocked.is_err(), "1 is not the latest applied one yet");
    // the way out: the index dropped by hand, the version marked reverted, recorded
    db.batch_execute("DROP INDEX t_v").unwrap();
    let r: String = db
        .query_one("SELECT storage.migrate_down('2', force => true)", &[])
        .unwrap()
        .get(0);
    assert_eq!(r, "reverted (forced: nothing was run)");
    let (s, _, e) = status(&mut db, "2");
    assert_eq!(s, "reverted");
    assert!(e.unwrap_or_default().contains("force => true"));
    // 1's down runs in the executor, as its up did
    let r: String = db
        .query_one("SELECT storage.migrate_down('1')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r, "pending");
    assert_eq!(settle(&mut db, "1").0, "reverted");
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "both indexes gone");
    // and applied again afterwards
    let r: String = db
        .query_one(
            "SELECT storage.migrate('1', 'index', 'CREATE INDEX CONCURRENTLY t_id ON t (id)', \
                                    down => 'DROP INDEX CONCURRENTLY t_id', transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(r, "pending");
    assert_eq!(settle(&mut db, "1").0, "applied");
}

/// Self-healing (issue 36, F6): a non-transactional migration whose executor was terminated
/// halfway resumes by itself at the next heartbeat (the job every few seconds), unless
/// pg_storage_ext.migration_auto_resume is off; a maintenance command whose worker is gone is
/// marked failed by the same step.
#[test]
fn an_interrupted_migration_resumes_by_itself_at_the_next_heartbeat() {
    let mut db = fresh_db("itest_mig_heal");
    db.batch_execute(
        "CREATE TABLE t (id int);
         INSERT INTO t SELECT g FROM generate_series(1, 10) g;",
    )
    .unwrap();
    let up = "SELECT pg_catalog.pg_sleep(5); CREATE INDEX CONCURRENTLY t_id ON t (id);";
    let r: String = db
        .query_one(
            "SELECT storage.migrate('1', 'slow', $1, transactional => false)",
            &[&up],
        )
        .unwrap()
        .get(0);
    assert_eq!(r, "pending");
    let killed = wait_for(Duration::from_secs(20), || {
        let n: i64 = db
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                  WHERE backend_type = 'pg_storage_ext migration' AND query LIKE 'SELECT pg_catalog.pg_sleep%'",
                &[],
            )
            .ok()?
            .get(0);
        (n == 1).then_some(())
    });
    assert!(killed.is_some(), "the executor was terminated halfway");
    let gone = wait_for(Duration::from_secs(10), || {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration'",
                &[],
            )
            .ok()?
            .get(0);
        (n == 0).then_some(())
    });
    assert!(gone.is_some());
    // switched off: the heartbeat leaves it pending
    db.batch_execute(
        "SET pg_storage_ext.migration_auto_resume = off; SELECT storage._heartbeat();",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status: String = db
        .query_one(
            "SELECT status FROM storage.migrations WHERE version = '1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, "pending");
    // on (the default): the next heartbeat resumes it where it stopped (the sleep again, then
    // the index)
    db.batch_execute(
        "RESET pg_storage_ext.migration_auto_resume;
         INSERT INTO storage.maintenance_log (object, relation, object_name, action, reason, command, outcome, queued, pid)
         VALUES ('t'::regclass, 't'::regclass, 't', 'VACUUM', 'test', 'VACUUM t', 'running', now() - interval '1 minute', 2147483647);
         SELECT storage._heartbeat();",
    )
    .unwrap();
    let outcome: String = db
        .query_one(
            "SELECT outcome FROM storage.maintenance_log WHERE reason = 'test'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        outcome.starts_with("failed: the maintenance worker exited"),
        "{outcome}"
    );
    let applied = wait_for(Duration::from_secs(60), || {
        let s: String = db
            .query_one(
                "SELECT status FROM storage.migrations WHERE version = '1'",
                &[],
            )
            .ok()?
            .get(0);
        (s != "pending").then_some(s)
    });
    assert_eq!(applied.as_deref(), Some("applied"));
    let valid: bool = db
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(valid);
}
