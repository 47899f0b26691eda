//! Stored SQL of migrations across real sessions (issue 35): the background executor runs only
//! the script that was verified when it was queued, as the role that queued it (C1: a rewrite
//! during the run is refused, by a granted role and even by a superuser's hand); an ordinary role
//! cannot hold back every migration (M1); a migration that fails in the executor is recorded
//! with its error (L3); no native stack trace reaches a client whatever the server's environment
//! (L1: the test cluster runs with RUST_BACKTRACE=1). Real non-superuser LOGIN roles.

use pg_storage_integration::{connect, connect_as, fresh_db, is_superuser, wait_for};
use postgres::Client;
use std::time::{Duration, Instant};

fn role(name: &str, extra: &str) {
    connect("postgres")
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN {extra}"
        ))
        .expect("role");
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
        t.elapsed() < Duration::from_secs(15),
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

/// The attacks a fresh reviewer found on the first version of the fix (issue 35), as the
/// delegated migrator `itest_bob` with a schema of its own: none makes it a superuser.
#[test]
fn a_migrator_cannot_reach_the_extensions_own_code() {
    const DB: &str = "itest_mig_attacks";
    let mut db = fresh_db(DB);
    role("itest_bob", "IN ROLE storage_migrator");
    db.batch_execute(
        "CREATE SCHEMA app AUTHORIZATION itest_bob;
         CREATE TABLE public.flags (name text); INSERT INTO public.flags VALUES ('beta');",
    )
    .unwrap();
    let mut bob = connect_as(DB, "itest_bob");
    // functions and a type named like the builtins the extension's own code calls, which turn
    // whoever runs them as another role into a superuser
    bob.batch_execute(
        "CREATE FUNCTION app.pwn() RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN
             IF current_user <> 'itest_bob' THEN EXECUTE 'ALTER ROLE itest_bob SUPERUSER'; END IF;
             RETURN true;
         END $$;
         CREATE FUNCTION app.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS 'SELECT app.pwn(); SELECT pg_catalog.now()';
         CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT app.pwn(); SELECT pg_catalog.now()';
         CREATE FUNCTION app.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql AS 'SELECT app.pwn()::text';
         CREATE FUNCTION app.pwn(text) RETURNS boolean LANGUAGE sql AS 'SELECT app.pwn()';
         CREATE DOMAIN app.text AS pg_catalog.text CHECK (app.pwn(VALUE));
         CREATE TABLE app.t (a int);
         CREATE TABLE app.flags (name text);
         CREATE FUNCTION app.on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM app.pwn(); RETURN OLD; END $$;
         CREATE TRIGGER on_delete BEFORE DELETE ON app.flags FOR EACH ROW EXECUTE FUNCTION app.on_delete();
         INSERT INTO app.flags VALUES ('beta');",
    )
    .unwrap();
    let settle = |db: &mut Client, v: &str| {
        wait_for(Duration::from_secs(30), || {
            let (s, e) = status(db, v);
            (s != "pending").then_some((s, e))
        })
        .expect("the executor finished")
    };
    // a session-level SET inside a transactional migration, or in a check, does not reach the
    // extension's code that runs as its owner after it
    bob.batch_execute("SELECT storage.migrate('1', 'set', 'SET search_path = app, pg_catalog')")
        .unwrap();
    let _ = bob.batch_execute(
        "SELECT storage.migrate('2', 'check', 'SELECT 1', \
            post_check => $$pg_catalog.set_config('search_path', 'app, pg_catalog', false) IS NOT NULL$$)",
    );
    assert!(
        !is_superuser("itest_bob"),
        "a SET leaked into the owner's code"
    );
    // the executor's own work runs with its pinned path, not the migrator's
    bob.batch_execute(
        "SET search_path = app, pg_catalog;
         SELECT storage.migrate('3', 'nt', 'CREATE INDEX CONCURRENTLY t_a ON app.t (a)', transactional => false);
         RESET search_path;",
    )
    .unwrap();
    assert_eq!(settle(&mut db, "3").0, "applied");
    assert!(
        !is_superuser("itest_bob"),
        "the executor used the migrator's path"
    );
    // a ROLLBACK inside a top-level DO block does not hand the executor's role back
    bob.batch_execute(
        "SELECT storage.migrate('4', 'do', $q$DO $d$BEGIN ROLLBACK; PERFORM app.pwn(); END$d$$q$, transactional => false)",
    )
    .unwrap();
    let (s, e) = settle(&mut db, "4");
    assert_eq!(s, "applied", "{e:?}");
    assert!(
        !is_superuser("itest_bob"),
        "ROLLBACK returned to the executor's role"
    );
    // transaction control in a non-transactional migration is refused when it is queued
    let e = bob
        .batch_execute(
            "SELECT storage.migrate('5', 'begin', 'BEGIN; SELECT 1', transactional => false)",
        )
        .expect_err("BEGIN refused");
    assert_eq!(sqlstate(&e), "25001", "{e}");
    // a down script runs with the search_path it was written with, not the reverter's
    db.batch_execute(
        "SELECT storage.migrate('6', 'flags', 'SELECT 1', down => $$DELETE FROM flags WHERE name = 'beta'$$)",
    )
    .unwrap();
    let reverted: String = bob
        .query_one(
            "SELECT set_config('search_path', 'app, public', false), storage.migrate_down('6')",
            &[],
        )
        .unwrap()
        .get(1);
    assert_eq!(reverted, "reverted");
    assert!(
        !is_superuser("itest_bob"),
        "the down ran with the reverter's path"
    );
    let left: i64 = db
        .query_one("SELECT count(*) FROM app.flags", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        left, 1,
        "the down deleted from the table it was written for"
    );
    let gone: i64 = db
        .query_one("SELECT count(*) FROM public.flags", &[])
        .unwrap()
        .get(0);
    assert_eq!(gone, 0);
    // a resumed migration runs with the resumer's search_path (it runs as the resumer)
    bob.batch_execute(
        "SET search_path = app, pg_catalog; BEGIN;
         SELECT storage.migrate('7', 'resume', 'SELECT now()', transactional => false);",
    )
    .unwrap();
    // the executor, waiting for bob's commit, is terminated once it shows (it connects just
    // after migrate returned), and is gone before the commit
    let executors = |db: &mut Client| -> i64 {
        db.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration'",
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or(-1)
    };
    wait_for(Duration::from_secs(10), || {
        (executors(&mut db) == 1).then_some(())
    })
    .expect("the executor shows");
    db.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext migration'",
    )
    .unwrap();
    wait_for(Duration::from_secs(10), || {
        (executors(&mut db) == 0).then_some(())
    })
    .expect("the executor stopped");
    bob.batch_execute("COMMIT; RESET search_path;").unwrap();
    let resumed: String = db
        .query_one(
            "SELECT storage.migrate('7', 'resume', 'SELECT now()', transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(resumed, "pending");
    assert_eq!(settle(&mut db, "7").0, "applied");
    assert!(
        !is_superuser("itest_bob"),
        "the resume ran with the queuer's path"
    );
    drop(bob);
    db.batch_execute("DELETE FROM storage._migration_history")
        .unwrap();
}

