//! The actor of audited changes behind a connection pool (pg_storage_ext.audit_actor_settings):
//! real LOGIN roles, one pooled connection role that switches between them per transaction with
//! SET LOCAL, PostgREST-style JSON claims, and eight concurrent writers whose every log row must
//! name its own end user.

use pg_storage_integration::{connect_as, fresh_db};
use std::thread;

const DB: &str = "itest_actor";

fn roles(c: &mut postgres::Client) {
    c.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_actor_pool') THEN CREATE ROLE itest_actor_pool LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_actor_alice') THEN CREATE ROLE itest_actor_alice LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_actor_bob') THEN CREATE ROLE itest_actor_bob LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itest_actor_web') THEN CREATE ROLE itest_actor_web NOLOGIN; END IF;
         END $$;
         GRANT itest_actor_alice, itest_actor_bob, itest_actor_web TO itest_actor_pool;",
    )
    .expect("roles");
}

#[test]
fn a_pooled_connection_records_each_transactions_end_user() {
    let mut admin = fresh_db(DB);
    roles(&mut admin);
    admin
        .batch_execute(
            "CREATE TABLE articles (id int PRIMARY KEY, title text NOT NULL);
             GRANT SELECT, INSERT, UPDATE, DELETE ON articles TO itest_actor_alice, itest_actor_bob, itest_actor_web;
             SELECT audit.enable('articles');",
        )
        .expect("set-up");
    // one pooled connection, three requests
    let mut pool = connect_as(DB, "itest_actor_pool");
    pool.batch_execute(
        "BEGIN;
         SET LOCAL ROLE itest_actor_alice;
         SET LOCAL app.user_id = 'alice';
         INSERT INTO articles VALUES (1, 'by alice');
         COMMIT;
         BEGIN;
         SET LOCAL ROLE itest_actor_bob;
         SET LOCAL app.user_id = 'bob';
         UPDATE articles SET title = 'by bob' WHERE id = 1;
         COMMIT;
         BEGIN;
         SET LOCAL ROLE itest_actor_web;
         SELECT set_config('request.jwt.claims', '{\"sub\": \"carol\", \"role\": \"itest_actor_web\"}', true);
         INSERT INTO articles VALUES (2, 'by carol');
         COMMIT;",
    )
    .expect("requests through the pool");
    // the pool between requests: nothing set any more (a statement of its own: in one simple
    // query string, a later BEGIN would take it into the rolled-back block)
    pool.batch_execute("INSERT INTO articles VALUES (3, 'by the pool itself')")
        .expect("the pool's own insert");
    pool.batch_execute(
        "BEGIN;
         SET LOCAL app.user_id = 'mallory';
         DELETE FROM articles;
         ROLLBACK;",
    )
    .expect("a rolled-back request");
    let rows: Vec<(String, String, String, Option<String>)> = admin
        .query(
            "SELECT op, pk::text, role_name::text, actor::text FROM audit.log
              WHERE table_name = 'articles' ORDER BY id",
            &[],
        )
        .expect("log")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let want = [
        (
            "INSERT",
            r#"{"id": 1}"#,
            "itest_actor_alice",
            Some(r#"{"app.user_id": "alice"}"#),
        ),
        (
            "UPDATE",
            r#"{"id": 1}"#,
            "itest_actor_bob",
            Some(r#"{"app.user_id": "bob"}"#),
        ),
        (
            "INSERT",
            r#"{"id": 2}"#,
            "itest_actor_web",
            Some(r#"{"request.jwt.claims": {"sub": "carol", "role": "itest_actor_web"}}"#),
        ),
        ("INSERT", r#"{"id": 3}"#, "itest_actor_pool", None),
    ];
    let want: Vec<(String, String, String, Option<String>)> = want
        .iter()
        .map(|(a, b, c, d)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(rows, want);
    // the rolled-back request left no context and no row
    let mallory: i64 = admin
        .query_one(
            "SELECT count(*) FROM audit._log_context WHERE actor @> '{\"app.user_id\": \"mallory\"}'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(mallory, 0);
    // the pool may not choose which settings are recorded
    let err = pool
        .batch_execute("SET pg_storage_ext.audit_actor_settings = ''")
        .expect_err("an ordinary role must not hide its actor");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    // per role, by a superuser: the pool's sessions record app.tenant only
    admin
        .batch_execute("ALTER ROLE itest_actor_pool IN DATABASE itest_actor SET pg_storage_ext.audit_actor_settings = 'app.tenant'")
        .unwrap();
    let mut pool = connect_as(DB, "itest_actor_pool");
    pool.batch_execute(
        "BEGIN; SET LOCAL ROLE itest_actor_alice; SET LOCAL app.tenant = 'acme'; SET LOCAL app.user_id = 'alice';
         INSERT INTO articles VALUES (4, 'tenant'); COMMIT;",
    )
    .unwrap();
    let actor: String = admin
        .query_one(
            "SELECT actor::text FROM audit.log WHERE pk = '{\"id\": 4}'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(actor, r#"{"app.tenant": "acme"}"#);
    admin
        .batch_execute("ALTER ROLE itest_actor_pool IN DATABASE itest_actor RESET pg_storage_ext.audit_actor_settings")
        .unwrap();
}

#[test]
fn eight_concurrent_writers_each_record_their_own_actor() {
    let mut admin = fresh_db("itest_actor8");
    roles(&mut admin);
    admin
        .batch_execute(
            "CREATE TABLE posts (id int PRIMARY KEY, writer text NOT NULL, n int NOT NULL DEFAULT 0);
             GRANT SELECT, INSERT, UPDATE, DELETE ON posts TO itest_actor_pool;
             SELECT audit.enable('posts');",
        )
        .expect("set-up");
    let writers: Vec<_> = (0..8)
        .map(|w| {
            thread::spawn(move || {
                let mut c = connect_as("itest_actor8", "itest_actor_pool");
                for i in 0..60 {
                    let user = format!("u{w}-{i}");
                    let id = w * 1000 + i;
                    let end = if i % 7 == 3 { "ROLLBACK" } else { "COMMIT" };
                    c.batch_execute(&format!(
                        "BEGIN;
                         SET LOCAL app.user_id = '{user}';
                         INSERT INTO posts VALUES ({id}, '{user}');
                         UPDATE posts SET writer = '{user}', n = n + 1 WHERE id = {prev};
                         {end};",
                        prev = if i > 0 { id - 1 } else { id },
                    ))
                    .expect("a writer's transaction");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let (rows, wrong): (i64, i64) = {
        let r = admin
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE actor ->> 'app.user_id' IS DISTINCT FROM
                                                   coalesce(new_row ->> 'writer', old_row ->> 'writer'))
                   FROM audit.log WHERE table_name = 'posts'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    // 8 writers x 60 transactions, every 7th (from the 4th) rolled back; each kept one logs its
    // INSERT and an UPDATE of the writer's previous row when that one was kept (the first
    // transaction's UPDATE is of its own row)
    let rolled = |i: i64| i % 7 == 3;
    let per_writer: i64 = (0..60)
        .filter(|&i| !rolled(i))
        .map(|i| if i == 0 || !rolled(i - 1) { 2 } else { 1 })
        .sum();
    assert_eq!(rows, 8 * per_writer, "log rows");
    assert_eq!(
        wrong, 0,
        "log rows whose actor is not the transaction's own"
    );
    let rolled_back: i64 = admin
        .query_one(
            "SELECT count(*) FROM audit._log_context c
              WHERE c.actor ->> 'app.user_id' IN (SELECT format('u%s-%s', w, i) FROM generate_series(0, 7) w,
                                                         generate_series(0, 59) i WHERE i % 7 = 3)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rolled_back, 0, "contexts of rolled-back transactions");
}
