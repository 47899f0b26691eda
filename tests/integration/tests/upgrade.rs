//! The upgrade path: 0.1.0 installed from its frozen script on the current library, loaded with
//! users' data, then `ALTER EXTENSION pg_storage_ext UPDATE`. The updated catalog must equal a
//! fresh `CREATE EXTENSION` of the current version (tests/integration/sql/fingerprint.sql, every
//! difference printed), and the data and behaviour loaded before the update must be intact.

use pg_storage_integration::{empty_db, fresh_db};
use postgres::Client;
use std::collections::BTreeSet;

const FINGERPRINT: &str = include_str!("../sql/fingerprint.sql");
/// The first released version, frozen in sql/pg_storage_ext--0.1.0.sql.
const FIRST_RELEASE: &str = "0.1.0";

fn fingerprint(c: &mut Client) -> BTreeSet<String> {
    c.query(FINGERPRINT, &[])
        .expect("fingerprint query")
        .iter()
        .map(|r| {
            let (k, o, d): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            format!("{k} {o}: {d}")
        })
        .collect()
}

fn one<T: for<'a> postgres::types::FromSql<'a>>(c: &mut Client, sql: &str) -> T {
    c.query_one(sql, &[]).expect(sql).get(0)
}

/// A database with 0.1.0 installed from the frozen script and data loaded into every capability.
fn old_db(name: &str) -> Client {
    let mut c = empty_db(name);
    c.batch_execute(&format!(
        "CREATE EXTENSION pg_storage_ext VERSION '{FIRST_RELEASE}'"
    ))
    .expect("CREATE EXTENSION from the frozen 0.1.0 script (every C symbol it names must exist)");
    c.batch_execute(
        r#"
        -- audit: a table with history. Its capture as 0.1.0's audit.enable left it (this library
        -- refuses to configure capture in a database whose SQL is older; capture itself goes on)
        CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL);
        SELECT audit._ensure_log();
        CREATE TRIGGER audit_capture_insert AFTER INSERT ON accounts REFERENCING NEW TABLE AS pg_storage_ext_new
            FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'owner');
        CREATE TRIGGER audit_capture_update AFTER UPDATE ON accounts
            REFERENCING OLD TABLE AS pg_storage_ext_old NEW TABLE AS pg_storage_ext_new
            FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'owner');
        CREATE TRIGGER audit_capture_delete AFTER DELETE ON accounts REFERENCING OLD TABLE AS pg_storage_ext_old
            FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'owner');
        CREATE TRIGGER audit_capture_truncate AFTER TRUNCATE ON accounts
            FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'owner');
        INSERT INTO audit._tracked (table_name, exclude_columns, capture_query, table_oids)
        VALUES ('accounts', '{owner}', false, ARRAY['accounts'::regclass::oid]);
        INSERT INTO accounts SELECT g, 'o' || g, g * 10 FROM generate_series(1, 20) g;
        UPDATE accounts SET balance = balance + 1 WHERE id <= 5;
        DELETE FROM accounts WHERE id = 20;
        UPDATE accounts SET id = 100, balance = 7 WHERE id = 19;
        SELECT audit.set_retention('6 months');
        -- partitions: a registered parent with rows, one in its default partition
        CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, v text) PARTITION BY RANGE (at);
        SELECT storage.create_partitions('events', '1 day', 2);
        INSERT INTO events SELECT g, now() + g * interval '1 minute', 'x' FROM generate_series(0, 9) g;
        INSERT INTO events VALUES (100, now() + interval '30 days', 'far');
        -- matviews: a registered view over a tracked source
        CREATE TABLE views_src (id int PRIMARY KEY, n int NOT NULL);
        INSERT INTO views_src SELECT g, g FROM generate_series(1, 10) g;
        CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS c, sum(n) AS s FROM views_src;
        CREATE UNIQUE INDEX ON totals (c);
        SELECT storage.register_matview('totals', '1 minute');
        -- search: a weighted trigger
        CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
        INSERT INTO docs VALUES (1, 'Partition maintenance', 'vacuum and analyze');
        SELECT storage.enable_search('docs', 'tsv', 'english', '{"title": "A", "body": "B"}');
        -- JSON Schema in a CHECK
        CREATE TABLE prefs (doc jsonb CHECK (storage.json_schema_valid('{"type": "object", "required": ["theme"]}', doc)));
        INSERT INTO prefs VALUES ('{"theme": "dark"}');
        "#,
    )
    .expect("load 0.1.0 data");
    c
}

