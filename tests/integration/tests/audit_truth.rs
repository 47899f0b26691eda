//! The audit trail tells the truth: capture obeys the extension's configuration (not whoever made
//! the trigger), row images never run user-defined code, a conversion to a partitioned table
//! keeps the trail, and under concurrent writers with maintenance draining a default partition
//! every second the log counts exactly the committed changes and replays to the live rows.

use pg_storage_integration::{connect, connect_as, count, describe, fresh_db, sqlstate};
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn text(c: &mut Client, sql: &str) -> Option<String> {
    c.query_one(sql, &[]).expect(sql).get(0)
}

#[test]
fn capture_obeys_the_configuration() {
    const DB: &str = "itest_audit_config";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, secret text);
         CREATE TABLE plain (id int PRIMARY KEY);
         SELECT audit.enable('t', exclude_columns => '{secret}');
         INSERT INTO t VALUES (1, 'a', 's');",
    )
    .expect("setup");
    // a capture trigger on a table that is not audited refuses, it does not forge INSERT rows
    c.batch_execute(
        "CREATE TRIGGER forged AFTER INSERT ON plain REFERENCING NEW TABLE AS pg_storage_ext_new
           FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false')",
    )
    .expect("a superuser can attach it");
    assert_eq!(sqlstate(&mut c, "INSERT INTO plain VALUES (1)"), "39P01");
    c.batch_execute("DROP TRIGGER forged ON plain").unwrap();
    // arguments that differ from audit.tracked (here: one more column excluded) refuse
    c.batch_execute(
        "CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON t
           REFERENCING OLD TABLE AS pg_storage_ext_old NEW TABLE AS pg_storage_ext_new
           FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'secret', 'v')",
    )
    .expect("replace the trigger");
    let err = c
        .batch_execute("UPDATE t SET v = 'b'")
        .expect_err("a trigger with other options refuses");
    assert_eq!(
        err.code().map(|s| s.code()),
        Some("39P01"),
        "{}",
        describe(&err)
    );
    let d = err.as_db_error().unwrap();
    assert!(d.detail().unwrap().contains("'secret', 'v'"), "{d:?}");
    assert!(
        d.hint().unwrap().contains("audit.enable('public.t'"),
        "{d:?}"
    );
    // the tampering is on record and in audit.coverage; audit.enable repairs
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM audit.log WHERE op = 'DDL' AND new_row->>'command_tag' = 'CREATE TRIGGER'"),
        1
    );
    assert_eq!(
        text(&mut c, "SELECT capture_ok::text FROM audit.coverage").as_deref(),
        Some("false")
    );
    c.batch_execute(
        "SELECT audit.enable('t', exclude_columns => '{secret}'); UPDATE t SET v = 'b';",
    )
    .expect("repaired");
    // the configuration is what counts, and a change to it reaches every session's cache
    let mut other = connect(DB);
    other
        .batch_execute("UPDATE t SET v = 'c'")
        .expect("cached in this session");
    c.batch_execute("UPDATE audit._tracked SET capture_query = true")
        .unwrap();
    assert_eq!(sqlstate(&mut other, "UPDATE t SET v = 'd'"), "39P01");
    c.batch_execute(
        "SELECT audit.enable('t', exclude_columns => '{secret}', capture_query => true)",
    )
    .unwrap();
    other
        .batch_execute("UPDATE t SET v = 'd'")
        .expect("in step again");
    assert_eq!(
        text(
            &mut c,
            "SELECT query FROM audit.log WHERE op = 'UPDATE' ORDER BY id DESC LIMIT 1"
        )
        .as_deref(),
        Some("UPDATE t SET v = 'd'")
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE new_row ? 'secret' OR old_row ? 'secret'"
        ),
        0
    );
    // a partition detached from an audited table loses its capture triggers: its writes work
    // and are not logged; one attached again is captured again
    c.batch_execute(
        "CREATE TABLE ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
         SELECT audit.enable('ev');
         ALTER TABLE ev DETACH PARTITION ev_1;",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ev_1'::regclass"
        ),
        0
    );
    c.batch_execute("INSERT INTO ev_1 VALUES (1, '2026-01-05')")
        .expect("a detached partition is a plain table again");
    c.batch_execute(
        "ALTER TABLE ev ATTACH PARTITION ev_1 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
         INSERT INTO ev_1 VALUES (2, '2026-01-06');",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE table_name = 'ev' AND op = 'INSERT'"
        ),
        1
    );
    // audit.set_retention is recorded too
    c.batch_execute("SELECT audit.set_retention('24 months')")
        .unwrap();
    assert_eq!(
        text(
            &mut c,
            "SELECT new_row->>'retention' FROM audit.log WHERE op = 'DDL' \
              AND new_row->>'command_tag' = 'audit.set_retention'"
        )
        .as_deref(),
        Some("2 years")
    );
}

