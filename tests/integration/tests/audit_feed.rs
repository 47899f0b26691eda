//! The audit change feed (issue 40): under 8 writers (short and long transactions, a tenth rolled
//! back, rows updated by several transactions, deletes, a partitioned table and a row moved
//! between its partitions) two consumers, one killed twice, each see every committed change
//! exactly once, no rolled-back one, whole transactions, every key's changes in commit order, and
//! together the very rows of audit.log; LISTEN wakes a consumer at a commit; retention keeps what
//! a lagging feed has not acknowledged until the feed passes pg_storage_ext.audit_feed_max_lag;
//! and a feed is its owner's alone.

use pg_storage_integration::{
    connect, connect_as, count, describe, fresh_db, sqlstate, DroppedAtEnd,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The notifications `l` receives within `wait` (at most `max`): (channel, payload).
fn notes(l: &mut Client, wait: Duration, max: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = l.notifications();
    let mut it = n.timeout_iter(wait);
    while out.len() < max {
        match it.next().expect("notifications") {
            Some(x) => out.push((x.channel().to_owned(), x.payload().to_owned())),
            None => break,
        }
    }
    out
}

/// xorshift: the writers' choices, reproducible per writer.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One writer's transactions until `stop`: the txids it rolled back are returned.
fn writer(db: &str, seed: u64, stop: Arc<AtomicBool>) -> Vec<i64> {
    let mut c = connect(db);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut rolled_back = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut tx = c.transaction().expect("begin");
        let statements = 1 + rng.next(4);
        let long = rng.next(10) == 0;
        let mut failed = false;
        for _ in 0..statements {
            let id = 1 + rng.next(200) as i32;
            let r = match rng.next(7) {
                0 => tx.execute(
                    "INSERT INTO accounts VALUES ($1, 0) ON CONFLICT (id) DO UPDATE SET v = accounts.v + 1",
                    &[&id],
                ),
                1 | 2 => tx.execute("UPDATE accounts SET v = v + 1 WHERE id = $1", &[&id]),
                3 => tx.execute("DELETE FROM accounts WHERE id = $1", &[&id]),
                4 => tx.execute(
                    "INSERT INTO events (region, id, v) VALUES ('eu', nextval('ev'), $1)",
                    &[&id],
                ),
                5 => tx.execute(
                    "UPDATE events SET v = v + 1 WHERE id IN (SELECT id FROM events ORDER BY id DESC LIMIT 3)",
                    &[],
                ),
                // a row moved between partitions
                _ => tx.execute(
                    "UPDATE events SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END \
                      WHERE id = (SELECT max(id) FROM events)",
                    &[],
                ),
            };
            if let Err(e) = r {
                // a deadlock between two writers: this transaction is rolled back
                // (or a row moved to the other partition under it)
                assert!(
                    matches!(e.code().map(|s| s.code()), Some("40P01" | "40001")),
                    "{}",
                    describe(&e)
                );
                failed = true;
                break;
            }
            if long {
                thread::sleep(Duration::from_millis(50 + rng.next(300)));
            }
        }
        if failed {
            drop(tx);
            continue;
        }
        if rng.next(10) == 0 {
            let x: Option<i64> = tx
                .query_one("SELECT pg_current_xact_id_if_assigned()::text::bigint", &[])
                .expect("xid")
                .get(0);
            tx.rollback().expect("rollback");
            rolled_back.extend(x);
        } else {
            tx.commit().expect("commit");
        }
    }
    rolled_back
}