#[test]
fn update_from_first_release_equals_fresh_install_and_keeps_data() {
    let mut fresh = fresh_db("itest_upgrade_fresh");
    let current: String = one(
        &mut fresh,
        "SELECT extversion::text FROM pg_extension WHERE extname = 'pg_storage_ext'",
    );
    assert_ne!(
        current, FIRST_RELEASE,
        "the crate version must have moved past the frozen release"
    );

    let mut c = old_db("itest_upgrade_old");
    let history_before: i64 = one(&mut c, "SELECT count(*) FROM audit.log");
    // every column of every log row, as audit.log shows it
    const LOG: &str = "SELECT count(*)::text || ':' || md5(string_agg(concat_ws('|', id, ts, txid, table_oid, \
        schema_name, table_name, op, pk, old_pk, old_row, new_row, changed_columns, db_user, role_name, \
        application_name, client_addr, query), ',' ORDER BY id)) FROM audit.log";
    let log_before: String = one(&mut c, LOG);
    let retention_before: String = one(
        &mut c,
        "SELECT retention FROM storage.partition_config WHERE parent = 'audit.log'::regclass",
    );
    let children_before: i64 = one(&mut c, "SELECT count(*) FROM storage.partitions('events')");
    assert!(
        history_before >= 26,
        "audit rows before the update: {history_before}"
    );
    // configuring capture waits for the update, with the way out; nothing changed
    let refused = c
        .batch_execute("SELECT audit.enable('accounts', '{owner, balance}')")
        .unwrap_err();
    let db = refused.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "0A000", "{refused}");
    assert_eq!(
        db.hint(),
        Some("Run ALTER EXTENSION pg_storage_ext UPDATE.")
    );
    assert_eq!(one::<String>(&mut c, LOG), log_before);

    c.batch_execute("ALTER EXTENSION pg_storage_ext UPDATE")
        .expect("ALTER EXTENSION UPDATE");
    let updated: String = one(
        &mut c,
        "SELECT extversion::text FROM pg_extension WHERE extname = 'pg_storage_ext'",
    );
    assert_eq!(updated, current);

    // (a) the catalog equals a fresh install's
    let (old, new) = (fingerprint(&mut c), fingerprint(&mut fresh));
    let only_updated: Vec<_> = old.difference(&new).collect();
    let only_fresh: Vec<_> = new.difference(&old).collect();
    assert!(
        only_updated.is_empty() && only_fresh.is_empty(),
        "the updated extension differs from a fresh install:\n  only after UPDATE:\n    {}\n  only in a fresh install:\n    {}",
        only_updated.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    "),
        only_fresh.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    ")
    );
    assert!(
        new.len() > 100,
        "the fingerprint saw too little: {} rows",
        new.len()
    );

    // (b) data and behaviour loaded before the update are intact: the log's rows moved into
    // the normalized layout read back the same through the audit.log view
    assert_eq!(
        one::<i64>(&mut c, "SELECT count(*) FROM audit.log"),
        history_before
    );
    assert_eq!(one::<String>(&mut c, LOG), log_before);
    assert_eq!(
        one::<String>(
            &mut c,
            "SELECT string_agg(retention, ',' ORDER BY parent::text) FROM storage.partition_config \
              WHERE parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass)"
        ),
        format!("{retention_before},{retention_before}")
    );
    assert_eq!(
        one::<String>(
            &mut c,
            "SELECT string_agg(op || ' ' || pk::text || ' ' || coalesce(old_pk::text, '-'), '; ' ORDER BY id) \
               FROM audit.history('accounts', '{\"id\": 19}')"
        ),
        "INSERT {\"id\": 19} -; UPDATE {\"id\": 100} {\"id\": 19}"
    );
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM audit.history('accounts', '{\"id\": 3}')"
        ),
        2
    );
    c.batch_execute("UPDATE accounts SET balance = 0 WHERE id = 3")
        .expect("update an audited row");
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM audit.history('accounts', '{\"id\": 3}')"
        ),
        3
    );
    assert_eq!(
        one::<Option<i64>>(
            &mut c,
            "SELECT (audit.row_at('accounts', '{\"id\": 3}', now()) ->> 'balance')::bigint"
        ),
        Some(0)
    );
    assert_eq!(
        one::<String>(&mut c, "SELECT exclude_columns::text FROM audit.tracked"),
        "{owner}"
    );
    // and after the update the capture can be configured again, everything in order
    c.batch_execute("SELECT audit.enable('accounts', '{owner, balance}')")
        .expect("audit.enable after the update");
    assert_eq!(
        one::<String>(&mut c, "SELECT exclude_columns::text FROM audit.tracked"),
        "{owner,balance}"
    );
    assert!(one::<bool>(
        &mut c,
        "SELECT bool_and(capture_ok) FROM audit.coverage"
    ));

    assert_eq!(
        one::<i64>(&mut c, "SELECT count(*) FROM storage.partitions('events')"),
        children_before
    );
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT sum(moved_from_default)::bigint FROM storage.run_maintenance('events')"
        ),
        1,
        "maintenance after the update moves the far row out of the default partition"
    );
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM events"), 11);

    assert_eq!(
        one::<String>(&mut c, "SELECT storage.refresh_matview('totals')"),
        "refreshed"
    );
    assert_eq!(
        one::<String>(&mut c, "SELECT storage.refresh_matview('totals')"),
        "skipped: unchanged"
    );
    c.batch_execute("INSERT INTO views_src VALUES (11, 11)")
        .expect("change a source");
    assert_eq!(
        one::<String>(&mut c, "SELECT storage.refresh_matview('totals')"),
        "refreshed"
    );
    assert_eq!(one::<i64>(&mut c, "SELECT c FROM totals"), 11);

    c.batch_execute("INSERT INTO docs VALUES (2, 'Audit trail', 'history of rows')")
        .expect("insert a doc");
    assert_eq!(
        one::<Vec<i32>>(&mut c, "SELECT array_agg(id ORDER BY id) FROM docs WHERE tsv @@ to_tsquery('english', 'audit | partition')"),
        vec![1, 2]
    );

    let bad = c
        .batch_execute("INSERT INTO prefs VALUES ('{\"language\": \"en\"}')")
        .unwrap_err();
    assert_eq!(bad.code().map(|s| s.code()), Some("23514"), "{bad}");
}

