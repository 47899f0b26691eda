//! A table owner's ways to change audited data without a trace, found by a fresh reviewer of
//! this session's changes (issue 36), each closed: a partition detached, changed and attached
//! again; the capture options changed and changed back; a search backfill whose table triggers
//! change real data; partitions left without capture and repaired by maintenance. Real LOGIN
//! roles.

use pg_storage_integration::{connect, connect_as, fresh_db};
use postgres::Client;

const DB: &str = "itest_audit_tamper";

fn owner() -> Client {
    let mut admin = connect("postgres");
    admin
        .batch_execute("DROP DATABASE IF EXISTS itest_audit_tamper WITH (FORCE)")
        .unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS itest_tamper_owner; CREATE ROLE itest_tamper_owner LOGIN;",
        )
        .unwrap();
    let mut c = fresh_db(DB);
    c.batch_execute("GRANT CREATE ON SCHEMA public TO itest_tamper_owner")
        .unwrap();
    connect_as(DB, "itest_tamper_owner")
}

fn ddl_tags(c: &mut Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT new_row->>'command_tag' FROM audit.log WHERE table_name = $1 AND op = 'DDL' ORDER BY id",
        &[&table],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn an_owners_ways_around_the_log_leave_a_trace() {
    let mut o = owner();
    let mut su = connect(DB);
    // a partition detached (its rows leave the table), changed, attached again
    o.batch_execute(
        "CREATE TABLE acct (id int, region int, balance int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE acct_1 PARTITION OF acct FOR VALUES IN (1);
         INSERT INTO acct VALUES (1, 1, 100);
         SELECT audit.enable('acct');
         ALTER TABLE acct DETACH PARTITION acct_1;
         UPDATE acct_1 SET balance = 777777 WHERE id = 1;
         ALTER TABLE acct ATTACH PARTITION acct_1 FOR VALUES IN (1);",
    )
    .unwrap();
    assert!(
        ddl_tags(&mut su, "acct").contains(&"ALTER TABLE".to_string()),
        "the DETACH is logged"
    );
    // the options changed back after an unlogged change: the change of options is logged
    o.batch_execute(
        "CREATE TABLE pay (id int PRIMARY KEY, salary int);
         INSERT INTO pay VALUES (1, 10);
         SELECT audit.enable('pay', '{salary}');
         UPDATE pay SET salary = 99999;
         SELECT audit.enable('pay', '{}');",
    )
    .unwrap();
    let was: String = su
        .query_one(
            "SELECT (new_row->'was_exclude_columns')::text FROM audit.log \
              WHERE table_name = 'pay' AND op = 'DDL' AND new_row->>'command_tag' = 'AUDIT OPTIONS'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(was, r#"["salary"]"#);
    // a trigger naming a real column as a search column does not take it out of the history
    o.batch_execute(
        "CREATE TABLE pay2 (id int PRIMARY KEY, title text, salary int);
         CREATE TRIGGER fake BEFORE UPDATE OF title ON pay2 FOR EACH ROW WHEN (false)
             EXECUTE FUNCTION storage.tsvector_update('salary', 'simple', 'title');
         SELECT audit.enable('pay2');",
    )
    .unwrap();
    let excluded: Vec<String> = su
        .query_one(
            "SELECT exclude_columns FROM audit._tracked WHERE table_name = 'pay2'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(excluded.is_empty(), "{excluded:?}");
    // a search backfill: the owner's triggers changing real data are logged as usual
    o.batch_execute(
        "CREATE TABLE doc (id int PRIMARY KEY, title text, balance int);
         INSERT INTO doc VALUES (1, 'a', 1), (2, 'b', 2);
         SELECT audit.enable('doc');
         CREATE FUNCTION sneaky() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.balance := NEW.balance + 1000000; RETURN NEW; END $$;
         CREATE TRIGGER sneaky BEFORE UPDATE ON doc FOR EACH ROW EXECUTE FUNCTION sneaky();",
    )
    .unwrap();
    su.batch_execute(
        "SELECT storage.enable_search('doc', 'search', 'simple', '{\"title\": \"A\"}')",
    )
    .unwrap();
    let updates: i64 = su
        .query_one(
            "SELECT count(*) FROM audit.log WHERE table_name = 'doc' AND op = 'UPDATE' \
                AND (new_row->>'balance')::int > 1000000",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        updates, 2,
        "the balance changes of the backfill are in the log"
    );
    // a partition left without capture (its trigger dropped by the owner) is repaired by the
    // maintenance job, which says so in the log
    o.batch_execute(
        "CREATE TABLE ev (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
         SELECT audit.enable('ev');
         DROP TRIGGER audit_capture_insert ON ev_1;",
    )
    .unwrap();
    su.batch_execute("CALL storage.run_maintenance_proc()")
        .unwrap();
    let tags = ddl_tags(&mut su, "ev");
    assert!(tags.contains(&"CAPTURE REPAIRED".to_string()), "{tags:?}");
    drop(o);
    su.batch_execute("DROP OWNED BY itest_tamper_owner")
        .unwrap();
}
