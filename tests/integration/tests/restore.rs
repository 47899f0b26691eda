//! Dump and restore, in every form a DBA uses (issue 36, F2 and F3): `pg_dump -Fc` restored by
//! `pg_restore` (plain, `--single-transaction`, `--exit-on-error`) and a plain dump restored by
//! `psql -1 -v ON_ERROR_STOP=1`. Each must exit 0 with no error, and bring back every
//! capability's configuration and state: audit capture on every partition with the history
//! whole, the partitions, a registered matview (due once and refreshed), search, a migration,
//! a tuned threshold; capture and refresh work afterwards.

use pg_storage_integration::{bindir, connect, fresh_db, port};
use postgres::Client;
use std::process::Command;

const DB: &str = "itest_restore_src";

fn setup() -> Client {
    let mut c = fresh_db(DB);
    c.batch_execute(
        "CREATE TABLE articles (id bigint NOT NULL, at timestamptz NOT NULL, title text, body text,
                                PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         SELECT storage.create_partitions('articles', '1 month', premake => 2,
                                          start_from => (date_trunc('month', now()) - interval '2 months')::text);
         SELECT audit.enable('articles');
         INSERT INTO articles SELECT g, now() - (g % 60) * interval '1 day', 'title ' || g, 'body ' || g
           FROM generate_series(1, 300) g;
         UPDATE articles SET title = title || '!' WHERE id <= 20;
         DELETE FROM articles WHERE id > 290;
         SELECT storage.enable_search('articles', 'search_vector', 'simple', '{\"title\": \"A\", \"body\": \"B\"}');
         CREATE MATERIALIZED VIEW article_count AS SELECT count(*) AS n FROM articles;
         SELECT storage.register_matview('article_count', '1 minute');
         SELECT storage.refresh_matview('article_count');
         SELECT storage.migrate('1', 'table', 'CREATE TABLE tags (id int PRIMARY KEY)', down => 'DROP TABLE tags');
         UPDATE storage.health_thresholds SET warn = 2 WHERE check_name = 'long_running_queries';
         CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL, body text);
         SELECT storage.enable_tenant_isolation('notes', 'tenant_id');
         SELECT count(*) FROM storage.run_maintenance_plan();",
    )
    .expect("setup");
    c
}

/// What the other capabilities keep: tenant policies and the maintenance log.
const STATE: &str = "SELECT (SELECT count(*) FROM pg_policy WHERE polrelid = 'notes'::regclass)::text || ' '
                         || (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'notes'::regclass)::text || ' '
                         || (SELECT count(*) FROM storage.maintenance_log)::text";

const LOG: &str = "SELECT count(*)::text || ':' || md5(string_agg(concat_ws('|', id, ts, op, pk, old_row, new_row), ',' ORDER BY id)) FROM audit.log";

/// Restores the dump of DB into a new database with `restore`'s command; its exit status and
/// what it wrote to stderr.
fn restore(target: &str, dump: &[&str], restore: &[&str]) -> (bool, String) {
    let bin = bindir();
    let p = port().to_string();
    let file = std::env::temp_dir().join(format!("pg_storage_ext_{target}.dump"));
    let status = Command::new(format!("{bin}/pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-f"])
        .arg(&file)
        .args(dump)
        .arg(DB)
        .status()
        .expect("pg_dump");
    assert!(status.success(), "pg_dump {dump:?} failed");
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {target} WITH (FORCE)"))
        .expect("old restore target");
    admin
        .batch_execute(&format!("CREATE DATABASE {target}"))
        .expect("restore target");
    let mut cmd = Command::new(format!("{bin}/{}", restore[0]));
    cmd.args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-d", target])
        .args(&restore[1..]);
    if restore[0] == "psql" {
        cmd.arg("-f").arg(&file);
    } else {
        cmd.arg(&file);
    }
    let out = cmd.output().expect("restore");
    let _ = std::fs::remove_file(&file);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_form_of_dump_and_restore_is_exact_and_quiet() {
    let mut src = setup();
    let log: String = src.query_one(LOG, &[]).unwrap().get(0);
    let state: String = src.query_one(STATE, &[]).unwrap().get(0);
    assert!(state.starts_with("4 true"), "{state}");
    let forms: [(&str, &[&str], &[&str]); 4] = [
        ("itest_restore_plain", &["-Fc"], &["pg_restore"]),
        (
            "itest_restore_single",
            &["-Fc"],
            &["pg_restore", "--single-transaction"],
        ),
        (
            "itest_restore_exit",
            &["-Fc"],
            &["pg_restore", "--exit-on-error"],
        ),
        (
            "itest_restore_psql",
            &["-Fp"],
            &["psql", "-1", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        ),
    ];
    for (target, dump, how) in forms {
        let (ok, stderr) = restore(target, dump, how);
        assert!(ok, "{how:?}: exit code not 0: {stderr}");
        assert!(!stderr.contains("ERROR"), "{how:?}: {stderr}");
        let mut r = connect(target);
        // the history, row for row, and capture on every partition
        let restored: String = r.query_one(LOG, &[]).unwrap().get(0);
        assert_eq!(restored, log, "{how:?}: the log");
        let restored: String = r.query_one(STATE, &[]).unwrap().get(0);
        assert_eq!(restored, state, "{how:?}: tenant policies, maintenance log");
        let problems: Vec<String> = r
            .query(
                "SELECT coalesce(problem, '') FROM audit.coverage WHERE NOT capture_ok",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(problems.is_empty(), "{how:?}: capture: {problems:?}");
        let partitions: i64 = r
            .query_one(
                "SELECT count(*) FROM pg_partition_tree('articles') WHERE relid <> 'articles'::regclass",
                &[],
            )
            .unwrap()
            .get(0);
        let captured: i64 = r
            .query_one(
                "SELECT count(DISTINCT tgrelid) FROM pg_trigger t JOIN pg_partition_tree('articles') p ON p.relid = t.tgrelid
                  WHERE t.tgname LIKE 'audit_capture%' AND p.relid <> 'articles'::regclass",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(captured, partitions, "{how:?}: every partition captured");
        // capture goes on, through the table and through a partition named directly
        r.batch_execute("UPDATE articles SET title = 'after' WHERE id = 1")
            .unwrap();
        let after: i64 = r
            .query_one(
                "SELECT count(*) FROM audit.log WHERE new_row->>'title' = 'after'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(after, 1, "{how:?}: captured after the restore");
        // the registered matview is listed, due, and refreshed by refresh_due()
        let listed: i64 = r
            .query_one("SELECT count(*) FROM storage.matview_status", &[])
            .unwrap()
            .get(0);
        assert_eq!(listed, 1, "{how:?}: matview_status lists the view");
        let outcome: String = r
            .query_one(
                "SELECT outcome FROM storage.refresh_due() WHERE view = 'article_count'::regclass",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(outcome, "refreshed", "{how:?}: due once after the restore");
        // search, the migration, the threshold
        let searched: i64 = r
            .query_one(
                "SELECT count(*) FROM articles WHERE search_vector @@ to_tsquery('simple', 'after')",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(searched, 1, "{how:?}: search maintained");
        let state: String = r
            .query_one(
                "SELECT (SELECT status FROM storage.migrations WHERE version = '1') || ' '
                     || (SELECT warn FROM storage.health_thresholds WHERE check_name = 'long_running_queries')::text",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(state, "applied 2", "{how:?}");
        drop(r);
        connect("postgres")
            .batch_execute(&format!("DROP DATABASE {target} WITH (FORCE)"))
            .unwrap();
    }
    drop(src);
}
