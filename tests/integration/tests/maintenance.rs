//! storage.run_maintenance_plan() with real effects: VACUUM and REINDEX CONCURRENTLY run by the
//! background executor as top-level statements, lock waits bounded, the owner's rights.

use pg_storage_integration::{connect, fresh_db, wait_for};
use postgres::Client;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The final log row of `object` (a name), once it is neither queued nor running.
fn outcome_of(db: &mut Client, object: &str) -> Option<(String, i32)> {
    wait_for(Duration::from_secs(60), || {
        let row = db
            .query_opt(
                "SELECT outcome, attempts FROM storage.maintenance_log \
                  WHERE object_name = $1 AND outcome NOT IN ('queued', 'running') \
                  ORDER BY id DESC LIMIT 1",
                &[&object],
            )
            .ok()??;
        Some((row.get(0), row.get(1)))
    })
}

/// The rows of run_maintenance_plan(dry_run) for objects named like `pattern`.
fn run(db: &mut Client, dry_run: bool, pattern: &str) -> Vec<(String, String, String)> {
    db.query(
        "SELECT object::text, action, outcome FROM storage.run_maintenance_plan($1) \
          WHERE object::text LIKE $2 ORDER BY 1",
        &[&dry_run, &pattern],
    )
    .expect("run_maintenance_plan")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// The one value of a one-row query.
fn scalar<T: for<'a> postgres::types::FromSql<'a>>(db: &mut Client, sql: &str) -> T {
    db.query_one(sql, &[]).expect(sql).get(0)
}

/// Waits for the command on `object` to finish and asserts it was done at the first attempt.
fn assert_done(db: &mut Client, object: &str) {
    assert_eq!(
        outcome_of(db, object),
        Some(("done".to_owned(), 1)),
        "{object}"
    );
}

fn dead_tuples(db: &mut Client, table: &str) -> i64 {
    db.query_one(
        "SELECT pg_stat_clear_snapshot(), n_dead_tup FROM pg_stat_user_tables WHERE relname = $1",
        &[&table],
    )
    .expect("n_dead_tup")
    .get(1)
}

#[test]
fn vacuum_after_a_mass_delete_and_dry_run_changes_nothing() {
    let mut db = fresh_db("itest_maint_vacuum");
    db.batch_execute(
        "CREATE TABLE churn (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO churn SELECT g, repeat('x', 40) FROM generate_series(1, 100000) g;
         ANALYZE churn;
         DELETE FROM churn WHERE id % 10 <> 0;
         SELECT pg_stat_force_next_flush();",
    )
    .expect("a table with 90 % of its rows deleted");
    db.batch_execute("SELECT 1").expect("flush statistics");
    let before = dead_tuples(&mut db, "churn");
    assert_eq!(before, 90_000);

    // dry run: the plan, and nothing done
    let dry = run(&mut db, true, "churn");
    assert_eq!(
        dry,
        vec![(
            "churn".to_owned(),
            "VACUUM".to_owned(),
            "dry run: VACUUM (ANALYZE) public.churn".to_owned()
        )]
    );
    std::thread::sleep(Duration::from_millis(500));
    let logged: i64 = scalar(&mut db, "SELECT count(*) FROM storage.maintenance_log");
    assert_eq!(logged, 0, "a dry run writes no log row");
    assert_eq!(
        dead_tuples(&mut db, "churn"),
        before,
        "a dry run vacuums nothing"
    );

    let queued = run(&mut db, false, "churn");
    assert_eq!(queued[0].2, "queued");
    assert_done(&mut db, "public.churn");
    let row = db
        .query_one(
            "SELECT dead_tuples_before, dead_tuples_after, started IS NOT NULL AND finished >= started \
               FROM storage.maintenance_log WHERE object_name = 'public.churn'",
            &[],
        )
        .unwrap();
    let (b, a, timed): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(b, 90_000, "dead tuples before");
    assert!(a < 1_000, "dead tuples after VACUUM: {a}");
    assert!(timed);
    assert!(dead_tuples(&mut db, "churn") < 1_000);
    // vacuumed: the plan has nothing left for the table
    assert!(run(&mut db, true, "churn").is_empty());
}

#[test]
fn bloated_index_is_rebuilt_concurrently_under_writers() {
    let mut db = fresh_db("itest_maint_reindex");
    db.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS amcheck;
         CREATE TABLE hot (id bigserial, k int NOT NULL, pad text) WITH (autovacuum_enabled = false);
         CREATE INDEX hot_k ON hot (k);
         INSERT INTO hot (k, pad) SELECT g, 'p' FROM generate_series(1, 200000) g;
         DELETE FROM hot WHERE id % 20 <> 0;",
    )
    .expect("an index 95 % empty");
    db.batch_execute("VACUUM (ANALYZE) hot").expect("vacuum");
    // the writers below leave dead tuples: this test is about the index only
    db.batch_execute(
        "SET pg_storage_ext.maintenance_vacuum_threshold = 1e9;
         SET pg_storage_ext.maintenance_analyze_threshold = 1e9;",
    )
    .unwrap();
    let planned: Vec<String> = run(&mut db, true, "hot%")
        .into_iter()
        .map(|(o, a, _)| format!("{o} {a}"))
        .collect();
    assert_eq!(planned, vec!["hot_k REINDEX"]);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicI64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = connect("itest_maint_reindex");
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    c.execute(
                        "INSERT INTO hot (k, pad) VALUES ($1, 'w')",
                        &[&(1_000_000 + w * 1_000_000 + i)],
                    )
                    .map_err(|e| format!("writer {w}: {e}"))?;
                    c.execute(
                        "UPDATE hot SET k = k + 1 WHERE id = (SELECT max(id) FROM hot)",
                        &[],
                    )
                    .map_err(|e| format!("writer {w}: {e}"))?;
                    written.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let queued = run(&mut db, false, "hot%");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].2, "queued");
    let outcome = outcome_of(&mut db, "public.hot_k");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join()
            .expect("writer thread")
            .expect("no writer saw an error");
    }
    assert_eq!(outcome, Some(("done".to_owned(), 1)));
    let n = written.load(Ordering::SeqCst);
    assert!(n > 0, "the writers wrote during the rebuild");

    let row = db
        .query_one(
            "SELECT l.bytes_before, l.bytes_after, l.leaf_density_before, l.leaf_density_after, \
                    i.indisvalid, l.object = 'hot_k'::regclass \
               FROM storage.maintenance_log l JOIN pg_index i ON i.indexrelid = 'hot_k'::regclass \
              WHERE l.object_name = 'public.hot_k'",
            &[],
        )
        .unwrap();
    let (b, a): (i64, i64) = (row.get(0), row.get(1));
    let (db_, da): (f64, f64) = (row.get(2), row.get(3));
    assert!(
        a * 4 < b,
        "the rebuilt index is much smaller: {b} -> {a} bytes"
    );
    assert!(da > db_, "leaf density rose: {db_} -> {da}");
    assert!(row.get::<_, bool>(4), "the rebuilt index is valid");
    assert!(row.get::<_, bool>(5), "the log points at the rebuilt index");
    // no lost row, and the index agrees with the heap
    let rows: i64 = scalar(&mut db, "SELECT count(*) FROM hot");
    assert_eq!(rows, 10_000 + n);
    db.batch_execute("SELECT bt_index_parent_check('hot_k', true)")
        .expect("amcheck: every heap tuple is in the rebuilt index");
}