/// One consumer's loop: read, keep the rows in its sink and acknowledge, in one transaction, until
/// two empty reads begun after `done`. A kill (the backend terminated) reconnects and goes on.
fn consumer(db: &str, feed: &str, done: Arc<AtomicBool>, pid: Arc<AtomicI64>, kills: &AtomicI64) {
    let mut empty = 0;
    let mut batch = 0i64;
    'connect: loop {
        let mut c = connect(db);
        let p: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        pid.store(i64::from(p), Ordering::SeqCst);
        loop {
            batch += 1;
            // (only a read begun after the writers finished can say that nothing is left)
            let after_done = done.load(Ordering::SeqCst);
            let r = (|| -> Result<i64, postgres::Error> {
                let mut tx = c.transaction()?;
                let row = tx.query_one(
                    "WITH r AS (SELECT * FROM audit.read_feed($1, 300)),
                          i AS (INSERT INTO sink (feed, batch, position, txid, table_name, op, key, old_row, new_row)
                                SELECT $1, $2, r.position, r.txid, r.table_name::text, r.op, r.key, r.old_row, r.new_row FROM r
                                RETURNING position)
                     SELECT count(*), coalesce(max(position), -1) FROM i",
                    &[&feed, &batch],
                )?;
                let (n, last): (i64, i64) = (row.get(0), row.get(1));
                if n > 0 {
                    tx.execute("SELECT audit.ack_feed($1, $2)", &[&feed, &last])?;
                }
                tx.commit()?;
                Ok(n)
            })();
            match r {
                Ok(0) => {
                    if after_done {
                        empty += 1;
                        if empty >= 2 {
                            return;
                        }
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(_) => empty = 0,
                Err(e) => {
                    // the connection gone (terminated), not an error of the feed
                    assert!(
                        e.as_db_error().is_none() || e.code().map(|s| s.code()) == Some("57P01"),
                        "consumer {feed}: {}",
                        describe(&e)
                    );
                    kills.fetch_add(1, Ordering::SeqCst);
                    continue 'connect;
                }
            }
        }
    }
}

#[test]
fn feed_delivers_every_commit_once_in_order() {
    const DB: &str = "itest_audit_feed";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 200) g;
         CREATE SEQUENCE ev;
         CREATE TABLE events (region text, id bigint, v int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
         CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
         CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
         INSERT INTO events SELECT 'eu', nextval('ev'), 0 FROM generate_series(1, 20);
         SELECT audit.enable('accounts');
         SELECT audit.enable('events');
         CREATE TABLE sink (ord bigserial PRIMARY KEY, feed text, batch bigint, position bigint, txid bigint,
                            table_name text, op text, key jsonb, old_row jsonb, new_row jsonb);
         SELECT audit.create_feed('c1');
         SELECT audit.create_feed('c2', ARRAY['accounts', 'events']::regclass[]);",
    )
    .expect("setup");
    let since: i64 = c
        .query_one("SELECT coalesce(max(id), 0) FROM audit.log", &[])
        .unwrap()
        .get(0);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicI64::new(0));
    let pids: Vec<Arc<AtomicI64>> = (0..2).map(|_| Arc::new(AtomicI64::new(0))).collect();
    let consumers: Vec<_> = ["c1", "c2"]
        .iter()
        .zip(&pids)
        .map(|(f, pid)| {
            let (f, done, pid, kills) = (f.to_string(), done.clone(), pid.clone(), kills.clone());
            thread::spawn(move || consumer(DB, &f, done, pid, &kills))
        })
        .collect();
    let writers: Vec<_> = (0..8u64)
        .map(|i| {
            let stop = stop.clone();
            thread::spawn(move || writer(DB, i + 1, stop))
        })
        .collect();
    // c1 is killed twice while the writers run
    let secs: u64 = std::env::var("PGSE_FEED_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let start = Instant::now();
    for at in [secs / 3, 2 * secs / 3] {
        while start.elapsed() < Duration::from_secs(at) {
            thread::sleep(Duration::from_millis(100));
        }
        let pid = pids[0].load(Ordering::SeqCst);
        let killed: bool = c
            .query_one("SELECT pg_terminate_backend($1::bigint::int)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed, "consumer c1 ({pid}) was not there to kill");
    }
    while start.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    let rolled_back: Vec<i64> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    done.store(true, Ordering::SeqCst);
    for t in consumers {
        t.join().expect("consumer");
    }
    assert!(kills.load(Ordering::SeqCst) >= 2, "c1 was killed twice");
    assert!(
        !rolled_back.is_empty(),
        "some transactions were rolled back"
    );

    let log = format!(
        "SELECT l.txid::text::bigint AS txid, l.table_oid::regclass::text AS table_name, l.op, l.pk AS key,
                l.old_row, CASE WHEN l.op = 'UPDATE' THEN l.old_row || l.new_row ELSE l.new_row END AS new_row, l.id
           FROM audit.log l WHERE l.id > {since} AND l.op IN ('INSERT', 'UPDATE', 'DELETE')"
    );
    let changes = count(&mut c, &format!("SELECT count(*) FROM ({log}) l"));
    assert!(
        changes > 20 * secs as i64,
        "the writers made {changes} changes in {secs} s"
    );
    for feed in ["c1", "c2"] {
        let f = format!("SELECT * FROM sink WHERE feed = '{feed}'");
        // the set equals audit.log's for the period, each change exactly once
        let diff = count(
            &mut c,
            &format!(
                "SELECT count(*) FROM (
                   (SELECT txid, table_name, op, key, old_row, new_row FROM ({f}) s EXCEPT ALL
                    SELECT txid, table_name, op, key, old_row, new_row FROM ({log}) l)
                   UNION ALL
                   (SELECT txid, table_name, op, key, old_row, new_row FROM ({log}) l EXCEPT ALL
                    SELECT txid, table_name, op, key, old_row, new_row FROM ({f}) s)) d"
            ),
        );
        assert_eq!(diff, 0, "{feed}: the changes read differ from audit.log's");
        assert_eq!(
            count(&mut c, &format!("SELECT count(*) FROM ({f}) s")),
            changes,
            "{feed}: every change exactly once"
        );
        // no rolled-back change
        let seen = count(
            &mut c,
            &format!(
                "SELECT count(*) FROM ({f}) s WHERE s.txid = ANY ('{{{}}}'::bigint[])",
                rolled_back
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        assert_eq!(seen, 0, "{feed}: a rolled-back change was delivered");
        // whole transactions: each transaction's changes came in one read, under one position
        assert_eq!(
            count(
                &mut c,
                &format!(
                    "SELECT count(*) FROM (SELECT txid FROM ({f}) s GROUP BY txid
                      HAVING count(DISTINCT batch) > 1 OR count(DISTINCT position) > 1) x"
                )
            ),
            0,
            "{feed}: a transaction split across reads"
        );
        // positions increase with the transactions, in the order they were read
        assert_eq!(
            count(
                &mut c,
                &format!(
                    "SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY ord) AS prev FROM ({f}) s) x
                      WHERE x.position < x.prev"
                )
            ),
            0,
            "{feed}: positions went back"
        );
        // every key's changes in their commit order (the log's order for one row)
        assert_eq!(
            count(
                &mut c,
                &format!(
                    "SELECT count(*) FROM
                       (SELECT table_name, key, array_agg(txid ORDER BY ord) AS a FROM ({f}) s GROUP BY 1, 2) s
                       FULL JOIN (SELECT table_name, key, array_agg(txid ORDER BY id) AS a FROM ({log}) l GROUP BY 1, 2) l
                       USING (table_name, key)
                      WHERE s.a IS DISTINCT FROM l.a"
                )
            ),
            0,
            "{feed}: a key's changes out of commit order"
        );
    }
    // a row moved between partitions is among them
    assert!(
        count(
            &mut c,
            "SELECT count(*) FROM sink WHERE table_name = 'events' AND op = 'UPDATE'
                AND old_row->>'region' <> new_row->>'region'"
        ) > 0,
        "a row moved between partitions"
    );
    // both feeds are caught up
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.feeds WHERE lag_changes > 0"
        ),
        0
    );
}

