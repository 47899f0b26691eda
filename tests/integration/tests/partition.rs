//! Partitions across sessions: maintenance racing inserts and other maintainers, maintenance under
//! a long-running reader, and convert_to_partitioned while other sessions read.

use pg_storage_integration::{connect, fresh_db};
use postgres::error::SqlState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// SQLSTATE and message of a database error (Display of postgres::Error says only "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

#[test]
fn concurrent_maintenance_and_inserts() {
    const DB: &str = "itest_part_race";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE hits (id bigint NOT NULL, writer int NOT NULL) PARTITION BY RANGE (id);
         SELECT storage.create_partitions('hits', '100', premake => 1);",
    )
    .expect("setup");

    let stop = Arc::new(AtomicBool::new(false));
    let mut maintainers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        maintainers.push(thread::spawn(move || {
            let mut m = connect(DB);
            let mut runs = 0u32;
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // explicit parent: any error (a deadlock included) reaches us instead of a WARNING
                match m.query("SELECT * FROM storage.run_maintenance('hits')", &[]) {
                    Ok(_) => runs += 1,
                    Err(e) => errors.push(describe(&e)),
                }
            }
            (runs, errors)
        }));
    }
    let mut writers = Vec::new();
    for w in 0..4i32 {
        writers.push(thread::spawn(move || {
            let mut c = connect(DB);
            let mut errors = Vec::new();
            // each writer walks upwards through ids, landing in the default until maintenance
            // creates the child, and now and then far ahead
            for i in 0..400i64 {
                let id = i * 20 + i64::from(w) + if i % 50 == 0 { 50_000 } else { 0 };
                if let Err(e) = c.execute("INSERT INTO hits VALUES ($1, $2)", &[&id, &w]) {
                    errors.push(describe(&e));
                }
            }
            errors
        }));
    }
    let writer_errors: Vec<String> = writers
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let mut total_runs = 0;
    for h in maintainers {
        let (runs, errors) = h.join().expect("maintainer thread");
        assert!(
            errors.is_empty(),
            "{} maintenance errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        total_runs += runs;
    }
    assert!(
        writer_errors.is_empty(),
        "{} insert errors, first: {:?}",
        writer_errors.len(),
        writer_errors.first()
    );
    assert!(total_runs > 4, "maintenance ran only {total_runs} times");

    c.query("SELECT * FROM storage.run_maintenance('hits')", &[])
        .expect("final run");
    let rows: i64 = c
        .query_one("SELECT count(*) FROM hits", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 1600, "every committed insert is there");
    let in_default: i64 = c
        .query_one("SELECT count(*) FROM ONLY hits_default", &[])
        .expect("default")
        .get(0);
    assert_eq!(in_default, 0, "the default partition was drained");
    // every period holding rows has exactly its own child, named after its lower bound
    let bad: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT tableoid::regclass::text AS part, id / 100 * 100 AS lower FROM hits) h
              WHERE part <> 'hits_p' || lower",
            &[],
        )
        .expect("placement")
        .get(0);
    assert_eq!(bad, 0, "rows in a child not named after their period");
    let dup: i64 = c
        .query_one(
            "SELECT count(*) - count(DISTINCT lower_bound) FROM storage.partitions('hits') WHERE NOT is_default",
            &[],
        )
        .expect("duplicates")
        .get(0);
    assert_eq!(dup, 0);
}

#[test]
fn long_reader_does_not_stall_maintenance() {
    const DB: &str = "itest_part_reader";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE with_default (id int NOT NULL) PARTITION BY RANGE (id);
         SELECT storage.create_partitions('with_default', '100', premake => 1);
         CREATE TABLE no_default (id int NOT NULL) PARTITION BY RANGE (id);
         SELECT storage.create_partitions('no_default', '100', premake => 1, default_partition => false);
         INSERT INTO no_default VALUES (150);",
    )
    .expect("setup");

    // a reader keeps both parents (and so every partition, the default included) open
    let mut reader = connect(DB);
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM with_default; SELECT count(*) FROM no_default;")
        .expect("reader");

    // a row for the default: draining it needs the default partition's ACCESS EXCLUSIVE lock
    let mut w = connect(DB);
    w.batch_execute("INSERT INTO with_default VALUES (5000)")
        .expect("late row");

    c.batch_execute(
        "SET pg_storage_ext.partition_lock_timeout = '100ms';
         SET pg_storage_ext.partition_lock_retries = 2;",
    )
    .expect("budget");
    let t0 = Instant::now();
    let row = c
        .query_one(
            "SELECT created FROM storage.run_maintenance('with_default')",
            &[],
        )
        .expect("maintenance returns instead of failing");
    let took = t0.elapsed();
    let created: i32 = row.get(0);
    assert_eq!(
        created, 0,
        "nothing can be created while the reader holds the default"
    );
    // 3 attempts of 100 ms plus jittered back-off (at most 0.1 s + 0.2 s)
    assert!(took < Duration::from_secs(2), "maintenance waited {took:?}");

    // without a default partition a new child only needs SHARE UPDATE EXCLUSIVE on the parent,
    // which the reader does not block: premake goes on under the reader
    let created: i32 = c
        .query_one(
            "SELECT created FROM storage.run_maintenance('no_default')",
            &[],
        )
        .expect("maintenance under a reader")
        .get(0);
    assert_eq!(created, 1, "the child above the highest value was made");

    // inserts were never blocked for longer than the budget either
    let t0 = Instant::now();
    w.batch_execute("INSERT INTO with_default VALUES (10)")
        .expect("insert during the reader");
    assert!(t0.elapsed() < Duration::from_secs(2));

    reader.batch_execute("COMMIT").expect("reader done");
    let row = c
        .query_one(
            "SELECT created, moved_from_default FROM storage.run_maintenance('with_default')",
            &[],
        )
        .expect("maintenance after the reader");
    let moved: i64 = row.get(1);
    assert_eq!(moved, 1, "the late row was moved once the reader finished");
}