#[test]
fn a_locked_table_is_skipped_then_done_on_the_next_run() {
    let mut db = fresh_db("itest_maint_locked");
    db.batch_execute(
        "CREATE TABLE held (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO held SELECT g, 'x' FROM generate_series(1, 20000) g;
         ANALYZE held;
         DELETE FROM held WHERE id % 2 = 0;
         SELECT pg_stat_force_next_flush();
         SET pg_storage_ext.maintenance_lock_timeout = 200;
         SET pg_storage_ext.maintenance_retries = 1;",
    )
    .expect("a table to vacuum");
    let mut holder = connect("itest_maint_locked");
    holder
        .batch_execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        .expect("hold the table");
    // a writer queued behind the lock
    let writer = std::thread::spawn(|| {
        let mut c = connect("itest_maint_locked");
        c.execute("INSERT INTO held VALUES (100001, 'queued')", &[])
            .map(|_| Instant::now())
            .map_err(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(200));
    let queued = run(&mut db, false, "held");
    assert_eq!(
        queued,
        vec![("held".into(), "VACUUM".into(), "queued".into())]
    );
    let outcome = outcome_of(&mut db, "public.held");
    assert_eq!(
        outcome,
        Some(("skipped: locked".to_owned(), 2)),
        "one try and one retry, each waiting 200 ms"
    );
    assert!(
        !writer.is_finished(),
        "the writer still waits for the holder"
    );
    let released = Instant::now();
    holder.batch_execute("COMMIT").expect("release");
    let wrote = writer.join().unwrap().expect("the queued writer's insert");
    assert!(
        wrote.duration_since(released) < Duration::from_secs(2),
        "the writer went on as soon as the holder committed"
    );
    // the next run does it
    let again = run(&mut db, false, "held");
    assert_eq!(
        again,
        vec![("held".into(), "VACUUM".into(), "queued".into())]
    );
    let mut done = None;
    for _ in 0..100 {
        let rows = db
            .query(
                "SELECT outcome FROM storage.maintenance_log WHERE object_name = 'public.held' ORDER BY id",
                &[],
            )
            .unwrap();
        let all: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if all.len() == 2 && all[1] != "queued" && all[1] != "running" {
            done = Some(all);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        done,
        Some(vec!["skipped: locked".to_owned(), "done".to_owned()])
    );
}

#[test]
fn an_invalid_index_from_a_failed_concurrent_build_is_rebuilt() {
    let mut db = fresh_db("itest_maint_invalid");
    db.batch_execute(
        "CREATE TABLE dup (id int, v int);
         INSERT INTO dup VALUES (1, 1), (1, 2), (2, 3);
         ANALYZE dup;",
    )
    .unwrap();
    let failed = db.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY dup_id ON dup (id)");
    assert_eq!(
        failed.unwrap_err().code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    let valid: bool = scalar(
        &mut db,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_id'::regclass",
    );
    assert!(!valid, "the failed build left an invalid index");
    db.batch_execute("DELETE FROM dup WHERE v = 2").unwrap();
    let plan = run(&mut db, false, "dup%");
    assert_eq!(
        plan,
        vec![("dup_id".into(), "REINDEX".into(), "queued".into())]
    );
    assert_done(&mut db, "public.dup_id");
    let valid: bool = scalar(
        &mut db,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_id'::regclass",
    );
    assert!(valid, "rebuilt valid");
    let dup = db.execute("INSERT INTO dup VALUES (1, 9)", &[]);
    assert_eq!(
        dup.unwrap_err().code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        "the rebuilt index enforces uniqueness"
    );
}

#[test]
fn a_non_superuser_owners_table_is_maintained_with_the_owners_rights() {
    let mut db = fresh_db("itest_maint_owner");
    db.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'maint_owner') THEN
                 CREATE ROLE maint_owner NOLOGIN; END IF; END $$;
         GRANT CREATE ON SCHEMA public TO maint_owner;
         -- an index expression that refuses to run with more rights than the owner's
         CREATE FUNCTION public.owner_only(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
         BEGIN
             IF current_user <> 'maint_owner' OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
                 RAISE EXCEPTION 'owner_only ran as %', current_user;
             END IF;
             RETURN x;
         END $f$;
         SET ROLE maint_owner;
         CREATE TABLE owned (id int PRIMARY KEY, k int) WITH (autovacuum_enabled = false);
         CREATE INDEX owned_expr ON owned (public.owner_only(k));
         INSERT INTO owned SELECT g, g FROM generate_series(1, 20000) g;
         CREATE TABLE fresh (id int, k int) WITH (autovacuum_enabled = false);
         CREATE INDEX fresh_expr ON fresh (public.owner_only(k));
         INSERT INTO fresh SELECT g, g FROM generate_series(1, 500) g;
         ANALYZE owned;
         DELETE FROM owned WHERE id % 2 = 0;
         RESET ROLE;
         SELECT pg_stat_force_next_flush();",
    )
    .expect("tables of a non-superuser owner with a guarded index expression");
    // the guard does refuse a superuser
    let refused = db.batch_execute("SELECT public.owner_only(1)");
    let refused = refused.unwrap_err();
    assert_eq!(
        refused.as_db_error().map(|e| e.message()),
        Some("owner_only ran as postgres")
    );
    // VACUUM (ANALYZE) by the executor (the expression is evaluated for the statistics) and
    // ANALYZE in the caller's transaction
    let plan: Vec<_> = run(&mut db, false, "%")
        .into_iter()
        .filter(|(o, _, _)| o == "owned" || o == "fresh")
        .collect();
    assert_eq!(
        plan,
        vec![
            ("fresh".into(), "ANALYZE".into(), "done".into()),
            ("owned".into(), "VACUUM".into(), "queued".into())
        ]
    );
    assert_done(&mut db, "public.owned");
    let stats: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM pg_stats WHERE tablename IN ('owned_expr', 'fresh_expr')",
    );
    assert_eq!(
        stats, 2,
        "the index expressions were evaluated (as the owner)"
    );
}

/// Self-healing (issue 36, F6): a REINDEX TABLE CONCURRENTLY terminated while it builds leaves an
/// invalid copy of every index; one run of the plan drops them all (not one per run), so the next
/// scheduled run at the latest finds every index valid and nothing left over.
#[test]
fn an_interrupted_reindex_is_cleaned_up_in_one_run() {
    let mut db = fresh_db("itest_maint_leftovers");
    db.batch_execute(
        "CREATE TABLE big (id bigint, v text);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1500000) g;
         CREATE INDEX big_v ON big (v); CREATE INDEX big_id ON big (id);",
    )
    .unwrap();
    db.batch_execute("VACUUM ANALYZE big").unwrap();
    let reindex = std::thread::spawn(|| {
        let mut c = connect("itest_maint_leftovers");
        c.batch_execute("REINDEX TABLE CONCURRENTLY big").err()
    });
    let killed = wait_for(Duration::from_secs(30), || {
        let n: i64 = db
            .query_one(
                "SELECT count(pg_terminate_backend(p.pid)) FROM pg_stat_progress_create_index p \
                  WHERE p.phase LIKE 'building index%' AND p.command = 'REINDEX CONCURRENTLY'",
                &[],
            )
            .ok()?
            .get(0);
        (n > 0).then_some(())
    });
    assert!(killed.is_some(), "the REINDEX was seen building");
    assert!(reindex.join().unwrap().is_some(), "the REINDEX was cut");
    let leftovers = |db: &mut Client| -> i64 {
        scalar(
            db,
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
              WHERE i.indrelid = 'big'::regclass AND (NOT i.indisvalid OR c.relname ~ '_cc(new|old)')",
        )
    };
    assert!(leftovers(&mut db) >= 2, "an invalid copy of each index");
    run(&mut db, false, "%");
    let clean = wait_for(Duration::from_secs(60), || {
        (leftovers(&mut db) == 0).then_some(())
    });
    assert!(clean.is_some(), "one run dropped every leftover");
    let valid: i64 = scalar(
        &mut db,
        "SELECT count(*) FROM pg_index WHERE indrelid = 'big'::regclass AND indisvalid",
    );
    assert_eq!(valid, 2);
}
