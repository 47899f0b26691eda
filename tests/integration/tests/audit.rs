//! Audit across sessions and roles: concurrent writers (committed changes == log rows, the log
//! replays to the table), non-superuser tamper attempts, and pg_dump/pg_restore of the history.

use pg_storage_integration::{bindir, connect, connect_as, fresh_db, port};
use postgres::Client;
use std::process::Command;
use std::thread;

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect(sql).get(0)
}

/// Rows a log replay gets wrong: for every key ever logged, the last image must be the row as it
/// is now (or absent when the last event is a DELETE).
const REPLAY_MISMATCHES: &str = "
    SELECT count(*) FROM (SELECT DISTINCT ON (pk) pk, op, new_row FROM audit.log
                           WHERE table_name = 'accounts' ORDER BY pk, id DESC) l
    FULL JOIN accounts a ON l.pk = jsonb_build_object('id', a.id)
    WHERE l.new_row IS DISTINCT FROM to_jsonb(a)";

#[test]
fn concurrent_writers_log_exactly_the_committed_changes() {
    const DB: &str = "itest_audit_race";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, owner int NOT NULL, balance bigint NOT NULL);
         INSERT INTO accounts SELECT g, 0, 0 FROM generate_series(1, 10) g;   -- shared hot rows
         SELECT audit.enable('accounts');",
    )
    .expect("setup");
    let mut workers = Vec::new();
    for w in 0..4i32 {
        workers.push(thread::spawn(move || {
            let mut c = connect(DB);
            let mut committed: u64 = 0;
            let mut errors = Vec::new();
            for i in 0..150i32 {
                let base = 1000 * (w + 1) + (i % 40) * 5;
                let rollback = i % 4 == 3;
                let mut tx = c.transaction().expect("begin");
                let mut n: u64 = 0;
                let mut step = |tx: &mut postgres::Transaction<'_>, sql: &str, p: &[&(dyn postgres::types::ToSql + Sync)]| {
                    match tx.execute(sql, p) {
                        Ok(k) => n += k,
                        Err(e) => errors.push(describe(&e)),
                    }
                };
                // a multi-row insert of our own keys (skipping those that exist), a multi-row
                // update, a hot-row update shared with the other writers, and now and then a delete
                step(
                    &mut tx,
                    "INSERT INTO accounts SELECT g, $1, 0 FROM generate_series($2::int, $2::int + 4) g
                     ON CONFLICT (id) DO NOTHING",
                    &[&w, &base],
                );
                step(
                    &mut tx,
                    "UPDATE accounts SET balance = balance + 1 WHERE id BETWEEN $1 AND $1 + 2",
                    &[&base],
                );
                step(
                    &mut tx,
                    "UPDATE accounts SET balance = balance + 1, owner = $1 WHERE id = $2",
                    &[&w, &(1 + (i % 10))],
                );
                if i % 7 == 0 {
                    step(&mut tx, "DELETE FROM accounts WHERE id = $1 + 4", &[&base]);
                }
                if rollback {
                    tx.rollback().expect("rollback");
                } else {
                    tx.commit().expect("commit");
                    committed += n;
                }
            }
            (committed, errors)
        }));
    }
    let mut committed = 0;
    for w in workers {
        let (n, errors) = w.join().expect("writer thread");
        assert!(errors.is_empty(), "writer errors: {errors:?}");
        committed += n;
    }
    let logged = count(
        &mut c,
        "SELECT count(*) FROM audit.log WHERE table_name = 'accounts'",
    );
    assert_eq!(
        logged as u64, committed,
        "one log row per committed row change"
    );
    assert_eq!(
        count(&mut c, REPLAY_MISMATCHES),
        0,
        "replaying the log gives the table"
    );
    // the hot rows' histories are in commit order: each UPDATE's old image is the previous new one
    let broken = count(
        &mut c,
        "SELECT count(*) FROM (SELECT old_row, lag(new_row) OVER (PARTITION BY pk ORDER BY id) AS prev, op
                                FROM audit.log WHERE table_name = 'accounts' AND (pk->>'id')::int <= 10) h
          WHERE op = 'UPDATE' AND prev IS NOT NULL AND old_row IS DISTINCT FROM prev",
    );
    assert_eq!(broken, 0, "history chains old and new images");
}

