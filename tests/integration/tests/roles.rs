//! Application roles, tenant isolation and the security checks, with real LOGIN roles that
//! inherit the group roles and a non-superuser table owner.

use pg_storage_integration::{connect_as, fresh_db};
use postgres::Client;
use std::process::Command;

fn code(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect(sql).get(0)
}

fn refused(c: &mut Client, sql: &str, state: &str) {
    let e = c
        .batch_execute(sql)
        .expect_err(&format!("must be refused: {sql}"));
    assert_eq!(
        e.code().map(|s| s.code()),
        Some(state),
        "{sql}: {}",
        code(&e)
    );
}

#[test]
fn roles_have_least_privilege() {
    const DB: &str = "itest_roles";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ DECLARE r text; BEGIN
           FOREACH r IN ARRAY ARRAY['itest_app', 'itest_ro', 'itest_admin', 'itest_auditor'] LOOP
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I LOGIN', r); END IF;
           END LOOP;
         END $$;
         CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);
         INSERT INTO users (name) VALUES ('ann');",
    )
    .expect("setup");
    let made: Vec<(String, bool)> = c
        .query(
            "SELECT role::text, created FROM storage.create_roles()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(made.len(), 4);
    // again: nothing created; drift repaired
    c.batch_execute("ALTER ROLE app_user LOGIN; GRANT audit_reader TO app_user;")
        .unwrap();
    let again = count(
        &mut c,
        "SELECT count(*) FILTER (WHERE created) FROM storage.create_roles()",
    );
    assert_eq!(again, 0);
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pg_roles WHERE rolname = 'app_user' AND NOT rolcanlogin AND NOT pg_has_role(oid, 'audit_reader', 'MEMBER')"),
        1,
        "create_roles repairs drift"
    );
    c.batch_execute(
        "SELECT storage.grant_schema('public');
         GRANT app_user TO itest_app; GRANT read_only_user TO itest_ro; GRANT admin_user TO itest_admin;
         GRANT audit_user TO itest_auditor;",
    )
    .unwrap();
    refused(&mut c, "SELECT storage.grant_schema('audit')", "0A000");
    refused(&mut c, "SELECT storage.grant_schema('nope')", "3F000");
    refused(
        &mut c,
        "SELECT storage.grant_schema('public', 'other_')",
        "42704",
    );

    let mut app = connect_as(DB, "itest_app");
    app.batch_execute("INSERT INTO users (name) VALUES ('bob'); UPDATE users SET name = 'ann2' WHERE name = 'ann'; DELETE FROM users WHERE name = 'bob';")
        .expect("app_user reads and writes");
    refused(&mut app, "ALTER TABLE users ADD COLUMN x int", "42501");
    refused(&mut app, "DROP TABLE users", "42501");
    refused(&mut app, "CREATE TABLE mine (id int)", "42501");
    refused(&mut app, "SELECT * FROM audit.log", "42501");
    let mut ro = connect_as(DB, "itest_ro");
    assert_eq!(count(&mut ro, "SELECT count(*) FROM users"), 1);
    refused(&mut ro, "INSERT INTO users (name) VALUES ('x')", "42501");
    // what admin_user creates later is covered
    let mut admin = connect_as(DB, "itest_admin");
    admin
        .batch_execute(
            "SET ROLE admin_user; CREATE TABLE posts (id bigserial PRIMARY KEY, body text);",
        )
        .expect("admin_user creates tables");
    app.batch_execute("INSERT INTO posts (body) VALUES ('hello')")
        .expect("app_user writes a table admin_user created later");
    assert_eq!(count(&mut ro, "SELECT count(*) FROM posts"), 1);
    refused(&mut app, "DROP TABLE posts", "42501");
    let mut auditor = connect_as(DB, "itest_auditor");
    auditor
        .batch_execute("SELECT count(*) FROM audit.log; SELECT count(*) FROM audit.coverage")
        .expect("audit_user reads the trail");
    refused(&mut auditor, "DELETE FROM audit.log", "42501");
    refused(&mut auditor, "SELECT * FROM users", "42501");
    drop((app, ro, admin, auditor));
    c.batch_execute(
        "DROP TABLE posts, users;
         DROP OWNED BY app_user, read_only_user, admin_user, audit_user;
         DROP ROLE app_user, read_only_user, admin_user, audit_user;",
    )
    .expect("cleanup");
}

