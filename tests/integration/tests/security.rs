//! Security across sessions: pg_cron's superuser job drains a default partition without lending
//! its rights to the table owner's code (C1), and the extension's DDL event trigger never makes an
//! unrelated statement wait behind a lock (M1). Real non-superuser LOGIN roles.

use pg_storage_integration::{connect, connect_as, cron_state, fresh_db, is_superuser, wait_for};
use std::time::{Duration, Instant};

fn roles(names: &[&str]) {
    let mut admin = connect("postgres");
    for n in names {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {n}; CREATE ROLE {n} LOGIN"))
            .expect("role");
    }
}

#[test]
fn cron_maintenance_runs_the_owners_code_as_the_owner() {
    const DB: &str = "itest_sec_cron";
    roles(&["itest_sec_alice", "itest_sec_mallory"]);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE SCHEMA alice AUTHORIZATION itest_sec_alice;
         GRANT CREATE ON DATABASE itest_sec_cron TO itest_sec_alice;",
    )
    .expect("schema");
    let mut alice = connect_as(DB, "itest_sec_alice");
    alice
        .batch_execute(
            "CREATE TABLE alice.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
             CREATE TABLE alice.seen (who text, outcome text);
             CREATE FUNCTION alice.f() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 BEGIN
                     EXECUTE 'ALTER ROLE itest_sec_mallory SUPERUSER';
                     INSERT INTO alice.seen VALUES (current_user, 'escalated');
                 EXCEPTION WHEN OTHERS THEN
                     INSERT INTO alice.seen VALUES (current_user, SQLSTATE);
                 END;
                 RETURN OLD;
             END $$;
             CREATE TRIGGER f BEFORE DELETE ON alice.ev FOR EACH ROW EXECUTE FUNCTION alice.f();",
        )
        .expect("alice's table");
    // the DBA registers it; later alice writes a row far ahead, into the default partition
    c.batch_execute("SELECT storage.create_partitions('alice.ev', '1 day', 2)")
        .expect("register");
    alice
        .batch_execute("INSERT INTO alice.ev VALUES (1, now() + interval '60 days')")
        .expect("row into the default");

    // the job storage.schedule_jobs() creates, run by pg_cron as the superuser
    let mut cron = connect("postgres");
    cron.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .expect("pg_cron");
    let job: i64 = cron
        .query_one(
            "SELECT cron.schedule_in_database('itest-sec-maintenance', '1 seconds', \
             'SELECT storage._maintenance()', $1)",
            &[&DB],
        )
        .expect("schedule")
        .get(0);
    let drained = wait_for(Duration::from_secs(40), || {
        let n: i64 = c
            .query_one("SELECT count(*) FROM ONLY alice.ev_default", &[])
            .ok()?
            .get(0);
        (n == 0).then_some(())
    });
    let state = cron_state(&mut cron);
    cron.execute("SELECT cron.unschedule($1::bigint)", &[&job])
        .expect("unschedule");
    assert!(
        drained.is_some(),
        "pg_cron's maintenance job never drained the default partition: {state}"
    );

    let seen: Vec<(String, String)> = c
        .query("SELECT who, outcome FROM alice.seen", &[])
        .expect("seen")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        seen,
        [("itest_sec_alice".to_owned(), "42501".to_owned())],
        "the owner's trigger must run as the owner, and its escalation must fail"
    );
    assert!(!is_superuser("itest_sec_mallory"));
    assert!(!is_superuser("itest_sec_alice"));
    let n: i64 = c
        .query_one("SELECT count(*) FROM alice.ev", &[])
        .expect("rows")
        .get(0);
    assert_eq!(n, 1, "the row moved, not lost");
}

const PENDING: &str =
    "SELECT resolve_pending FROM storage._matview_state WHERE view = 'totals'::regclass";