#[test]
fn listen_wakes_a_consumer_at_commit() {
    const DB: &str = "itest_audit_feed_listen";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
         SELECT audit.enable('a'); SELECT audit.enable('b');
         SELECT audit.create_feed('fa', ARRAY['a']::regclass[]);",
    )
    .unwrap();
    let mut l = connect(DB);
    l.batch_execute("LISTEN audit_feed").unwrap();
    // a table no feed reads: no notification
    c.batch_execute("INSERT INTO b VALUES (1)").unwrap();
    // a rolled-back change: none either (nor from a subtransaction rolled back)
    c.batch_execute("BEGIN; INSERT INTO a VALUES (0); ROLLBACK")
        .unwrap();
    let none = notes(&mut l, Duration::from_millis(500), 10);
    assert!(none.is_empty(), "{none:?}");
    // one transaction of three statements: one notification, the table's name, no row data
    c.batch_execute("BEGIN; INSERT INTO a VALUES (1); INSERT INTO a VALUES (2); UPDATE a SET id = 3 WHERE id = 2; COMMIT")
        .unwrap();
    let got = notes(&mut l, Duration::from_secs(5), 1);
    assert_eq!(got.len(), 1, "woken by the commit");
    assert_eq!(got[0], ("audit_feed".to_owned(), "public.a".to_owned()));
    let more = notes(&mut l, Duration::from_millis(300), 10);
    assert!(
        more.is_empty(),
        "one notification per transaction: {more:?}"
    );
    // a feed made later over all tables: b notifies at once (the capture's cached configuration
    // follows the feeds)
    c.batch_execute("SELECT audit.create_feed('all'); INSERT INTO b VALUES (2)")
        .unwrap();
    let got = notes(&mut l, Duration::from_secs(5), 1);
    assert_eq!(got.first().map(|n| n.1.as_str()), Some("public.b"));
    // a prepared transaction is announced at its COMMIT PREPARED
    let prepared: bool = c
        .query_one(
            "SELECT current_setting('max_prepared_transactions')::int > 0",
            &[],
        )
        .unwrap()
        .get(0);
    if prepared {
        c.batch_execute("BEGIN; INSERT INTO a VALUES (10); PREPARE TRANSACTION 'feed_2pc'")
            .unwrap();
        assert!(notes(&mut l, Duration::from_millis(300), 10).is_empty());
        c.batch_execute("COMMIT PREPARED 'feed_2pc'").unwrap();
        let got = notes(&mut l, Duration::from_secs(5), 1);
        assert_eq!(got.first().map(|n| n.1.as_str()), Some("public.a"));
        let rows = count(
            &mut c,
            "SELECT count(*) FROM audit.read_feed('fa') WHERE key = '{\"id\": 10}'",
        );
        assert_eq!(rows, 1, "the prepared transaction's change is read");
    }
    // the notifier is one background worker for the database, whatever starts it again
    c.batch_execute("SELECT audit._feed_notifier(), audit._feed_notifier()")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext feed notifier' AND datname = current_database()"
        ),
        1
    );
    // terminated (as by a restart), the next read starts it again
    c.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext feed notifier' AND datname = current_database()")
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    c.batch_execute("SELECT count(*) FROM audit.read_feed('fa')")
        .unwrap();
    c.batch_execute("INSERT INTO a VALUES (11)").unwrap();
    // (a notifier started anew announces the tables of every transaction since the oldest one
    // running when it was started: more than this change, never less)
    let got = notes(&mut l, Duration::from_secs(5), 10);
    assert!(got.iter().any(|n| n.1 == "public.a"), "{got:?}");
}

