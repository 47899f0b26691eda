//! storage.progress and the per-batch NOTICEs of a long operation, seen from another session;
//! a cancelled operation's row goes away.

use pg_storage_integration::{connect, fresh_db, port, wait_for};
use postgres::{Client, Config, NoTls};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rows of storage.progress for a backend.
fn rows_of(watcher: &mut Client, pid: i32) -> i64 {
    watcher
        .query_one(
            "SELECT count(*) FROM storage.progress WHERE pid = $1",
            &[&pid],
        )
        .unwrap()
        .get(0)
}

fn setup(name: &str) -> Client {
    let mut db = fresh_db(name);
    db.batch_execute(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, tsv tsvector);
         INSERT INTO docs SELECT g, 'the quick brown fox ' || g FROM generate_series(1, 200000) g;
         ANALYZE docs;
         SELECT storage.enable_search('docs', 'tsv', 'english', '{\"body\": \"A\"}');",
    )
    .expect("a searchable table of 200k rows");
    db
}

#[test]
fn a_rebuild_reports_progress_to_other_sessions_and_notices() {
    let _db = setup("itest_progress");
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&notices);
    let worker = std::thread::spawn(move || {
        let mut c = Config::new()
            .host("127.0.0.1")
            .port(port())
            .user("postgres")
            .dbname("itest_progress")
            .notice_callback(move |n| seen.lock().unwrap().push(n.message().to_owned()))
            .connect(NoTls)
            .expect("connect");
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        let rows: i64 = c
            .query_one("SELECT storage.rebuild_search('docs', 'tsv', 1000)", &[])
            .expect("rebuild")
            .get(0);
        (pid, rows)
    });
    let mut watcher = connect("itest_progress");
    let mut samples: Vec<(i64, Option<i64>, String)> = Vec::new();
    for _ in 0..600 {
        let rows = watcher
            .query(
                "SELECT rows_done, rows_total, operation FROM storage.progress WHERE database = current_database()",
                &[],
            )
            .unwrap();
        for r in rows {
            samples.push((r.get(0), r.get(1), r.get(2)));
        }
        if worker.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (pid, rows) = worker.join().unwrap();
    assert_eq!(rows, 200_000);
    let done: Vec<i64> = samples
        .iter()
        .filter(|s| s.2 == "rebuild_search")
        .map(|s| s.0)
        .collect();
    assert!(
        done.len() >= 3,
        "the watcher saw the rebuild run: {samples:?}"
    );
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "rows_done only grows"
    );
    assert!(
        done.last().unwrap() > done.first().unwrap(),
        "rows_done grew"
    );
    let total = samples.iter().find_map(|s| s.1).expect("an estimate");
    assert!(
        (150_000..=250_000).contains(&total),
        "rows_total is the estimate: {total}"
    );
    // the NOTICEs: one a second at most, after the first second
    let notices = notices.lock().unwrap().clone();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("rebuild_search public.docs (block ") && n.contains("of about")),
        "{notices:?}"
    );
    // gone once it ended
    let left = rows_of(&mut watcher, pid);
    assert_eq!(left, 0);
}

#[test]
fn a_cancelled_operation_leaves_no_row() {
    let _db = setup("itest_progress_cancel");
    let worker = std::thread::spawn(|| {
        let mut c = connect("itest_progress_cancel");
        c.query_one("SELECT storage.rebuild_search('docs', 'tsv', 500)", &[])
            .map(|_| ())
            .map_err(|e| e.code().cloned())
    });
    let mut watcher = connect("itest_progress_cancel");
    let pid = wait_for(Duration::from_secs(30), || {
        watcher
            .query_opt(
                "SELECT pid FROM storage.progress WHERE operation = 'rebuild_search' AND database = current_database() AND rows_done > 0",
                &[],
            )
            .ok()?
            .map(|r| r.get::<_, i32>(0))
    })
    .expect("the rebuild shows in storage.progress");
    watcher
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap();
    let outcome = worker.join().unwrap();
    assert_eq!(
        outcome,
        Err(Some(postgres::error::SqlState::QUERY_CANCELED)),
        "the rebuild was cancelled"
    );
    let left = rows_of(&mut watcher, pid);
    assert_eq!(left, 0, "the cancelled operation's row is gone");
}