#[test]
fn convert_article_views_under_reads() {
    const DB: &str = "itest_part_convert";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE article_views (
             id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             article_id bigint NOT NULL,
             user_id    bigint,
             created_at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX ON article_views (article_id);
         INSERT INTO article_views (article_id, user_id, created_at)
         SELECT 1 + g % 500, g % 977, timestamptz '2026-01-01' + g * interval '3 minutes'
           FROM generate_series(1, 100000) AS g;
         CREATE VIEW views_per_article AS SELECT article_id, count(*) AS n FROM article_views GROUP BY 1;",
    )
    .expect("setup");
    let checksum = "SELECT count(*), sum(hashtext(v::text)) FROM article_views v";
    let before = c.query_one(checksum, &[]).expect("before");
    let (n_before, h_before): (i64, i64) =
        (before.get(0), before.get::<_, Option<i64>>(1).unwrap_or(0));

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let stop = stop.clone();
        readers.push(thread::spawn(move || {
            let mut r = connect(DB);
            let mut counts = Vec::new();
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match r.query_one("SELECT count(*) FROM views_per_article v JOIN article_views a USING (article_id) WHERE a.id % 1000 = 0", &[]) {
                    Ok(row) => counts.push(row.get::<_, i64>(0)),
                    Err(e) => errors.push(describe(&e)),
                }
            }
            (counts, errors)
        }));
    }
    thread::sleep(Duration::from_millis(300));
    let moved: i64 = c
        .query_one(
            "SELECT storage.convert_to_partitioned('article_views', 'created_at', '1 month', 5000)",
            &[],
        )
        .expect("convert")
        .get(0);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(moved, 100_000);
    for h in readers {
        let (counts, errors) = h.join().expect("reader");
        assert!(
            errors.is_empty(),
            "{} reads failed, first: {:?}",
            errors.len(),
            errors.first()
        );
        assert!(counts.len() > 2, "the readers hardly ran: {}", counts.len());
        assert!(
            counts.iter().all(|n| *n == 100),
            "a read saw a partial table: {counts:?}"
        );
    }
    let after = c.query_one(checksum, &[]).expect("after");
    assert_eq!(after.get::<_, i64>(0), n_before);
    assert_eq!(after.get::<_, Option<i64>>(1).unwrap_or(0), h_before);
    let kind: String = c
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = 'article_views'::regclass",
            &[],
        )
        .expect("relkind")
        .get(0);
    assert_eq!(kind, "p");
    // writes go on after the swap and land in a child
    let part: String = c
        .query_one(
            "INSERT INTO article_views (article_id, created_at) VALUES (1, '2026-02-03') RETURNING tableoid::regclass::text",
            &[],
        )
        .expect("insert after")
        .get(0);
    assert_eq!(part, "article_views_p20260201");
    let err = c
        .query_one(
            "SELECT storage.convert_to_partitioned('article_views', 'created_at', '1 month')",
            &[],
        )
        .expect_err("already partitioned");
    assert_eq!(err.code(), Some(&SqlState::WRONG_OBJECT_TYPE));
}

/// Runs `maintain` on its own connection while a writer inserts into the first parent without
/// pause; returns (how long maintenance took, the writer's longest single INSERT).
fn writer_wait_during(db: &'static str, maintain: &'static str) -> (Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut c = connect(db);
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                c.execute("INSERT INTO m1 (at) VALUES (now())", &[])
                    .expect("writer insert");
                longest = longest.max(t.elapsed());
            }
            longest
        })
    };
    thread::sleep(Duration::from_millis(200));
    let mut m = connect(db);
    let t = Instant::now();
    m.batch_execute(maintain).expect(maintain);
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    (took, writer.join().expect("writer"))
}