#[test]
fn non_superusers_cannot_erase_or_forge() {
    const DB: &str = "itest_audit_tamper";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_alice') THEN CREATE ROLE itest_alice LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_mallory') THEN CREATE ROLE itest_mallory LOGIN; END IF;
         END $$;
         GRANT CREATE ON SCHEMA public TO itest_alice, itest_mallory;",
    )
    .expect("roles");
    let mut alice = connect_as(DB, "itest_alice");
    alice
        .batch_execute(
            "CREATE TABLE notes (id int PRIMARY KEY, body text);
             GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO itest_mallory;
             SELECT audit.enable('notes');
             INSERT INTO notes VALUES (1, 'alice was here');",
        )
        .expect("the owner, not a superuser, enables audit");
    let mut mallory = connect_as(DB, "itest_mallory");
    mallory
        .execute(
            "UPDATE notes SET body = 'mallory was here' WHERE id = 1",
            &[],
        )
        .expect("a writer writes");
    let before = count(&mut c, "SELECT count(*) FROM audit.log");
    assert_eq!(before, 2);
    let attempts = [
        "UPDATE audit.log SET role_name = 'alice'",
        "DELETE FROM audit.log",
        "INSERT INTO audit.log (ts, txid, table_oid, schema_name, table_name, op, db_user, role_name) \
         VALUES (now(), '1', 1, 'public', 'notes', 'DELETE', 'x', 'x')",
        "DROP VIEW audit.log",
        "CREATE OR REPLACE VIEW audit.log AS SELECT 1",
        "UPDATE audit._log_context SET role_name = 'alice'",
        "UPDATE audit._log_row SET new_row = '{}'",
        "DELETE FROM audit._log_statement",
        "TRUNCATE audit._log_row",
        "TRUNCATE audit._log_statement",
        "INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context) \
         VALUES (1, now(), '1', 1, 'DELETE', 1)",
        "DROP TABLE audit._log_row",
        "ALTER TABLE audit._log_row DETACH PARTITION audit._log_row_default",
        "DELETE FROM audit._log_row_default",
        "DELETE FROM audit._log_statement_default",
        "SELECT audit.disable('notes')",
        "DROP TRIGGER audit_capture_update ON notes",
        "ALTER TABLE notes DISABLE TRIGGER USER",
        "SET session_replication_role = replica",
        "SELECT audit.set_retention('1 month')",
        "SELECT audit._sync_partitions('notes')",
        "UPDATE audit._tracked SET exclude_columns = '{body}'",
        "DELETE FROM storage.partition_config",
    ];
    for sql in attempts {
        let err = mallory
            .batch_execute(sql)
            .expect_err(&format!("must be refused: {sql}"));
        assert_eq!(
            err.code().map(|s| s.code()),
            Some("42501"),
            "{sql}: {}",
            describe(&err)
        );
    }
    // nobody but the extension can attach the capture function (it is not executable by PUBLIC):
    // a table of one's own cannot feed rows into the log that look like a real INSERT
    mallory
        .batch_execute("CREATE TABLE mine (id int PRIMARY KEY)")
        .expect("own table");
    for sql in [
        "CREATE TRIGGER forged AFTER INSERT ON mine REFERENCING NEW TABLE AS pg_storage_ext_new \
           FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false')",
        "CREATE TRIGGER bad AFTER INSERT ON mine FOR EACH ROW EXECUTE FUNCTION audit._capture('table', 'false')",
    ] {
        let err = mallory.batch_execute(sql).expect_err(sql);
        assert_eq!(err.code().map(|s| s.code()), Some("42501"), "{sql}: {}", describe(&err));
    }
    mallory
        .batch_execute("INSERT INTO mine VALUES (7)")
        .expect("insert into own table");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE table_name = 'mine'"
        ),
        0
    );
    let roles: Vec<String> = c
        .query(
            "SELECT role_name::text FROM audit.log WHERE table_name = 'notes' ORDER BY id",
            &[],
        )
        .expect("log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(roles, ["itest_alice", "itest_mallory"]);
    // the owner may stop capture on her own table
    alice
        .batch_execute("SELECT audit.disable('notes')")
        .expect("owner disables");
    drop((alice, mallory));
    c.batch_execute(
        "DROP TABLE notes, mine; DROP OWNED BY itest_alice, itest_mallory; DROP ROLE itest_alice, itest_mallory;",
    )
    .expect("cleanup");
}