#[test]
fn images_never_run_user_code() {
    const DB: &str = "itest_audit_images";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_alice') THEN CREATE ROLE itest_alice LOGIN; END IF;
         END $$;
         GRANT CREATE ON SCHEMA public TO itest_alice;",
    )
    .expect("role");
    let mut alice = connect_as(DB, "itest_alice");
    alice
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE DOMAIN good_mood AS mood CHECK (VALUE <> 'sad');
             CREATE TYPE feeling AS (m mood, n int);
             CREATE TABLE calls (n int PRIMARY KEY);
             CREATE FUNCTION mood_json(mood) RETURNS json LANGUAGE plpgsql AS
               $f$ BEGIN INSERT INTO calls VALUES ((SELECT count(*) FROM calls) + 1); RETURN '\"forged-ok\"'; END $f$;
             CREATE CAST (mood AS json) WITH FUNCTION mood_json(mood);
             CREATE FUNCTION mood_text(mood) RETURNS text LANGUAGE sql AS $f$ SELECT 'forged-text' $f$;
             CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood);
             CREATE TABLE diary (id int PRIMARY KEY, m mood, g good_mood, f feeling, ms mood[], note text);
             SELECT audit.enable('diary');
             INSERT INTO diary VALUES (1, 'sad', 'happy', ROW('happy', 2), '{happy,sad}', 'x'),
                                      (2, NULL, NULL, NULL, NULL, NULL);
             UPDATE diary SET m = 'happy' WHERE id = 1;",
        )
        .expect("the owner of the types audits her table");
    let image: String = c
        .query_one(
            "SELECT new_row::text FROM audit.log WHERE op = 'INSERT' AND pk = '{\"id\": 1}'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        image,
        r#"{"f": "(happy,2)", "g": "happy", "m": "sad", "id": 1, "ms": "{happy,sad}", "note": "x"}"#
    );
    let nulls: String = c
        .query_one(
            "SELECT new_row::text FROM audit.log WHERE op = 'INSERT' AND pk = '{\"id\": 2}'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        nulls,
        r#"{"f": null, "g": null, "m": null, "id": 2, "ms": null, "note": null}"#
    );
    assert_eq!(
        text(
            &mut c,
            "SELECT changed_columns::text FROM audit.log WHERE op = 'UPDATE'"
        )
        .as_deref(),
        Some("{m}")
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM calls"),
        0,
        "the cast never ran"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE new_row::text LIKE '%forged%'"
        ),
        0
    );
    drop(alice);
    c.batch_execute("DROP CAST (mood AS json); DROP CAST (mood AS text); DROP OWNED BY itest_alice; DROP ROLE itest_alice;")
        .expect("cleanup");
}