/// `ALTER EXTENSION … UPDATE` from 0.1.0 while 4 writers insert into an audited table (issue 36,
/// F4), 10 times: every update succeeds (or fails cleanly before changing anything and succeeds
/// when retried), no writer ever fails, and the log holds exactly the rows written.
#[test]
fn an_update_under_load_fails_no_writer_and_loses_no_row() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for round in 0..10 {
        let name = "itest_upgrade_load";
        let mut c = empty_db(name);
        c.batch_execute(&format!(
            "CREATE EXTENSION pg_storage_ext VERSION '{FIRST_RELEASE}';
             CREATE TABLE hits (id bigserial PRIMARY KEY, writer int NOT NULL, n int NOT NULL);
             SELECT audit._ensure_log();
             CREATE TRIGGER audit_capture_insert AFTER INSERT ON hits REFERENCING NEW TABLE AS pg_storage_ext_new
                 FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false');
             INSERT INTO audit._tracked (table_name, exclude_columns, capture_query, table_oids)
             VALUES ('hits', '{{}}', false, ARRAY['hits'::regclass::oid]);"
        ))
        .expect("0.1.0 with an audited table");
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut db = pg_storage_integration::connect(name);
                    let (mut ok, mut errors) = (0i64, Vec::new());
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        match db.execute("INSERT INTO hits (writer, n) VALUES ($1, $2)", &[&w, &n])
                        {
                            Ok(_) => ok += 1,
                            Err(e) => errors.push(
                                e.as_db_error()
                                    .map(|d| d.message().to_owned())
                                    .unwrap_or_else(|| e.to_string()),
                            ),
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut updater = pg_storage_integration::connect(name);
        let mut tries = 0;
        loop {
            tries += 1;
            match updater.batch_execute("ALTER EXTENSION pg_storage_ext UPDATE") {
                Ok(()) => break,
                Err(e) if e.code().map(|s| s.code()) == Some("55P03") && tries < 5 => continue,
                Err(e) => panic!("round {round}: the update failed: {e}"),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        let mut written = 0;
        for w in writers {
            let (ok, errors) = w.join().unwrap();
            assert!(
                errors.is_empty(),
                "round {round}: a writer failed: {errors:?}"
            );
            written += ok;
        }
        let version: String = one(
            &mut c,
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'",
        );
        assert_ne!(version, FIRST_RELEASE, "round {round}: updated");
        let rows: i64 = one(&mut c, "SELECT count(*) FROM hits");
        let logged: i64 = one(
            &mut c,
            "SELECT count(*) FROM audit.log WHERE table_name = 'hits' AND op = 'INSERT'",
        );
        assert_eq!(
            (rows, logged),
            (written, written),
            "round {round}: log == data"
        );
    }
}

/// The second release: 0.2.0 installed from its frozen script (issue 37), loaded with data of
/// every capability, updated to this version: the catalog equals a fresh install's, the data is
/// intact and capture, partitions, matviews, search and migrations work after it.
#[test]
fn update_from_0_2_0_equals_fresh_install_and_keeps_data() {
    let mut fresh = fresh_db("itest_upgrade_fresh2");
    let current: String = one(
        &mut fresh,
        "SELECT extversion::text FROM pg_extension WHERE extname = 'pg_storage_ext'",
    );
    let mut c = empty_db("itest_upgrade_from_0_2_0");
    c.batch_execute(
        r#"
        CREATE EXTENSION pg_storage_ext VERSION '0.2.0';
        CREATE TABLE articles (id bigint NOT NULL, at timestamptz NOT NULL, title text, PRIMARY KEY (id, at))
            PARTITION BY RANGE (at);
        SELECT storage.create_partitions('articles', '1 day', 2);
        SELECT audit.enable('articles');
        INSERT INTO articles SELECT g, now(), 'title ' || g FROM generate_series(1, 50) g;
        UPDATE articles SET title = title || '!' WHERE id <= 5;
        SELECT storage.enable_search('articles', 'tsv', 'simple', '{"title": "A"}');
        CREATE MATERIALIZED VIEW article_count AS SELECT count(*) AS n FROM articles;
        SELECT storage.register_matview('article_count', '1 minute');
        SELECT storage.migrate('1', 'tags', 'CREATE TABLE tags (id int PRIMARY KEY)', down => 'DROP TABLE tags');
        CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL);
        SELECT storage.enable_tenant_isolation('notes', 'tenant_id');
        "#,
    )
    .expect("0.2.0 with data");
    const LOG: &str = "SELECT count(*)::text || ':' || md5(string_agg(concat_ws('|', id, ts, op, pk, old_row, new_row), ',' ORDER BY id)) FROM audit.log";
    let log_before: String = one(&mut c, LOG);
    c.batch_execute("ALTER EXTENSION pg_storage_ext UPDATE")
        .expect("ALTER EXTENSION UPDATE");
    let updated: String = one(
        &mut c,
        "SELECT extversion::text FROM pg_extension WHERE extname = 'pg_storage_ext'",
    );
    assert_eq!(updated, current);
    let (old, new) = (fingerprint(&mut c), fingerprint(&mut fresh));
    let only_updated: Vec<_> = old.difference(&new).collect();
    let only_fresh: Vec<_> = new.difference(&old).collect();
    assert!(
        only_updated.is_empty() && only_fresh.is_empty(),
        "the updated extension differs from a fresh install:\n  only after UPDATE:\n    {}\n  only in a fresh install:\n    {}",
        only_updated.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    "),
        only_fresh.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    ")
    );
    assert_eq!(one::<String>(&mut c, LOG), log_before, "the log is kept");
    c.batch_execute(
        "INSERT INTO articles VALUES (100, now(), 'after the update');
         SELECT count(*) FROM storage.refresh_due();",
    )
    .expect("capture and refresh after the update");
    let state: String = one(
        &mut c,
        "SELECT (SELECT count(*) FROM audit.log WHERE new_row->>'title' = 'after the update')::text || ' '
             || (SELECT count(*) FROM articles WHERE tsv @@ to_tsquery('simple', 'update'))::text || ' '
             || (SELECT n FROM article_count)::text || ' '
             || (SELECT status FROM storage.migrations WHERE version = '1') || ' '
             || (SELECT count(*) FROM pg_policy WHERE polrelid = 'notes'::regclass)::text",
    );
    assert_eq!(state, "1 1 51 applied 4");
    // the audited table's capture (the partitioned table and its partitions) is 0.3.0's: TRUNCATE
    // captured before it, its rows logged; the update logged no DDL row of its own
    let capture: String = one(
        &mut c,
        "SELECT (SELECT bool_and(capture_ok) FROM audit.coverage)::text || ' '
             || (SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_capture_truncate' AND tgtype::int & 2 = 0)::text || ' '
             || (SELECT count(*) > 1 FROM pg_trigger WHERE tgname = 'audit_capture_truncate')::text || ' '
             || (SELECT count(*) FROM audit.log WHERE op = 'DDL' AND ts > now() - interval '1 hour'
                   AND new_row->>'command_tag' LIKE '%TRIGGER%')::text",
    );
    assert_eq!(
        capture, "true 0 true 0",
        "coverage, AFTER TRUNCATE triggers left, several, DDL rows"
    );
    c.batch_execute("TRUNCATE articles").expect("TRUNCATE");
    let truncated: String = one(
        &mut c,
        "SELECT count(*) FILTER (WHERE pk IS NOT NULL)::text || ' ' || max(old_row->>'rows') FILTER (WHERE pk IS NULL)
           FROM audit.log WHERE op = 'TRUNCATE'",
    );
    assert_eq!(truncated, "51 51", "the TRUNCATE logged its rows");
}