/// 50 parents, each with rows waiting in its default partition: run_maintenance_proc commits after
/// each parent, so a writer on the first one waits for that parent's work only, where
/// run_maintenance() holds the first parent's locks until the fiftieth is done.
#[test]
fn maintenance_proc_commits_after_each_parent() {
    const DB: &str = "itest_partition_proc";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ BEGIN
           FOR i IN 1 .. 50 LOOP
             EXECUTE format('CREATE TABLE m%s (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL,
                                               PRIMARY KEY (id, at)) PARTITION BY RANGE (at)', i);
             PERFORM storage.create_partitions(format('m%s', i), '1 day', 1);
           END LOOP;
         END $$;",
    )
    .expect("50 parents");
    // rows 3 and 4 days ahead wait in each default partition
    let fill = |c: &mut postgres::Client, from: i32| {
        c.batch_execute(&format!(
            "DO $$ BEGIN
               FOR i IN 1 .. 50 LOOP
                 EXECUTE format('INSERT INTO m%s (at) SELECT date_trunc(''day'', now()) + (({from} + g %% 2) || '' days'')::interval
                                   FROM generate_series(1, 500) g', i);
               END LOOP;
             END $$;"
        ))
        .expect("fill the defaults");
    };
    fill(&mut c, 3);
    let (one_tx, one_tx_wait) =
        writer_wait_during(DB, "SELECT count(*) FROM storage.run_maintenance()");
    fill(&mut c, 5);
    let (proc, proc_wait) = writer_wait_during(DB, "CALL storage.run_maintenance_proc()");
    println!(
        "50 parents: run_maintenance() took {one_tx:?}, the writer on the first parent waited up to {one_tx_wait:?}; \
         run_maintenance_proc() took {proc:?}, the writer waited up to {proc_wait:?}"
    );
    let in_defaults: i64 = c
        .query_one("SELECT count(*) FROM m1_default", &[])
        .map(|r| r.get(0))
        .unwrap_or(-1);
    assert_eq!(
        in_defaults, 0,
        "the proc drained the first parent's default"
    );
    assert!(
        proc_wait * 4 < proc,
        "the writer waited {proc_wait:?} of the proc's {proc:?}: locks were held past the first parent"
    );
}

/// partition_data_proc killed halfway leaves whole periods moved and the rest in the default;
/// run again, it empties the default, and every row is still there once.
#[test]
fn partition_data_proc_resumes_after_a_kill() {
    const DB: &str = "itest_partition_data";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE big (id bigint, at date NOT NULL, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE INDEX ON big (at);
         SELECT storage.create_partitions('big', '1 day', 0);
         INSERT INTO big SELECT g, current_date + 30 + (g % 120), repeat('x', 100) FROM generate_series(1, 120000) g;",
    )
    .expect("120 days of rows in the default partition");
    let before: i64 = c.query_one("SELECT count(*) FROM big", &[]).unwrap().get(0);
    let pid: i32 = {
        let mut mover = connect(DB);
        let pid: i32 = mover
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let handle = thread::spawn(move || {
            mover
                .batch_execute("CALL storage.partition_data_proc('big', 1000)")
                .err()
                .map(|e| describe(&e))
        });
        // wait for a few committed periods, then kill the backend mid-batch
        let start = Instant::now();
        loop {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM storage.partitions('big') WHERE NOT is_default",
                    &[],
                )
                .unwrap()
                .get(0);
            if n >= 11 || start.elapsed() > Duration::from_secs(60) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        c.execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        let err = handle.join().expect("mover");
        assert!(err.is_some(), "the procedure was killed, not finished");
        pid
    };
    let moved_children: i64 = c
        .query_one(
            "SELECT count(*) FROM storage.partitions('big') WHERE NOT is_default",
            &[],
        )
        .unwrap()
        .get(0);
    let in_default: i64 = c
        .query_one("SELECT count(*) FROM ONLY big_default", &[])
        .unwrap()
        .get(0);
    println!("partition_data_proc killed (pid {pid}) after {moved_children} of 121 children (today's and 120 periods); {in_default} rows left in the default");
    assert!(moved_children < 121 && in_default > 0, "killed halfway");
    // every child made holds its whole period: 1000 rows each
    let partial: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT tableoid FROM big GROUP BY tableoid HAVING count(*) <> 1000) x",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(partial, 1, "only the default holds a count other than 1000");
    c.batch_execute("CALL storage.partition_data_proc('big', 5000)")
        .expect("resume");
    let (after, distinct, left, children): (i64, i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM ONLY big_default),
                        (SELECT count(*) FROM storage.partitions('big') WHERE NOT is_default) FROM big",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!((after, distinct, left, children), (before, before, 0, 121));
}