#[test]
fn retention_keeps_what_a_lagging_feed_needs() {
    const DB: &str = "itest_audit_feed_retention";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         SELECT audit.enable('t');
         SELECT audit.create_feed('lagging');
         INSERT INTO t VALUES (1, 'old');
         SELECT audit.set_retention('1 month');",
    )
    .unwrap();
    // the change, made three months old (as the extension owner, who alone may write the log):
    // it lands in the default partition, which maintenance drains into its month
    c.batch_execute(
        "UPDATE audit._log_row SET ts = ts - interval '3 months';
         UPDATE audit._log_statement SET ts = ts - interval '3 months';
         UPDATE audit._log_epoch SET since = since - interval '1 year';
         UPDATE audit._feed SET acked_snapshot_at = acked_snapshot_at - interval '3 months';",
    )
    .unwrap();
    let months = "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'audit._log_row'::regclass
                     AND c.relname NOT LIKE '%default%'
                     AND pg_get_expr(c.relpartbound, c.oid) LIKE '%' || to_char(now() - interval '3 months', 'YYYY-MM') || '%'";
    c.batch_execute(
        "SET pg_storage_ext.audit_feed_max_lag = '365d'; SELECT storage.run_maintenance();",
    )
    .unwrap();
    assert_eq!(count(&mut c, months), 1, "the month the feed needs is kept");
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM audit.read_feed('lagging')"),
        1
    );
    let check = "SELECT status || ' ' || value::text || ' ' || detail FROM storage.health() WHERE check_name = 'audit_feed_lag'";
    let h: String = c.query_one(check, &[]).unwrap().get(0);
    assert!(h.starts_with("ok 2"), "three months of 365 days: {h}");
    assert!(h.contains("lagging: 7"), "{h}");
    // past the limit the feed is broken, and the month goes
    c.batch_execute(
        "SET pg_storage_ext.audit_feed_max_lag = '30d'; SELECT storage.run_maintenance();",
    )
    .unwrap();
    assert_eq!(
        count(&mut c, months),
        0,
        "retention goes past a broken feed"
    );
    assert_eq!(
        sqlstate(&mut c, "SELECT * FROM audit.read_feed('lagging')"),
        "55000"
    );
    let h: String = c.query_one(check, &[]).unwrap().get(0);
    assert!(h.starts_with("critical 100"), "{h}");
    assert!(h.contains("broken"), "{h}");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.feeds WHERE name = 'lagging' AND broken"
        ),
        1
    );
    // a feed that keeps up is never broken by the limit
    c.batch_execute("SELECT audit.drop_feed('lagging'); SELECT audit.create_feed('fresh'); INSERT INTO t VALUES (2, 'new')")
        .unwrap();
    let n = count(&mut c, "SELECT count(*) FROM audit.read_feed('fresh')");
    assert_eq!(n, 1);
    c.batch_execute("SELECT audit.ack_feed('fresh', 1); SELECT storage.run_maintenance();")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM audit.feeds WHERE broken"),
        0
    );
}