/// Locks a role without privileges can still hold on the migration lock's table (parse analysis
/// of a PREPAREd statement locks before it checks privileges) do not hold back migrations.
#[test]
fn prepared_statements_on_the_lock_table_hold_back_nothing() {
    const DB: &str = "itest_mig_prepared";
    let mut db = fresh_db(DB);
    role("itest_mallory2", "");
    let mut mallory = connect_as(DB, "itest_mallory2");
    mallory
        .batch_execute(
            "BEGIN;
             PREPARE p AS SELECT * FROM storage._migration_lock FOR UPDATE;
             PREPARE q AS INSERT INTO storage._migration_lock DEFAULT VALUES;",
        )
        .unwrap();
    let t = Instant::now();
    let applied: String = db
        .query_one(
            "SELECT storage.migrate('1', 't', 'CREATE TABLE t (id int)')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(applied, "applied");
    let pending: String = db
        .query_one(
            "SELECT storage.migrate('2', 'i', 'CREATE INDEX CONCURRENTLY t_id ON t (id)', transactional => false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, "pending");
    let ended = wait_for(Duration::from_secs(20), || {
        let (s, _) = status(&mut db, "2");
        (s != "pending").then_some(s)
    });
    assert_eq!(ended.as_deref(), Some("applied"));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    mallory.batch_execute("ROLLBACK").unwrap();
}

/// A migration whose executor keeps stopping is not started again and again by the heartbeat
/// (issue 36: a migrator's statement that ends its own session made the superuser's heartbeat
/// relaunch it every 5 s forever); and only the role that applied a migration, or the extension
/// owner, may mark it reverted with force.
#[test]
fn resumes_are_bounded_and_force_is_the_authors() {
    const DB: &str = "itest_mig_bounded";
    let mut db = fresh_db(DB);
    role("itest_carol", "IN ROLE storage_migrator");
    db.batch_execute("GRANT ALL ON SCHEMA public TO itest_carol")
        .unwrap();
    let mut carol = connect_as(DB, "itest_carol");
    // a pending non-transactional migration with no executor, which the heartbeat already
    // resumed three times (written as the extension owner may)
    db.batch_execute(
        "INSERT INTO storage._migration_history (version, description, checksum, up, transactional, status, applied_by, resumes)
         VALUES ('1', 'stops', encode(sha256(convert_to('SELECT 1', 'UTF8')), 'hex'), 'SELECT 1', false, 'pending', 'itest_carol', 3)",
    )
    .unwrap();
    let done: Option<String> = db
        .query_one("SELECT storage._recover()", &[])
        .unwrap()
        .get(0);
    assert!(done.unwrap_or_default().contains("interrupted too often"));
    let (s, e) = status(&mut db, "1");
    assert_eq!(s, "failed");
    assert!(e
        .unwrap_or_default()
        .contains("not resumed again by itself"));
    // force: the author's or the extension owner's
    db.batch_execute("SELECT storage.migrate('2', 'mine', 'CREATE TABLE su_t (id int)', down => 'DROP TABLE su_t')")
        .unwrap();
    let e = carol
        .batch_execute("SELECT storage.migrate_down('2', force => true)")
        .expect_err("not carol's");
    assert_eq!(sqlstate(&e), "42501", "{e}");
    let (s, _) = status(&mut db, "2");
    assert_eq!(s, "applied");
    drop(carol);
    db.batch_execute(
        "DELETE FROM storage._migration_history; REVOKE ALL ON SCHEMA public FROM itest_carol;",
    )
    .unwrap();
}