#[test]
fn dump_and_restore_keep_the_history() {
    const DB: &str = "itest_audit_dump";
    const COPY: &str = "itest_audit_restored";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE articles (id int PRIMARY KEY, title text, secret text);
         SELECT audit.enable('articles', ARRAY['secret'], true);
         INSERT INTO articles SELECT g, 'title ' || g, 's' FROM generate_series(1, 50) g;
         UPDATE articles SET title = title || '!' WHERE id <= 10;
         DELETE FROM articles WHERE id > 45;
         UPDATE storage.health_thresholds SET warn = 2 WHERE check_name = 'long_running_queries';
         SELECT storage.metrics_snapshot();",
    )
    .expect("setup");
    const FINGERPRINT: &str = "SELECT count(*)::text || ':' || md5(string_agg(concat_ws('|', id, ts, txid, schema_name, table_name, op, pk, old_row, new_row, changed_columns, role_name, query), ',' ORDER BY id)) FROM audit.log";
    let before: String = c.query_one(FINGERPRINT, &[]).expect("fingerprint").get(0);
    let dump = std::env::temp_dir().join("pg_storage_ext_audit_itest.dump");
    let bin = bindir();
    let p = port().to_string();
    let status = Command::new(format!("{bin}/pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-Fc", "-f"])
        .arg(&dump)
        .arg(DB)
        .status()
        .expect("pg_dump");
    assert!(status.success(), "pg_dump failed");
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {COPY} WITH (FORCE)"))
        .expect("drop old restore target");
    admin
        .batch_execute(&format!("CREATE DATABASE {COPY}"))
        .expect("restore target");
    let out = Command::new(format!("{bin}/pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-U",
            "postgres",
            "--exit-on-error",
            "-d",
            COPY,
        ])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(
        out.status.success(),
        "pg_restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&dump);
    let mut r = connect(COPY);
    let after: String = r.query_one(FINGERPRINT, &[]).expect("fingerprint").get(0);
    assert_eq!(after, before, "the restored log is the same, row for row");
    // capture goes on in the copy, ids go on increasing, history spans the restore
    r.batch_execute("UPDATE articles SET title = 'after restore' WHERE id = 1")
        .expect("write after restore");
    let ok: bool = r
        .query_one(
            "SELECT (SELECT count(*) FROM audit.tracked WHERE table_name = 'articles'::regclass) = 1
                AND (SELECT max(id) FROM audit.log WHERE new_row->>'title' = 'after restore')
                    > (SELECT max(id) FROM audit.log WHERE new_row->>'title' <> 'after restore')",
            &[],
        )
        .expect("after restore")
        .get(0);
    assert!(ok, "tracked and increasing ids after restore");
    // a tuned threshold and the metrics history come back too (over the seeded thresholds)
    let health: String = r
        .query_one(
            "SELECT (SELECT count(*) FROM storage.health_thresholds)::text || ' '
                 || (SELECT warn FROM storage.health_thresholds WHERE check_name = 'long_running_queries')::text || ' '
                 || ((SELECT count(*) FROM storage.metrics) > 0)::text",
            &[],
        )
        .expect("health after restore")
        .get(0);
    assert_eq!(health, "28 2 true");
    let history: Vec<String> = r
        .query(
            "SELECT op FROM audit.history('articles', '{\"id\": 1}') ORDER BY id",
            &[],
        )
        .expect("history")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(history, ["INSERT", "UPDATE", "UPDATE"]);
    drop(r);
    admin
        .batch_execute(&format!("DROP DATABASE {COPY} WITH (FORCE)"))
        .expect("drop copy");
}

/// A column the extension derives from the row (the search column) is not the row's history
/// (issue 36, F7): enable_search on an audited table of 2,000 rows writes one DDL-kind row of the
/// log, not an UPDATE per row; later writes leave the column out of their images; rebuild_search
/// is one row too.
#[test]
fn a_search_backfill_is_one_log_row_and_the_search_column_is_not_history() {
    let mut c = fresh_db("itest_audit_derived");
    c.batch_execute(
        "CREATE TABLE posts (id int PRIMARY KEY, title text, body text);
         INSERT INTO posts SELECT g, 'title ' || g, 'body ' || g FROM generate_series(1, 2000) g;
         SELECT audit.enable('posts');",
    )
    .expect("setup");
    let count = |c: &mut Client| -> i64 {
        c.query_one("SELECT count(*) FROM audit.log", &[])
            .unwrap()
            .get(0)
    };
    let before = count(&mut c);
    let backfilled: i64 = c
        .query_one(
            "SELECT storage.enable_search('posts', 'search', 'simple', '{\"title\": \"A\", \"body\": \"B\"}')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(backfilled, 2000);
    let ops: Vec<String> = c
        .query(
            "SELECT op FROM audit.log WHERE id > (SELECT coalesce(max(id), 0) FROM audit.log) - 10 ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // the column's addition (DDL the event trigger logs), the capture options that now leave
    // it out, and the backfill: three rows, no UPDATE
    assert_eq!(count(&mut c) - before, 3, "{ops:?}");
    let tags: Vec<String> = c
        .query(
            "SELECT detail->>'command_tag' FROM audit._log_statement ORDER BY id DESC LIMIT 3",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tags, ["ENABLE SEARCH", "AUDIT OPTIONS", "ALTER TABLE"]);
    let excluded: Vec<String> = c
        .query_one(
            "SELECT exclude_columns FROM audit._tracked WHERE table_name = 'posts'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(excluded, ["search"]);
    c.batch_execute("UPDATE posts SET title = 'changed' WHERE id = 1")
        .unwrap();
    let image: String = c
        .query_one(
            "SELECT (new_row ? 'search')::text || ' ' || (new_row->>'title') FROM audit.log WHERE op = 'UPDATE' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        image, "false changed",
        "the search column is not in the image"
    );
    let before = count(&mut c);
    c.batch_execute("SELECT storage.rebuild_search('posts', 'search')")
        .unwrap();
    assert_eq!(count(&mut c) - before, 1, "one row for the rebuild");
}