#[test]
fn a_feed_is_its_owners_alone() {
    const DB: &str = "itest_audit_feed_security";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'feed_alice') THEN CREATE ROLE feed_alice LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'feed_bob') THEN CREATE ROLE feed_bob LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'feed_mallory') THEN CREATE ROLE feed_mallory LOGIN; END IF;
         END $$;
         GRANT audit_reader TO feed_alice, feed_bob;
         CREATE TABLE pub (id int PRIMARY KEY, v text);
         CREATE TABLE secret (id int PRIMARY KEY, v text);
         GRANT SELECT ON pub TO feed_alice, feed_bob;
         GRANT SELECT ON secret TO feed_alice;
         SELECT audit.enable('pub'); SELECT audit.enable('secret');",
    )
    .unwrap();
    let mut alice = connect_as(DB, "feed_alice");
    let mut bob = connect_as(DB, "feed_bob");
    let mut mallory = connect_as(DB, "feed_mallory");
    // an ordinary role: no feed, and not a word of anyone's
    assert_eq!(
        sqlstate(&mut mallory, "SELECT audit.create_feed('m')"),
        "42501"
    );
    assert_eq!(sqlstate(&mut mallory, "SELECT * FROM audit.feeds"), "42501");
    assert_eq!(sqlstate(&mut mallory, "SELECT * FROM audit._feed"), "42501");
    alice
        .batch_execute(
            "SELECT audit.create_feed('alices'); SELECT audit.create_feed('alices_pub', '{pub}')",
        )
        .unwrap();
    c.batch_execute("INSERT INTO pub VALUES (1, 'p'); INSERT INTO secret VALUES (1, 's')")
        .unwrap();
    // bob: without SELECT on secret, no feed over it (nor over every table)
    assert_eq!(
        sqlstate(&mut bob, "SELECT audit.create_feed('b', '{secret}')"),
        "42501"
    );
    // (a feed over every table he may read is his to make)
    bob.batch_execute("SELECT audit.create_feed('bobs_all'); SELECT audit.drop_feed('bobs_all')")
        .unwrap();
    // a name taken by another role's feed: refused without saying whose
    assert_eq!(
        sqlstate(&mut bob, "SELECT audit.create_feed('alices', '{pub}')"),
        "42710"
    );
    // alice's feed is not bob's to read, acknowledge, drop or see
    for sql in [
        "SELECT * FROM audit.read_feed('alices')",
        "SELECT audit.ack_feed('alices', 0)",
        "SELECT audit.drop_feed('alices')",
    ] {
        assert_eq!(sqlstate(&mut bob, sql), "42704", "{sql}");
    }
    assert_eq!(count(&mut bob, "SELECT count(*) FROM audit.feeds"), 0);
    assert_eq!(count(&mut bob, "SELECT count(*) FROM audit._feed"), 0);
    // nor to write any feed row, his own included, nor to lock the feeds against the others
    for sql in [
        "UPDATE audit._feed SET acked_snapshot = '3:3:', tables = NULL",
        "DELETE FROM audit._feed_window",
        "INSERT INTO audit._feed (name, owner, acked_snapshot) VALUES ('forged', 'feed_bob'::regrole, pg_current_snapshot())",
        "BEGIN; LOCK audit._feed IN ACCESS EXCLUSIVE MODE",
        "BEGIN; LOCK audit._feed_window IN SHARE MODE",
        "SELECT * FROM audit._feed FOR UPDATE",
        // the owner's side of the gate, which takes any caller
        "SELECT * FROM audit._feed_act('drop', 'alices', NULL, NULL, NULL, 'feed_alice'::regrole)",
    ] {
        assert_eq!(sqlstate(&mut bob, sql), "42501", "{sql}");
        bob.batch_execute("ROLLBACK").unwrap();
    }
    // bob's own feed over pub: when he loses SELECT on it, reading it is refused, never skipped
    bob.batch_execute("SELECT audit.create_feed('bobs', '{pub}')")
        .unwrap();
    c.batch_execute("REVOKE SELECT ON pub FROM feed_bob")
        .unwrap();
    assert_eq!(
        sqlstate(&mut bob, "SELECT * FROM audit.read_feed('bobs')"),
        "42501"
    );
    c.batch_execute("GRANT SELECT ON pub TO feed_bob").unwrap();
    // the internals that read the log as its owner are not for a role without audit_reader,
    // nor every feed's status for a reader that is no monitoring role
    for sql in [
        "SELECT * FROM audit._feed_changes('{1}', '{1}', '{now}', NULL)",
        "SELECT * FROM audit._feed_status()",
        "SELECT audit._feed_mark_broken()",
        "SELECT audit._feed_keep()",
        "SELECT * FROM audit._feed_gate('create', 'm', NULL, NULL, 'now')",
    ] {
        assert_eq!(sqlstate(&mut mallory, sql), "42501", "{sql}");
    }
    for sql in [
        "SELECT audit._feed_mark_broken()",
        "SELECT * FROM audit._feed_status()",
    ] {
        assert_eq!(sqlstate(&mut bob, sql), "42501", "{sql}");
    }
    // at most 32 feeds a role
    bob.batch_execute(
        "SELECT audit.create_feed('bob' || g, '{pub}') FROM generate_series(2, 32) g",
    )
    .unwrap();
    assert_eq!(
        sqlstate(&mut bob, "SELECT audit.create_feed('bob33', '{pub}')"),
        "54000"
    );
    // a dropped owner's feeds go at the next maintenance
    c.batch_execute(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'feed_gone') THEN CREATE ROLE feed_gone LOGIN; END IF;
         END $$;
         GRANT audit_reader TO feed_gone; GRANT SELECT ON pub TO feed_gone;",
    )
    .unwrap();
    connect_as(DB, "feed_gone")
        .batch_execute("SELECT audit.create_feed('gone', '{pub}')")
        .unwrap();
    c.batch_execute("REVOKE SELECT ON pub FROM feed_gone; REVOKE audit_reader FROM feed_gone; DROP ROLE feed_gone; SELECT audit._feed_mark_broken()")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit._feed WHERE name = 'gone'"
        ),
        0
    );
    // alice reads her feed: the change of each table once, whole
    assert_eq!(
        count(&mut alice, "SELECT count(*) FROM audit.read_feed('alices')"),
        2
    );
    assert_eq!(
        count(
            &mut alice,
            "SELECT count(*) FROM audit.read_feed('alices_pub') WHERE table_name = 'pub'::regclass"
        ),
        1
    );
    // bad arguments: SQLSTATEs, never a crash
    for (sql, state) in [
        ("SELECT * FROM audit.read_feed('alices', 0)", "22023"),
        ("SELECT * FROM audit.read_feed('alices', NULL)", "22023"),
        ("SELECT audit.ack_feed('alices', -1)", "22023"),
        ("SELECT audit.ack_feed('alices', 999999)", "22023"),
        ("SELECT audit.ack_feed('alices', NULL)", "22023"),
        ("SELECT audit.create_feed('x', '{}')", "22023"),
        ("SELECT audit.create_feed('x', '{pub,NULL}')", "22023"),
        ("SELECT audit.create_feed('x', NULL, 'yesterday')", "22023"),
        ("SELECT audit.create_feed(repeat('x', 64))", "22023"),
        ("SELECT audit.create_feed('a b')", "22023"),
        ("SELECT audit.create_feed(NULL)", "22023"),
        ("SELECT * FROM audit.read_feed(NULL)", "42704"),
        ("SELECT * FROM audit.read_feed('nope')", "42704"),
    ] {
        assert_eq!(sqlstate(&mut alice, sql), state, "{sql}");
    }
    c.batch_execute("CREATE TABLE plain (id int PRIMARY KEY); GRANT SELECT ON plain TO feed_alice")
        .unwrap();
    assert_eq!(
        sqlstate(&mut alice, "SELECT audit.create_feed('x', '{plain}')"),
        "22023"
    );
    // a table audited later that alice may not read: her all-tables feed leaves its changes
    // out (an owner auditing a table stops nobody's feed), and reads the others'
    c.batch_execute(
        "CREATE TABLE later (id int PRIMARY KEY); SELECT audit.enable('later');
         INSERT INTO later VALUES (1); INSERT INTO pub VALUES (2, 'q');",
    )
    .unwrap();
    alice
        .batch_execute("SELECT audit.ack_feed('alices', (SELECT max(position) FROM audit.read_feed('alices')))")
        .unwrap();
    let seen: String = alice
        .query_one(
            "SELECT coalesce(string_agg(DISTINCT table_name::text, ','), '') FROM audit.read_feed('alices')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!seen.contains("later"), "{seen}");
    alice
        .batch_execute("SELECT audit.drop_feed('alices')")
        .unwrap();
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit._feed"), 33);
    // a TRUNCATE comes as its removed rows and its statement row, whose old_row counts them
    alice
        .batch_execute("SELECT audit.ack_feed('alices_pub', (SELECT max(position) FROM audit.read_feed('alices_pub')))")
        .unwrap();
    c.batch_execute("TRUNCATE pub").unwrap();
    let t: String = alice
        .query_one(
            "SELECT string_agg(op || ':' || coalesce(key::text, old_row::text), ' ' ORDER BY position, op DESC)
               FROM audit.read_feed('alices_pub') WHERE op = 'TRUNCATE'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        t,
        r#"TRUNCATE:{"rows": 2} TRUNCATE:{"id": 1} TRUNCATE:{"id": 2}"#
    );
}