#[test]
fn ddl_event_trigger_never_blocks_unrelated_statements() {
    const DB: &str = "itest_sec_ddl";
    roles(&["itest_sec_owner", "itest_sec_other"]);
    let mut c = fresh_db(DB);
    c.batch_execute(&format!(
        "GRANT CREATE ON SCHEMA public TO itest_sec_owner, itest_sec_other;
         GRANT CREATE ON DATABASE {DB} TO itest_sec_owner;"
    ))
    .expect("grants");
    let mut owner = connect_as(DB, "itest_sec_owner");
    owner
        .batch_execute(
            "CREATE TABLE src (id int PRIMARY KEY, n int) PARTITION BY RANGE (id);
             CREATE TABLE src_1 PARTITION OF src FOR VALUES FROM (0) TO (1000);
             INSERT INTO src SELECT g, g FROM generate_series(1, 10) g;
             CREATE VIEW src_v AS SELECT id, n FROM src;
             CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS c FROM src_v;
             CREATE UNIQUE INDEX ON totals (c);",
        )
        .expect("owner's objects");
    c.batch_execute("SELECT storage.register_matview('totals', '1 minute')")
        .expect("register");

    // the owner holds ACCESS EXCLUSIVE on a partition of the tracked table (a long migration,
    // say); statements that do not read it themselves must not wait for it
    owner
        .batch_execute("BEGIN; LOCK TABLE src_1 IN ACCESS EXCLUSIVE MODE")
        .expect("lock");

    // another role's unrelated view: at once
    let mut other = connect_as(DB, "itest_sec_other");
    other
        .batch_execute("SET statement_timeout = '10s'")
        .expect("timeout");
    let t0 = Instant::now();
    other
        .batch_execute("CREATE VIEW unrelated AS SELECT 1 AS one")
        .expect("unrelated CREATE VIEW must not wait");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        t0.elapsed()
    );

    // a view the registered matview reads, replaced by its owner in another session: the
    // tracking update would wait on the lock, so it warns, the statement succeeds, and the
    // next refresh_due redoes it
    let mut owner2 = connect_as(DB, "itest_sec_owner");
    owner2
        .batch_execute("SET statement_timeout = '10s'")
        .expect("timeout");
    let t0 = Instant::now();
    owner2
        .batch_execute("CREATE OR REPLACE VIEW src_v AS SELECT id, n FROM src WHERE n >= 0")
        .expect("CREATE OR REPLACE VIEW must not fail for the extension's tracking");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        t0.elapsed()
    );
    let pending: bool = c.query_one(PENDING, &[]).expect("state").get(0);
    assert!(
        pending,
        "the skipped tracking update is left for refresh_due"
    );

    owner.batch_execute("COMMIT").expect("release");
    c.batch_execute("SELECT count(*) FROM storage.refresh_due()")
        .expect("refresh_due");
    let pending: bool = c.query_one(PENDING, &[]).expect("state").get(0);
    assert!(!pending, "refresh_due did the pending tracking update");
}

#[test]
fn audit_partition_sync_left_under_a_lock_is_finished_by_maintenance() {
    const DB: &str = "itest_sec_audit_sync";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE ev (id int, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
         CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
         SELECT audit.enable('ev');",
    )
    .expect("setup");
    // a long transaction holds one partition; another session adds a partition: the audit event
    // trigger cannot list the partitions within its lock timeout, so it warns, and the user's
    // statement succeeds at once
    let mut holder = connect(DB);
    holder
        .batch_execute("BEGIN; LOCK TABLE ev_a IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let mut other = connect(DB);
    other
        .batch_execute("SET statement_timeout = '10s'")
        .expect("timeout");
    let t0 = Instant::now();
    other
        .batch_execute(
            "CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')",
        )
        .expect("the user's CREATE TABLE must not fail for the extension's sync");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        t0.elapsed()
    );
    holder.batch_execute("COMMIT").expect("release");
    let coverage = |c: &mut postgres::Client| -> (bool, Option<String>) {
        let r = c
            .query_one(
                "SELECT capture_ok, problem FROM audit.coverage WHERE table_name = 'ev'::regclass",
                &[],
            )
            .expect("coverage");
        (r.get(0), r.get(1))
    };
    let (ok, problem) = coverage(&mut c);
    assert!(!ok, "ev_b has no capture triggers yet");
    assert!(problem
        .unwrap_or_default()
        .contains("ev_b: trigger audit_capture_insert missing"));
    // the maintenance job (pg_cron's pg_storage_ext.maintenance) finishes the sync
    c.batch_execute("SELECT storage._maintenance()")
        .expect("maintenance");
    assert_eq!(coverage(&mut c), (true, None));
    c.batch_execute("INSERT INTO ev_b VALUES (1, '2026-02-10')")
        .expect("write to the partition");
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM audit.log WHERE table_name = 'ev' AND op = 'INSERT'",
            &[],
        )
        .expect("log")
        .get(0);
    assert_eq!(
        n, 1,
        "a write naming the new partition is captured once, under ev"
    );
}