#[test]
fn conversion_keeps_the_trail() {
    const DB: &str = "itest_audit_convert";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE article_views (id bigint PRIMARY KEY, viewed_at timestamptz NOT NULL, ip text, n int);
         INSERT INTO article_views SELECT g, now() - g * interval '1 day', '10.0.0.' || g, 0
           FROM generate_series(1, 50) g;
         SELECT audit.enable('article_views', exclude_columns => '{ip}', capture_query => true);
         UPDATE article_views SET n = 1 WHERE id = 1;
         SELECT storage.convert_to_partitioned('article_views', 'viewed_at', '1 month');",
    )
    .expect("convert an audited table");
    // still audited, with the same options, and its capture is whole
    assert_eq!(
        text(
            &mut c,
            "SELECT format('%s %s %s', table_name, exclude_columns, capture_query) FROM audit.tracked"
        )
        .as_deref(),
        Some("article_views {ip} t")
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.coverage WHERE NOT capture_ok"
        ),
        0
    );
    // the conversion is one DDL row; its renames and the old table's drop are not tampering
    let ddl: Vec<String> = c
        .query(
            "SELECT new_row->>'command_tag' FROM audit.log WHERE op = 'DDL' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ddl, ["storage.convert_to_partitioned"]);
    // the copy logged nothing; later changes, through the table or straight into a partition,
    // are logged once each under the table
    let part: String = c
        .query_one(
            "SELECT tableoid::regclass::text FROM article_views WHERE id = 2",
            &[],
        )
        .unwrap()
        .get(0);
    c.batch_execute(&format!(
        "UPDATE article_views SET n = 2 WHERE id = 1; UPDATE {part} SET n = 3 WHERE id = 2;"
    ))
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE op IN ('INSERT', 'UPDATE', 'DELETE')"
        ),
        3
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM audit.log WHERE table_name = 'article_views' AND pk = '{\"id\": 2}'::jsonb OR pk @> '{\"id\": 2}'"),
        1
    );
    // the key the caller knows finds the whole history, before the conversion and after it
    // (rows inserted before audit.enable have no INSERT)
    let ops: Vec<(String, i32)> = c
        .query(
            "SELECT op, (new_row->>'n')::int FROM audit.history('article_views', '{\"id\": 1}')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(ops, [("UPDATE".to_owned(), 1), ("UPDATE".to_owned(), 2)]);
    // back to a plain table: still audited, one more DDL row, the history goes on
    c.batch_execute(
        "SELECT storage.undo_partitioning('article_views'); UPDATE article_views SET n = 4 WHERE id = 1;",
    )
    .expect("undo the partitioning of an audited table");
    let ns: Vec<i32> = c
        .query(
            "SELECT (new_row->>'n')::int FROM audit.history('article_views', '{\"id\": 1}')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ns, [1, 2, 4]);
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM audit.log WHERE op = 'DDL' AND new_row->>'command_tag' = 'storage.undo_partitioning'"),
        1
    );
    assert_eq!(
        text(&mut c, "SELECT format('%s %s %s', table_name, exclude_columns, capture_query) FROM audit.tracked").as_deref(),
        Some("article_views {ip} t")
    );
    // and row_at(now()) is the live row for every row
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM article_views a
              WHERE audit.row_at('article_views', jsonb_build_object('id', a.id), now())
                    IS DISTINCT FROM (to_jsonb(a) - 'ip')
                AND a.id IN (1, 2)"
        ),
        0
    );
}