/// Log rows restored from another cluster's dump carry transaction ids this cluster assigns again:
/// they are history, never a feed's changes (audit._log_epoch, set anew by the restore).
#[test]
fn restored_rows_are_not_changes() {
    const DB: &str = "itest_audit_feed_epoch";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY);
         SELECT audit.enable('t');
         INSERT INTO t VALUES (0);",
    )
    .unwrap();
    c.batch_execute("SELECT audit.create_feed('f')").unwrap();
    // twenty restored statements, logged before the extension was created here, under the
    // transaction ids this cluster assigns next
    c.batch_execute(
        "INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, detail)
         SELECT nextval('audit.log_id_seq'), audit._feed_epoch() - interval '1 day',
                ((pg_current_xact_id()::text::bigint + g)::text)::xid8, 't'::regclass, 'DDL',
                (SELECT context FROM audit._log_statement WHERE table_oid = 't'::regclass LIMIT 1),
                '{\"command_tag\": \"restored\"}'
           FROM generate_series(1, 20) g",
    )
    .unwrap();
    for i in 1..=20 {
        c.execute("INSERT INTO t VALUES ($1)", &[&i]).unwrap();
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.read_feed('f', 100000) WHERE op = 'INSERT'"
        ),
        20
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.read_feed('f', 100000) WHERE op = 'DDL'"
        ),
        0,
        "a restored row was delivered as a change"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.feeds WHERE lag_changes <> 20"
        ),
        0
    );
}