#[test]
fn tenants_see_and_change_only_their_rows() {
    const DB: &str = "itest_tenants";
    let mut c = fresh_db(DB);
    c.batch_execute(
        "DO $$ DECLARE r text; BEGIN
           FOREACH r IN ARRAY ARRAY['itest_app', 'itest_owner'] LOOP
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I LOGIN', r); END IF;
           END LOOP;
         END $$;
         SELECT count(*) FROM storage.create_roles('t_');
         GRANT t_app_user TO itest_app;
         GRANT CREATE ON SCHEMA public TO itest_owner;",
    )
    .expect("roles");
    let mut owner = connect_as(DB, "itest_owner");
    owner
        .batch_execute(
            "CREATE TABLE articles (id bigserial PRIMARY KEY, author_id int NOT NULL, title text);
             INSERT INTO articles (author_id, title) SELECT 1 + g % 2, 'a' || g FROM generate_series(1, 10) g;
             CREATE VIEW article_titles AS SELECT id, author_id, title FROM articles;
             CREATE TABLE views (author_id int NOT NULL, at date NOT NULL, n int) PARTITION BY RANGE (at);
             CREATE TABLE views_2026 PARTITION OF views FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             INSERT INTO views VALUES (1, '2026-05-01', 1), (2, '2026-05-01', 2);",
        )
        .expect("a non-superuser owner's tables");
    c.batch_execute(
        "SELECT storage.grant_schema('public', 't_');
         SELECT storage.enable_tenant_isolation('articles', 'author_id');
         SELECT storage.enable_tenant_isolation('views', 'author_id');",
    )
    .expect("isolate");
    let mut app = connect_as(DB, "itest_app");
    app.batch_execute("SET app.tenant_id = '1'").unwrap();
    assert_eq!(count(&mut app, "SELECT count(*) FROM articles"), 5);
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM articles WHERE author_id = 2"
        ),
        0
    );
    assert_eq!(
        count(&mut app, "SELECT count(*) FROM article_titles"),
        5,
        "through the view"
    );
    assert_eq!(
        app.execute("UPDATE articles SET title = 'x' WHERE author_id = 2", &[])
            .unwrap(),
        0
    );
    assert_eq!(
        app.execute("DELETE FROM articles WHERE author_id = 2", &[])
            .unwrap(),
        0
    );
    refused(
        &mut app,
        "INSERT INTO articles (author_id, title) VALUES (2, 'forged')",
        "42501",
    );
    refused(
        &mut app,
        "UPDATE articles SET author_id = 2 WHERE author_id = 1",
        "42501",
    );
    app.batch_execute("INSERT INTO articles (author_id, title) VALUES (1, 'mine')")
        .expect("its own rows");
    // a partition read directly is isolated too
    assert_eq!(count(&mut app, "SELECT count(*) FROM views_2026"), 1);
    assert_eq!(count(&mut app, "SELECT count(*) FROM views"), 1);
    // no tenant: nothing seen, nothing written
    app.batch_execute("RESET app.tenant_id").unwrap();
    assert_eq!(count(&mut app, "SELECT count(*) FROM articles"), 0);
    refused(
        &mut app,
        "INSERT INTO articles (author_id, title) VALUES (1, 'x')",
        "42501",
    );
    app.batch_execute("SET app.tenant_id = ''").unwrap();
    assert_eq!(count(&mut app, "SELECT count(*) FROM articles"), 0);
    // a tenant that is not a value of the column's type is an error, not an empty answer
    app.batch_execute("SET app.tenant_id = 'abc'").unwrap();
    refused(&mut app, "SELECT count(*) FROM articles", "22P02");
    refused(
        &mut app,
        "INSERT INTO articles (author_id, title) VALUES (1, 'x')",
        "22P02",
    );
    app.batch_execute("SET app.tenant_id = ''").unwrap();
    // the owner is isolated too (FORCE)
    owner.batch_execute("SET app.tenant_id = '2'").unwrap();
    assert_eq!(count(&mut owner, "SELECT count(*) FROM articles"), 5);
    // the setting is read once per statement: an InitPlan, not a call per row
    app.batch_execute("SET app.tenant_id = '1'").unwrap();
    let plan: Vec<String> = app
        .query("EXPLAIN (COSTS OFF) SELECT * FROM articles", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("InitPlan"), "{plan}");
    // verify_tenant_isolation proves it; every check passes
    let failed: Vec<(String, Option<bool>, String)> = c
        .query(
            "SELECT check_name, ok, detail FROM storage.verify_tenant_isolation('articles', '1', '2') WHERE ok IS NOT TRUE",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.verify_tenant_isolation('articles', '1', '2')"
        ) >= 10
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM articles WHERE title = 'forged'"
        ),
        0,
        "verify left nothing"
    );
    // a hole is found: a permissive always-true policy added by hand
    owner
        .batch_execute("CREATE POLICY everyone ON articles FOR SELECT USING (true)")
        .unwrap();
    assert!(count(&mut c, "SELECT count(*) FROM storage.verify_tenant_isolation('articles', '1', '2') WHERE ok = false") > 0);
    assert!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.security_report() WHERE issue LIKE '%always true%'"
        ) > 0
    );
    owner
        .batch_execute("DROP POLICY everyone ON articles")
        .unwrap();
    c.batch_execute("SELECT storage.disable_tenant_isolation('articles')")
        .unwrap();
    app.batch_execute("RESET app.tenant_id").unwrap();
    assert_eq!(
        count(&mut app, "SELECT count(*) FROM articles"),
        11,
        "isolation removed"
    );
    drop((app, owner));
    c.batch_execute(
        "DROP TABLE articles, views CASCADE;
         DROP OWNED BY t_app_user, t_read_only_user, t_admin_user, t_audit_user;
         DROP ROLE t_app_user, t_read_only_user, t_admin_user, t_audit_user;",
    )
    .expect("cleanup");
}

