//! Stored SQL of migrations across real sessions (issue 35): the background executor runs only
//! the script that was verified when it was queued, as the role that queued it (C1: a rewrite
//! during the run is refused, by a granted role and even by a superuser's hand); an ordinary role
//! cannot hold back every migration (M1); a migration that fails in the executor is recorded
//! with its error (L3); no native stack trace reaches a client whatever the server's environment
//! (L1: the test cluster runs with RUST_BACKTRACE=1). Real non-superuser LOGIN roles.

use pg_storage_integration::{connect, connect_as, fresh_db, wait_for};
use postgres::Client;
use std::time::{Duration, Instant};

fn role(name: &str, extra: &str) {
    connect("postgres")
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN {extra}"
        ))
        .expect("role");
}

fn is_superuser(role: &str) -> bool {
    connect("postgres")
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .expect("role")
        .get(0)
}

fn status(db: &mut Client, version: &str) -> (String, Option<String>) {
    let r = db
        .query_one(
            "SELECT status, error FROM storage.migrations WHERE version = $1",
            &[&version],
        )
        .expect("migration row");
    (r.get(0), r.get(1))
}

fn sqlstate(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

#[test]
fn the_executor_runs_only_the_script_it_was_queued_with() {
    let mut db = fresh_db("itest_stored_sql");
    role("itest_mallory", "IN ROLE storage_migrator");
    db.batch_execute(
        "GRANT ALL ON storage._migration_history, storage.migration_hooks TO itest_mallory;
         GRANT ALL ON SCHEMA public TO itest_mallory;",
    )
    .unwrap();
    // the superuser's two-statement non-transactional migration: the first statement is slow
    let up = "SELECT pg_catalog.pg_sleep(3); SELECT 1;";
    let queued: String = db
        .query_one(
            "SELECT storage.migrate('1', 'two steps', $1, transactional => false)",
            &[&up],
        )
        .unwrap()
        .get(0);
    assert_eq!(queued, "pending");
    let running = wait_for(Duration::from_secs(20), || {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration' \
                  AND query LIKE 'SELECT pg_catalog.pg_sleep%'",
                &[],
            )
            .ok()?
            .get(0);
        (n == 1).then_some(())
    });
    assert!(running.is_some(), "the executor runs the first statement");
    // a delegated migrator with every table privilege cannot rewrite the stored script
    let mut mallory = connect_as("itest_stored_sql", "itest_mallory");
    let forged = "SELECT pg_catalog.pg_sleep(3); ALTER ROLE itest_mallory SUPERUSER;";
    let e = mallory
        .execute(
            "UPDATE storage._migration_history SET up = $1, \
                    checksum = encode(sha256(convert_to($1, 'UTF8')), 'hex') WHERE version = '1'",
            &[&forged],
        )
        .expect_err("the history is the extension's");
    assert_eq!(sqlstate(&e), "42501", "{e}");
    // nor can a superuser's hand change what the executor runs: it runs only the verified text
    db.execute(
        "UPDATE storage._migration_history SET up = $1, \
                checksum = encode(sha256(convert_to($1, 'UTF8')), 'hex') WHERE version = '1'",
        &[&forged],
    )
    .unwrap();
    let ended = wait_for(Duration::from_secs(30), || {
        let (s, e) = status(&mut db, "1");
        (s != "pending").then_some((s, e))
    });
    let (s, e) = ended.expect("the migration ended");
    assert_eq!(s, "failed");
    assert!(
        e.as_deref()
            .unwrap_or("")
            .contains("not the one that was queued"),
        "{e:?}"
    );
    assert!(!is_superuser("itest_mallory"));

    // a script mallory queues runs as mallory, however it was resumed
    let up = "SELECT pg_catalog.pg_sleep(0.2); ALTER ROLE itest_mallory SUPERUSER;";
    let queued: String = mallory
        .query_one(
            "SELECT storage.migrate('2', 'mine', $1, transactional => false)",
            &[&up],
        )
        .unwrap()
        .get(0);
    assert_eq!(queued, "pending");
    let ended = wait_for(Duration::from_secs(30), || {
        let (s, e) = status(&mut db, "2");
        (s != "pending").then_some((s, e))
    });
    let (s, e) = ended.expect("the migration ended");
    assert_eq!(s, "failed");
    assert!(
        e.as_deref().unwrap_or("").contains("permission denied"),
        "{e:?}"
    );
    assert!(!is_superuser("itest_mallory"));
    drop(mallory);
    db.batch_execute(
        "DELETE FROM storage._migration_history;
         REVOKE ALL ON storage._migration_history, storage.migration_hooks FROM itest_mallory;
         REVOKE ALL ON SCHEMA public FROM itest_mallory;",
    )
    .unwrap();
}