/// A table attached as a partition with rows brings them in without a row change: the log says
/// so with a DDL row (which a feed delivers), unless the extension's own maintenance moved them in
/// from the default partition.
#[test]
fn rows_attached_with_a_partition_are_said() {
    const DB: &str = "itest_audit_feed_attach";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE pt (id int, r int, PRIMARY KEY (id, r)) PARTITION BY LIST (r);
         CREATE TABLE pt1 PARTITION OF pt FOR VALUES IN (1);
         SELECT audit.enable('pt');",
    )
    .unwrap();
    c.batch_execute("SELECT audit.create_feed('f')").unwrap();
    c.batch_execute(
        "CREATE TABLE pt3 (id int, r int, PRIMARY KEY (id, r));
         INSERT INTO pt3 VALUES (5, 3);
         ALTER TABLE pt ATTACH PARTITION pt3 FOR VALUES IN (3);
         CREATE TABLE pt4 (id int, r int, PRIMARY KEY (id, r));
         ALTER TABLE pt ATTACH PARTITION pt4 FOR VALUES IN (4);",
    )
    .unwrap();
    let got: String = c
        .query_one(
            "SELECT string_agg(op || ' ' || coalesce(new_row->>'attached', '-'), '; ' ORDER BY position)
               FROM audit.read_feed('f')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(got, r#"DDL ["public.pt3"]"#);
}

/// Retention and the limit (pg_storage_ext.audit_feed_max_lag) hold only for feeds a change waits
/// for: a feed over a quiet table, or from the beginning over nothing, holds nothing; a feed
/// follows its table through storage.convert_to_partitioned.
#[test]
fn quiet_feeds_hold_nothing_and_feeds_follow_their_table() {
    const DB: &str = "itest_audit_feed_quiet";
    let _gone = DroppedAtEnd(DB);
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE quiet (id int PRIMARY KEY);
         CREATE TABLE busy (id int PRIMARY KEY);
         SELECT audit.enable('quiet'); SELECT audit.enable('busy');",
    )
    .unwrap();
    c.batch_execute(
        "SELECT audit.create_feed('q', '{quiet}'); SELECT audit.create_feed('qb', '{quiet}', 'beginning');",
    )
    .unwrap();
    c.batch_execute(
        "INSERT INTO busy VALUES (1);
         UPDATE audit._feed SET acked_snapshot_at = acked_snapshot_at - interval '1 year';",
    )
    .unwrap();
    let keep: Option<String> = c
        .query_one("SELECT audit._feed_keep()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(keep, None, "a feed nothing waits for holds nothing");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.feeds WHERE lag_seconds > 0"
        ),
        0
    );
    // a change of the quiet table, a second old: a second of lag, not a year
    c.batch_execute("INSERT INTO quiet VALUES (1)").unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM audit.feeds WHERE lag_seconds BETWEEN 0 AND 60 AND lag_changes = 1"
        ),
        2
    );
    // the table converted to a partitioned one: the feed reads the new one
    c.batch_execute(
        "SELECT audit.ack_feed('q', (SELECT max(position) FROM audit.read_feed('q')));
         CREATE TABLE conv (id int PRIMARY KEY, k int NOT NULL);
         SELECT audit.enable('conv');",
    )
    .unwrap();
    c.batch_execute("SELECT audit.create_feed('cv', '{conv}')")
        .unwrap();
    c.batch_execute(
        "INSERT INTO conv SELECT g, g FROM generate_series(1, 10) g;
         SELECT storage.convert_to_partitioned('conv', 'k', '100');",
    )
    .unwrap();
    c.batch_execute("INSERT INTO conv VALUES (11, 11)").unwrap();
    let ops: String = c
        .query_one(
            "SELECT string_agg(op || coalesce(':' || (key->>'id'), ''), ' ' ORDER BY position)
               FROM audit.read_feed('cv', 100000) WHERE op <> 'DDL'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ops.ends_with("INSERT:11"), "{ops}");
}