#[test]
fn security_report_and_ssl_status_find_the_traps() {
    let mut c = fresh_db("itest_security_report");
    c.batch_execute(
        "CREATE TABLE open_rls (id int); ALTER TABLE open_rls ENABLE ROW LEVEL SECURITY;
         CREATE POLICY p ON open_rls USING (id > 0);
         CREATE VIEW open_view AS SELECT * FROM open_rls;
         CREATE FUNCTION risky() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
         CREATE TABLE shared (id int); GRANT INSERT ON shared TO PUBLIC;",
    )
    .unwrap();
    let found: Vec<(String, String)> = c
        .query(
            "SELECT object, severity FROM storage.security_report()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        !found
            .iter()
            .any(|(o, _)| o.starts_with("pg_") || o.starts_with("information_schema")),
        "system objects are not findings: {found:?}"
    );
    for (object, severity) in [
        ("public.open_rls", "warning"),
        ("public.open_view", "error"),
        ("public.risky()", "error"),
        ("public.shared", "error"),
    ] {
        assert!(
            found.iter().any(|(o, s)| o == object && s == severity),
            "{object} {severity} not in {found:?}"
        );
    }
    // this cluster runs without SSL: reported, not hidden
    let ssl: bool = c
        .query_one(
            "SELECT ok FROM storage.ssl_status() WHERE setting = 'ssl'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!ssl);
    // a certificate made now with openssl: its expiry is read from the PEM
    let dir = std::env::temp_dir().join(format!("pgse-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "45",
            "-subj",
            "/CN=itest",
        ])
        .arg("-keyout")
        .arg(dir.join("k.pem"))
        .arg("-out")
        .arg(dir.join("c.pem"))
        .output()
        .expect("openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let pem = std::fs::read_to_string(dir.join("c.pem")).unwrap();
    let days: f64 = c
        .query_one(
            "SELECT extract(epoch FROM storage._certificate_not_after($1) - now())::float8 / 86400",
            &[&pem],
        )
        .unwrap()
        .get(0);
    assert!((44.9..45.1).contains(&days), "{days}");
    let e = c
        .batch_execute("SELECT storage._certificate_not_after('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')")
        .expect_err("not a certificate");
    assert_eq!(e.code().map(|s| s.code()), Some("22023"));
    let _ = std::fs::remove_dir_all(dir);
}