/// 8 writers for a while on an audited partitioned table whose rows often land in the default
/// partition, maintenance moving them out every second: the log has one row per committed row
/// change, and `row_at(now())` is every live row.
#[test]
fn writers_and_maintenance_keep_the_log_exact() {
    const DB: &str = "itest_audit_load";
    const WRITERS: i64 = 8;
    let seconds: u64 = std::env::var("PGSE_AUDIT_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE pa (id bigint, ts timestamptz, v int NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
         SELECT storage.create_partitions('pa', '1 day', 1);
         SELECT audit.enable('pa');",
    )
    .expect("setup");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let stop = stop.clone();
        writers.push(thread::spawn(move || {
            let mut c = connect(DB);
            let (mut committed, mut i, mut errors) = (0u64, 0i64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = w * 1_000_000 + i;
                // every third row lands 2..9 days ahead: in the default partition until
                // maintenance makes its day and moves it
                let ahead = if i % 3 == 0 { 2 + i % 8 } else { 0 };
                let mut tx = c.transaction().expect("begin");
                let mut n = 0u64;
                let mut run = |tx: &mut postgres::Transaction<'_>, sql: &str, p: &[&(dyn postgres::types::ToSql + Sync)]| match tx.execute(sql, p) {
                    Ok(k) => n += k,
                    Err(e) => errors.push(describe(&e)),
                };
                run(
                    &mut tx,
                    "INSERT INTO pa VALUES ($1, date_trunc('day', now()) + make_interval(days => $2) + interval '1 hour', 0)",
                    &[&id, &(ahead as i32)],
                );
                run(&mut tx, "UPDATE pa SET v = v + 1 WHERE id = $1::bigint - 2", &[&id]);
                if i % 5 == 0 {
                    run(&mut tx, "DELETE FROM pa WHERE id = $1::bigint - 4", &[&id]);
                }
                if i % 10 == 9 {
                    tx.rollback().expect("rollback");
                } else {
                    match tx.commit() {
                        Ok(()) => committed += n,
                        Err(e) => errors.push(describe(&e)),
                    }
                }
            }
            (committed, errors)
        }));
    }
    let started = Instant::now();
    let mut maintenance = connect(DB);
    let (mut runs, mut moved) = (0, 0i64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let row = maintenance
            .query_one(
                "SELECT coalesce(sum(moved_from_default), 0)::bigint FROM storage.run_maintenance('pa')",
                &[],
            )
            .expect("maintenance");
        moved += row.get::<_, i64>(0);
        runs += 1;
        thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    let mut committed = 0;
    let mut errors = Vec::new();
    for w in writers {
        let (n, e) = w.join().expect("writer");
        committed += n;
        errors.extend(e);
    }
    let logged = count(
        &mut c,
        "SELECT count(*) FROM audit.log WHERE table_name = 'pa'",
    ) as u64;
    let live = count(&mut c, "SELECT count(*) FROM pa");
    let in_default = count(&mut c, "SELECT count(*) FROM pa_default");
    let mismatched = count(
        &mut c,
        "SELECT count(*) FROM pa
          WHERE audit.row_at('pa', jsonb_build_object('id', id, 'ts', ts), now()) IS DISTINCT FROM to_jsonb(pa)",
    );
    println!(
        "audit load: {WRITERS} writers x {seconds} s, {runs} maintenance runs moved {moved} rows out of the default \
         ({in_default} left there); committed row changes {committed}, log rows {logged}; live rows {live}, \
         row_at(now()) mismatches {mismatched}"
    );
    assert!(
        errors.is_empty(),
        "writer errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(moved > 0, "maintenance moved rows while the writers ran");
    assert_eq!(logged, committed, "one log row per committed row change");
    assert_eq!(mismatched, 0, "row_at(now()) is the live row");
}

/// Rows the extension relocates out of a default partition are no change, but what a trigger of
/// the table does during the relocation is (found by a fresh-context attacker: the table owner's
/// trigger changed rows unlogged while maintenance ran).
#[test]
fn a_trigger_run_by_a_relocation_is_logged() {
    const DB: &str = "itest_audit_relocation_trigger";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE pa (id int, ts timestamptz, v text, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
         SELECT storage.create_partitions('pa', '1 day', 1);
         SELECT audit.enable('pa');
         INSERT INTO pa VALUES (1, now() + interval '10 days', 'far'), (2, now() + interval '10 days', 'far');
         CREATE FUNCTION sneaky() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF OLD.id = 1 THEN
                 INSERT INTO public.pa VALUES (9, now() + interval '20 days', 'ghost');
             END IF;
             RETURN OLD;
         END $$;
         CREATE TRIGGER sneaky AFTER DELETE ON pa FOR EACH ROW EXECUTE FUNCTION sneaky();",
    )
    .expect("setup");
    let before = count(
        &mut c,
        "SELECT count(*) FROM audit.log WHERE table_name = 'pa'",
    );
    c.batch_execute("SELECT storage.run_maintenance('pa')")
        .expect("maintenance drains the default partition");
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pa WHERE v = 'ghost'"),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE table_name = 'pa' AND op = 'INSERT' AND new_row->>'v' = 'ghost'"
        ),
        1,
        "the trigger's INSERT is in the log"
    );
    // and the moves themselves are not
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE table_name = 'pa'"
        ),
        before + 1
    );
}