#[test]
fn an_ordinary_role_cannot_hold_back_migrations() {
    let mut db = fresh_db("itest_mig_lock");
    role("itest_blocker", "");
    // the key the advisory lock of earlier versions used, held by an ordinary role
    let mut blocker = connect_as("itest_mig_lock", "itest_blocker");
    blocker
        .batch_execute("SELECT pg_advisory_lock(hashtext('pg_storage_ext.migrate'), 0)")
        .unwrap();
    let t = Instant::now();
    let applied: String = db
        .query_one(
            "SELECT storage.migrate('1', 'table', 'CREATE TABLE t (id int)')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(applied, "applied");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "not held back: {:?}",
        t.elapsed()
    );
    // and the lock that serializes migrations cannot be taken by that role
    let e = blocker
        .batch_execute("BEGIN; LOCK TABLE storage._migration_lock IN ACCESS SHARE MODE")
        .expect_err("no privileges on the lock");
    assert_eq!(sqlstate(&e), "42501", "{e}");
    // a non-transactional migration also goes through while the advisory key is held
    let pending: String = db
        .query_one(
            "SELECT storage.migrate('2', 'index', 'CREATE INDEX CONCURRENTLY t_id ON t (id)', transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, "pending");
    let ended = wait_for(Duration::from_secs(30), || {
        let (s, _) = status(&mut db, "2");
        (s != "pending").then_some(s)
    });
    assert_eq!(ended.as_deref(), Some("applied"));
}

#[test]
fn a_migration_failing_in_the_executor_is_recorded_with_its_error() {
    let mut db = fresh_db("itest_mig_fail");
    let pending: String = db
        .query_one(
            "SELECT storage.migrate('1', 'bad', 'CREATE TABLE ok (id int); CREATE INDEX CONCURRENTLY nope ON missing (id)', \
                                    transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, "pending");
    let ended = wait_for(Duration::from_secs(30), || {
        let (s, e) = status(&mut db, "1");
        (s != "pending").then_some((s, e))
    });
    let (s, e) = ended.expect("the migration ended");
    assert_eq!(s, "failed");
    assert!(
        e.as_deref()
            .unwrap_or("")
            .contains("\"missing\" does not exist"),
        "{e:?}"
    );
}

#[test]
fn no_backtrace_reaches_a_client() {
    let mut db = fresh_db("itest_no_backtrace");
    role("itest_plain", "");
    db.batch_execute("GRANT USAGE ON SCHEMA storage TO itest_plain")
        .unwrap();
    let mut plain = connect_as("itest_no_backtrace", "itest_plain");
    // errors raised through the Rust layer, as an unprivileged role: PostgreSQL's own error
    // caught and re-raised (a setting the role may not read), and the extension's own
    for sql in [
        "SELECT storage._tenant_int4('data_directory')",
        "SELECT storage.jsonb_patch('{\"a\":[1]}', '[{\"op\":\"add\",\"path\":\"/a/9\",\"value\":1}]')",
        "SELECT storage.json_schema_valid('{\"$ref\": \"http://example.invalid/s.json\"}', '1')",
    ] {
        let e = plain.batch_execute(sql).expect_err(sql);
        let db_error = e.as_db_error().expect("a server error");
        let text = format!(
            "{} {} {}",
            db_error.message(),
            db_error.detail().unwrap_or(""),
            db_error.hint().unwrap_or("")
        );
        for leak in ["backtrace", ".rs:", "pgrx", "rust_begin_unwind", "std::"] {
            assert!(!text.contains(leak), "{sql}: {leak} in {text}");
        }
    }
}
