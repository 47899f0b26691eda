//! Application roles, tenant isolation and the security checks, with real LOGIN roles that
//! inherit the group roles and a non-superuser table owner.

use pg_storage_integration::{bindir, connect_as, connect_noticed, fresh_db, port};
use postgres::Client;
use std::process::Command;
use std::sync::{Arc, Mutex};

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

fn take(notices: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *notices.lock().unwrap())
}

fn login_roles(c: &mut Client, roles: &[&str]) {
    for r in roles {
        c.batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') THEN CREATE ROLE \"{r}\" LOGIN; END IF; END $$;"
        ))
        .expect("login role");
    }
}

/// The tenant ids of the rows `COPY <what> TO STDOUT` hands out (what: a table with its column
/// list or a query, tenant_id the second column).
fn copied_tenants(c: &mut Client, rel: &str) -> Vec<String> {
    use std::io::Read;
    let mut out = String::new();
    c.copy_out(&format!("COPY {rel} TO STDOUT"))
        .expect("copy out")
        .read_to_string(&mut out)
        .unwrap();
    out.lines()
        .map(|l| l.split('\t').nth(1).unwrap_or("").to_owned())
        .collect()
}

/// Issue 35 H2: a partition made with plain DDL — CREATE TABLE … PARTITION OF by the admin role
/// or by a LOGIN member of it, ATTACH PARTITION, sub-partitions, a partition in another schema
/// with a name that needs quotes, a table detached from another isolated tree and attached here —
/// is isolated as the table is: tenant 1 cannot read, COPY or take over tenant 2's rows through
/// the partition named directly; verify_tenant_isolation reads each partition and finds a leak.
#[test]
fn partitions_made_by_plain_ddl_are_isolated() {
    const DB: &str = "itest_tenant_parts";
    let mut c = fresh_db(DB);
    login_roles(&mut c, &["itest_app", "itest_admin"]);
    c.batch_execute(
        "SELECT count(*) FROM storage.create_roles('p_');
         GRANT p_app_user TO itest_app; GRANT p_admin_user TO itest_admin;
         CREATE SCHEMA app; CREATE SCHEMA \"Other Sch\";
         SELECT storage.grant_schema('app', 'p_'); SELECT storage.grant_schema('Other Sch', 'p_');",
    )
    .expect("roles");
    let mut admin = connect_as(DB, "itest_admin");
    admin
        .batch_execute(
            "SET ROLE p_admin_user;
             CREATE TABLE app.orders (id int NOT NULL, tenant_id int NOT NULL, note text) PARTITION BY RANGE (id);
             CREATE TABLE app.orders_p1 PARTITION OF app.orders FOR VALUES FROM (0) TO (1000);
             CREATE TABLE app.other (id int NOT NULL, tenant_id int NOT NULL, note text) PARTITION BY RANGE (id);
             CREATE TABLE app.other_p1 PARTITION OF app.other FOR VALUES FROM (0) TO (1000);",
        )
        .expect("the admin role's tables");
    c.batch_execute(
        "SELECT storage.enable_tenant_isolation('app.orders', 'tenant_id');
         SELECT storage.enable_tenant_isolation('app.other', 'note', 'app.note');",
    )
    .expect("isolate");
    admin
        .batch_execute(
            "CREATE TABLE app.orders_p2 PARTITION OF app.orders FOR VALUES FROM (1000) TO (2000);
             CREATE TABLE app.orders_p3 (LIKE app.orders);
             ALTER TABLE app.orders ATTACH PARTITION app.orders_p3 FOR VALUES FROM (2000) TO (3000);
             CREATE TABLE app.orders_p4 PARTITION OF app.orders FOR VALUES FROM (3000) TO (4000) PARTITION BY LIST (tenant_id);
             CREATE TABLE app.orders_p4a PARTITION OF app.orders_p4 FOR VALUES IN (1);
             CREATE TABLE app.orders_p4b PARTITION OF app.orders_p4 DEFAULT;
             CREATE TABLE \"Other Sch\".\"Orders P5\" PARTITION OF app.orders FOR VALUES FROM (4000) TO (5000);
             ALTER TABLE app.other DETACH PARTITION app.other_p1;
             ALTER TABLE app.orders ATTACH PARTITION app.other_p1 FOR VALUES FROM (6000) TO (7000);
             RESET ROLE;
             CREATE TABLE app.orders_p6 PARTITION OF app.orders FOR VALUES FROM (5000) TO (6000);
             GRANT SELECT, INSERT, UPDATE, DELETE ON app.orders_p6 TO p_app_user;",
        )
        .expect("partitions made with plain DDL, none refused");
    c.batch_execute(
        "INSERT INTO app.orders SELECT g, 1 + (g / 50) % 2, 'n' || g FROM generate_series(0, 6999, 50) g;",
    )
    .unwrap();
    let parts = [
        "app.orders_p2",
        "app.orders_p3",
        "app.orders_p4",
        "app.orders_p4b",
        "\"Other Sch\".\"Orders P5\"",
        "app.orders_p6",
        "app.other_p1",
    ];
    let mut app = connect_as(DB, "itest_app");
    app.batch_execute("SET app.tenant_id = '1'; SET app.note = 'n50';")
        .unwrap();
    for p in parts {
        assert!(
            count(
                &mut c,
                &format!("SELECT count(*) FROM {p} WHERE tenant_id = 2")
            ) > 0,
            "{p} holds tenant 2's rows"
        );
        let own = count(
            &mut c,
            &format!("SELECT count(*) FROM {p} WHERE tenant_id = 1"),
        );
        assert_eq!(
            count(
                &mut app,
                &format!("SELECT count(*) FROM {p} WHERE tenant_id = 2")
            ),
            0,
            "SELECT through {p}"
        );
        assert_eq!(
            count(&mut app, &format!("SELECT count(*) FROM {p}")),
            own,
            "{p}: its own rows"
        );
        // COPY of a partitioned table takes a query
        let copied = copied_tenants(
            &mut app,
            &if p == "app.orders_p4" {
                format!("(SELECT id, tenant_id FROM {p})")
            } else {
                format!("{p} (id, tenant_id)")
            },
        );
        assert!(
            copied.len() as i64 == own && copied.iter().all(|t| t == "1"),
            "COPY {p}: {copied:?}"
        );
        assert_eq!(
            app.execute(
                &format!("UPDATE {p} SET tenant_id = 1 WHERE tenant_id = 2"),
                &[]
            )
            .unwrap(),
            0,
            "take over through {p}"
        );
        if own > 0 {
            refused(
                &mut app,
                &format!("UPDATE {p} SET tenant_id = 2 WHERE tenant_id = 1"),
                "42501",
            );
        }
    }
    let failed: Vec<(String, Option<bool>, String)> = c
        .query(
            "SELECT check_name, ok, detail FROM storage.verify_tenant_isolation('app.orders', '1', '2') WHERE ok IS NOT TRUE",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM storage.verify_tenant_isolation('app.orders', '1', '2') WHERE check_name LIKE '%through partition%'"),
        2 * 9,
        "each partition and sub-partition read and updated directly"
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM storage.security_report() WHERE issue LIKE '%lacks its tenant policies%'"),
        0
    );
    // row security switched off on a partition by its owner is put back by the next DDL of the tree
    admin
        .batch_execute("SET ROLE p_admin_user; ALTER TABLE app.orders_p2 NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY; RESET ROLE;")
        .unwrap();
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM app.orders_p2 WHERE tenant_id = 2"
        ),
        0
    );
    // a hole the event trigger does not see (a policy added by hand) is found by verify
    admin
        .batch_execute("SET ROLE p_admin_user; CREATE POLICY open ON app.orders_p3 FOR SELECT USING (true); RESET ROLE;")
        .unwrap();
    let holes: Vec<String> = c
        .query(
            "SELECT check_name FROM storage.verify_tenant_isolation('app.orders', '1', '2') WHERE ok = false",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        holes,
        vec!["app role: read the other tenant's rows through partition app.orders_p3".to_owned()]
    );
    // isolated again by another column: every partition follows (the event trigger, woken by the
    // work, converges with it)
    c.batch_execute("SELECT storage.enable_tenant_isolation('app.orders', 'note', 'app.note')")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pg_policy WHERE polname LIKE 'pg_storage_ext_tenant_%'
                        AND polrelid IN (SELECT relid FROM pg_partition_tree('app.orders'))
                        AND pg_get_expr(coalesce(polqual, polwithcheck), polrelid) NOT LIKE '%note = %'"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_policy WHERE polname LIKE 'pg_storage_ext_tenant_%'
                        AND polrelid IN (SELECT relid FROM pg_partition_tree('app.orders'))"
        ),
        4 * 10
    );
    c.batch_execute("SELECT storage.enable_tenant_isolation('app.orders', 'tenant_id')")
        .unwrap();
    // disabling isolation is not undone by the event trigger
    admin
        .batch_execute("SET ROLE p_admin_user; DROP POLICY open ON app.orders_p3; RESET ROLE;")
        .unwrap();
    c.batch_execute("SELECT storage.disable_tenant_isolation('app.orders')")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pg_policy WHERE polname LIKE 'pg_storage_ext_tenant_%' AND polrelid IN (SELECT relid FROM pg_partition_tree('app.orders'))"),
        0
    );
    drop((app, admin));
    c.batch_execute(
        "DROP SCHEMA app, \"Other Sch\" CASCADE;
         DROP OWNED BY p_app_user, p_read_only_user, p_admin_user, p_audit_user, itest_admin;
         DROP ROLE p_app_user, p_read_only_user, p_admin_user, p_audit_user;",
    )
    .expect("cleanup");
}

/// Issue 35 H3: what reads an isolated table without its policies. A blog: articles isolated by
/// author; article_stats, a materialized view over it made before the isolation; a view a
/// superuser made; a SECURITY DEFINER function of a superuser returning the articles; a view the
/// admin role makes later (default privileges), and one made WITH security_invoker then ALTERed.
/// grant_schema grants the application roles nothing on them (WARNING naming them), the new view
/// loses its default privileges, enable and the event trigger warn, security_report lists them
/// and verify_tenant_isolation reads through them and finds the other tenant's rows.
#[test]
fn objects_that_bypass_tenant_isolation_are_refused_warned_reported_and_tried() {
    const DB: &str = "itest_tenant_bypass";
    let mut c = fresh_db(DB);
    login_roles(&mut c, &["itest_app", "itest_admin"]);
    c.batch_execute(
        "SELECT count(*) FROM storage.create_roles('b_');
         GRANT b_app_user TO itest_app; GRANT b_admin_user TO itest_admin;
         GRANT CREATE ON SCHEMA public TO b_admin_user;",
    )
    .expect("roles");
    let mut admin = connect_as(DB, "itest_admin");
    admin
        .batch_execute(
            "SET ROLE b_admin_user;
             CREATE TABLE articles (id bigserial PRIMARY KEY, author_id int NOT NULL, title text);
             INSERT INTO articles (author_id, title) SELECT 1 + g % 2, 'a' || g FROM generate_series(1, 10) g;
             CREATE MATERIALIZED VIEW article_stats AS SELECT author_id, count(*) AS n FROM articles GROUP BY author_id;
             CREATE VIEW article_titles AS SELECT id, author_id, title FROM articles;
             RESET ROLE;",
        )
        .expect("the blog");
    c.batch_execute(
        "CREATE FUNCTION all_articles() RETURNS SETOF articles LANGUAGE sql STABLE SECURITY DEFINER
             SET search_path = public, pg_temp AS 'SELECT * FROM articles';",
    )
    .unwrap();
    let (mut su, notices) = connect_noticed(DB, "postgres");
    su.batch_execute("SELECT storage.enable_tenant_isolation('articles', 'author_id')")
        .unwrap();
    let warned = take(&notices);
    for name in ["public.article_stats", "public.all_articles()"] {
        assert!(
            warned.iter().any(|w| w.contains(name)),
            "enable warns about {name}: {warned:?}"
        );
    }
    assert!(
        !warned.iter().any(|w| w.contains("article_titles")),
        "switched to security_invoker: {warned:?}"
    );
    // a view a superuser makes now reads as the superuser: the event trigger warns
    su.batch_execute("CREATE VIEW everything AS SELECT * FROM articles")
        .expect("not refused");
    let warned = take(&notices);
    assert!(
        warned.iter().any(|w| w.contains("public.everything")),
        "{warned:?}"
    );
    su.batch_execute("SELECT storage.grant_schema('public', 'b_')")
        .unwrap();
    let warned = take(&notices);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("public.article_stats") && w.contains("public.everything")),
        "grant_schema names what it skipped: {warned:?}"
    );
    let privileges: Vec<(String, bool, bool)> = c
        .query(
            "SELECT r, has_table_privilege('b_app_user', r, 'SELECT'), has_table_privilege('b_read_only_user', r, 'SELECT')
               FROM unnest(ARRAY['articles', 'article_titles', 'article_stats', 'everything']) r",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        privileges,
        vec![
            ("articles".to_owned(), true, true),
            ("article_titles".to_owned(), true, true),
            ("article_stats".to_owned(), false, false),
            ("everything".to_owned(), false, false),
        ]
    );
    let mut app = connect_as(DB, "itest_app");
    app.batch_execute("SET app.tenant_id = '2'").unwrap();
    refused(&mut app, "SELECT * FROM article_stats", "42501");
    refused(&mut app, "SELECT * FROM everything", "42501");
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM article_titles WHERE author_id = 1"
        ),
        0
    );
    // made later by the admin role: the default privileges grant_schema set are taken back
    // (the materialized view holds the rows of the tenant set when it was filled: tenant 2's)
    let (mut adm, adm_notices) = connect_noticed(DB, "itest_admin");
    adm.batch_execute(
        "SET ROLE b_admin_user; SET app.tenant_id = '2';
         CREATE MATERIALIZED VIEW per_author AS SELECT author_id, title FROM articles;
         CREATE VIEW invoker_titles WITH (security_invoker = true) AS SELECT * FROM articles;",
    )
    .expect("the admin role's later objects are not refused");
    let warned = take(&adm_notices);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("public.per_author") && w.contains("b_app_user")),
        "{warned:?}"
    );
    assert!(
        !warned.iter().any(|w| w.contains("invoker_titles")),
        "{warned:?}"
    );
    assert!(!count_bool(
        &mut c,
        "SELECT has_table_privilege('b_app_user', 'per_author', 'SELECT')"
    ));
    assert!(count_bool(
        &mut c,
        "SELECT has_table_privilege('b_app_user', 'invoker_titles', 'SELECT')"
    ));
    // a view created WITH security_invoker, then ALTERed: warned when it changes
    adm.batch_execute("ALTER VIEW invoker_titles SET (security_invoker = false)")
        .expect("not refused");
    let warned = take(&adm_notices);
    assert!(
        warned.iter().any(|w| w.contains("public.invoker_titles")
            && w.contains("b_app_user, b_read_only_user keep the privileges")),
        "{warned:?}"
    );
    // security_report lists each
    let report: Vec<(String, String)> = c
        .query(
            "SELECT object, severity FROM storage.security_report() WHERE issue LIKE '%isolated by tenant, without its tenant policies%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (object, severity) in [
        ("public.article_stats", "error"),
        ("public.everything", "error"),
        ("public.per_author", "error"),
        ("public.invoker_titles", "error"),
        ("public.all_articles()", "warning"),
    ] {
        assert!(
            report.iter().any(|(o, s)| o == object && s == severity),
            "{object} {severity} not in {report:?}"
        );
    }
    // verify reads through each as the app role with tenant 1 set
    let checks: Vec<(String, Option<bool>)> = c
        .query(
            "SELECT check_name, ok FROM storage.verify_tenant_isolation('articles', '1', '2') WHERE check_name LIKE '%through %'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (name, ok) in [
        ("materialized view public.article_stats", Some(false)),
        ("materialized view public.per_author", Some(false)),
        ("view public.everything", Some(false)),
        // owned by the table's owner, whom the forced policies bind
        ("view public.invoker_titles", Some(true)),
        ("function public.all_articles()", Some(false)),
    ] {
        let check = format!("app role: read the other tenant's rows through {name}");
        assert!(
            checks.iter().any(|(n, o)| n == &check && *o == ok),
            "{check} {ok:?} not in {checks:?}"
        );
    }
    // the ALTERed view keeps the privileges the app roles had on it: grant_schema names them
    su.batch_execute("SELECT storage.grant_schema('public', 'b_')")
        .unwrap();
    let warned = take(&notices);
    assert!(
        warned.iter().any(|w| w.contains("granted earlier are kept")
            && w.contains("public.invoker_titles (b_app_user, b_read_only_user)")),
        "{warned:?}"
    );
    drop((app, admin, adm, su));
    c.batch_execute(
        "DROP FUNCTION all_articles(); DROP TABLE articles CASCADE;
         DROP OWNED BY b_app_user, b_read_only_user, b_admin_user, b_audit_user;
         DROP ROLE b_app_user, b_read_only_user, b_admin_user, b_audit_user;",
    )
    .expect("cleanup");
}

fn count_bool(c: &mut Client, sql: &str) -> bool {
    c.query_one(sql, &[]).expect(sql).get(0)
}

/// Issue 35 L7: security_report leaves out objects of other extensions (following its fix there,
/// e.g. on pg_cron's cron.job_run_details, would break the extension) and says so in one info row
/// per extension; the user's own objects are still reported.
#[test]
fn security_report_leaves_other_extensions_objects_out() {
    let mut c = fresh_db("itest_security_report_ext");
    c.batch_execute(
        "CREATE SCHEMA ext_owned;
         CREATE TABLE ext_owned.job_log (id int); GRANT DELETE ON ext_owned.job_log TO PUBLIC;
         ALTER EXTENSION plpgsql ADD TABLE ext_owned.job_log;
         CREATE TABLE mine (id int); GRANT DELETE ON mine TO PUBLIC;",
    )
    .unwrap();
    let found: Vec<(String, String, String)> = c
        .query(
            "SELECT object, issue, severity FROM storage.security_report()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        !found.iter().any(|(o, _, _)| o == "ext_owned.job_log"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(o, i, s)| o == "extension plpgsql"
            && i.contains("ext_owned.job_log")
            && s == "info"),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(o, _, s)| o == "public.mine" && s == "error"),
        "{found:?}"
    );
    c.batch_execute("ALTER EXTENSION plpgsql DROP TABLE ext_owned.job_log; DROP SCHEMA ext_owned CASCADE; DROP TABLE mine;")
        .unwrap();
    // pg_cron itself, in the database it runs in (cron.database_name): PUBLIC may DELETE from
    // cron.job_run_details by pg_cron's design
    let mut pg = connect_as("postgres", "postgres");
    let ours = count_bool(
        &mut pg,
        "SELECT NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_storage_ext')",
    );
    pg.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_cron; CREATE EXTENSION IF NOT EXISTS pg_storage_ext",
    )
    .unwrap();
    let cron: Vec<(String, String)> = pg
        .query(
            "SELECT object, severity FROM storage.security_report() WHERE object LIKE '%cron%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if ours {
        pg.batch_execute("DROP EXTENSION pg_storage_ext CASCADE")
            .unwrap();
    }
    assert_eq!(
        cron,
        vec![("extension pg_cron".to_owned(), "info".to_owned())]
    );
}

/// Issue 35 H2/H3, the games: names that need quotes; a partition detached, stripped of its row
/// security, given an open policy and attached again; an invoker view replaced by CREATE OR
/// REPLACE without the option; a SECURITY DEFINER function naming the table quoted; a temporary
/// view of the app role (only its session reads it: no warning); and a dump and restore of the
/// isolated tree, which the event trigger must not break.
#[test]
fn tenant_isolation_holds_against_ddl_games() {
    const DB: &str = "itest_tenant_games";
    const COPY: &str = "itest_tenant_games_restored";
    let mut c = fresh_db(DB);
    login_roles(&mut c, &["itest_app", "itest_admin"]);
    c.batch_execute(
        "SELECT count(*) FROM storage.create_roles('g_');
         GRANT g_app_user TO itest_app; GRANT g_admin_user TO itest_admin;
         CREATE SCHEMA \"App Sch\"; SELECT storage.grant_schema('App Sch', 'g_');",
    )
    .expect("roles");
    let (mut admin, notices) = connect_noticed(DB, "itest_admin");
    admin
        .batch_execute(
            "SET ROLE g_admin_user;
             CREATE TABLE \"App Sch\".\"Weird \"\"Orders\"\"\" (id int NOT NULL, \"Tenant Id\" int NOT NULL) PARTITION BY RANGE (id);
             CREATE TABLE \"App Sch\".\"p 1\" PARTITION OF \"App Sch\".\"Weird \"\"Orders\"\"\" FOR VALUES FROM (0) TO (100);
             CREATE TABLE \"App Sch\".\"p 2\" PARTITION OF \"App Sch\".\"Weird \"\"Orders\"\"\" FOR VALUES FROM (100) TO (200);",
        )
        .unwrap();
    c.batch_execute(
        "SELECT storage.enable_tenant_isolation('\"App Sch\".\"Weird \"\"Orders\"\"\"', 'Tenant Id');
         INSERT INTO \"App Sch\".\"Weird \"\"Orders\"\"\" SELECT g, 1 + g % 2 FROM generate_series(0, 199) g;",
    )
    .unwrap();
    admin
        .batch_execute(
            "ALTER TABLE \"App Sch\".\"Weird \"\"Orders\"\"\" DETACH PARTITION \"App Sch\".\"p 2\";
             ALTER TABLE \"App Sch\".\"p 2\" NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
             DROP POLICY pg_storage_ext_tenant_select ON \"App Sch\".\"p 2\";
             CREATE POLICY pg_storage_ext_tenant_select ON \"App Sch\".\"p 2\" FOR SELECT USING (true);
             ALTER TABLE \"App Sch\".\"Weird \"\"Orders\"\"\" ATTACH PARTITION \"App Sch\".\"p 2\" FOR VALUES FROM (100) TO (200);
             CREATE VIEW \"App Sch\".\"My View\" WITH (security_invoker = true) AS SELECT * FROM \"App Sch\".\"Weird \"\"Orders\"\"\";",
        )
        .expect("the games are not refused");
    assert!(take(&notices).is_empty(), "nothing to warn about yet");
    let mut app = connect_as(DB, "itest_app");
    app.batch_execute("SET app.tenant_id = '1'").unwrap();
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM \"App Sch\".\"p 2\" WHERE \"Tenant Id\" = 2"
        ),
        0,
        "the attached partition is isolated again"
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM \"App Sch\".\"My View\" WHERE \"Tenant Id\" = 2"
        ),
        0
    );
    // CREATE OR REPLACE without the option makes it read as its owner: the default privileges
    // the app role had on it are taken back, with a warning
    admin
        .batch_execute("CREATE OR REPLACE VIEW \"App Sch\".\"My View\" AS SELECT * FROM \"App Sch\".\"Weird \"\"Orders\"\"\"")
        .expect("not refused");
    let warned = take(&notices);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("\"App Sch\".\"My View\"") && w.contains("g_app_user")),
        "{warned:?}"
    );
    refused(
        &mut app,
        "SELECT count(*) FROM \"App Sch\".\"My View\"",
        "42501",
    );
    // a superuser's SECURITY DEFINER function naming the table quoted
    let (mut su, su_notices) = connect_noticed(DB, "postgres");
    su.batch_execute(
        "CREATE FUNCTION \"App Sch\".peek() RETURNS SETOF \"App Sch\".\"Weird \"\"Orders\"\"\" LANGUAGE sql STABLE
             SECURITY DEFINER SET search_path = pg_catalog AS $f$ SELECT * FROM \"App Sch\".\"Weird \"\"Orders\"\"\" $f$",
    )
    .unwrap();
    let warned = take(&su_notices);
    assert!(
        warned.iter().any(|w| w.contains("\"App Sch\".peek()")),
        "{warned:?}"
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM storage.verify_tenant_isolation('\"App Sch\".\"Weird \"\"Orders\"\"\"', '1', '2')
                        WHERE ok = false AND check_name LIKE '%through function \"App Sch\".peek()'"),
        1
    );
    su.batch_execute("DROP FUNCTION \"App Sch\".peek(); DROP VIEW \"App Sch\".\"My View\";")
        .unwrap();
    // the app role's temporary view reads as the app role, in its own session only
    let (mut app2, app_notices) = connect_noticed(DB, "itest_app");
    app2.batch_execute(
        "SET app.tenant_id = '1';
         CREATE TEMP VIEW mine AS SELECT * FROM \"App Sch\".\"Weird \"\"Orders\"\"\";",
    )
    .unwrap();
    assert!(take(&app_notices).is_empty());
    assert_eq!(
        count(
            &mut app2,
            "SELECT count(*) FROM mine WHERE \"Tenant Id\" = 2"
        ),
        0
    );
    drop(app2);
    let failed = count(
        &mut c,
        "SELECT count(*) FROM storage.verify_tenant_isolation('\"App Sch\".\"Weird \"\"Orders\"\"\"', '1', '2') WHERE ok IS NOT TRUE",
    );
    assert_eq!(failed, 0);
    // a lock the event trigger cannot take within its 100 ms never fails the statement: with the
    // root's policies tampered with (one dropped) and another session reading the table, an
    // ATTACH succeeds with a WARNING, and the attached table is isolated all the same
    admin
        .batch_execute(
            "DROP POLICY pg_storage_ext_tenant_delete ON \"App Sch\".\"Weird \"\"Orders\"\"\";
             CREATE TABLE \"App Sch\".\"p 3\" (LIKE \"App Sch\".\"Weird \"\"Orders\"\"\");",
        )
        .unwrap();
    let mut reader = connect_as(DB, "postgres");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM \"App Sch\".\"Weird \"\"Orders\"\"\";")
        .unwrap();
    admin
        .batch_execute("ALTER TABLE \"App Sch\".\"Weird \"\"Orders\"\"\" ATTACH PARTITION \"App Sch\".\"p 3\" FOR VALUES FROM (200) TO (300)")
        .expect("the ATTACH is not failed by the event trigger");
    let warned = take(&notices);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("did not get their tenant policies") && w.contains("55P03")),
        "{warned:?}"
    );
    reader.batch_execute("ROLLBACK").unwrap();
    assert!(count_bool(
        &mut c,
        "SELECT storage._tenant_covered('\"App Sch\".\"p 3\"', '\"App Sch\".\"p 3\"')
                AND (SELECT count(*) FROM pg_policy WHERE polrelid = '\"App Sch\".\"p 3\"'::regclass) = 4"
    ));
    c.batch_execute("SELECT storage.enable_tenant_isolation('\"App Sch\".\"Weird \"\"Orders\"\"\"', 'Tenant Id')")
        .expect("enable again repairs it");
    drop(reader);
    // a dump restores without errors: the event trigger leaves the restore's policies to it
    let dump = std::env::temp_dir().join("pg_storage_ext_roles_itest.dump");
    let bin = bindir();
    let p = port().to_string();
    let status = Command::new(format!("{bin}/pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-Fc", "-f"])
        .arg(&dump)
        .arg(DB)
        .status()
        .expect("pg_dump");
    assert!(status.success(), "pg_dump failed");
    let mut pg = connect_as("postgres", "postgres");
    pg.batch_execute(&format!("DROP DATABASE IF EXISTS {COPY} WITH (FORCE)"))
        .unwrap();
    pg.batch_execute(&format!("CREATE DATABASE {COPY}"))
        .unwrap();
    let out = Command::new(format!("{bin}/pg_restore"))
        .args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-d", COPY])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut restored = connect_as(COPY, "postgres");
    assert_eq!(
        count(&mut restored, "SELECT count(*) FROM storage.verify_tenant_isolation('\"App Sch\".\"Weird \"\"Orders\"\"\"', '1', '2') WHERE ok IS NOT TRUE"),
        0
    );
    drop((restored, app, admin, su));
    let _ = std::fs::remove_file(dump);
    pg.batch_execute(&format!("DROP DATABASE {COPY}")).unwrap();
    c.batch_execute(
        "DROP SCHEMA \"App Sch\" CASCADE;
         DROP OWNED BY g_app_user, g_read_only_user, g_admin_user, g_audit_user;
         DROP ROLE g_app_user, g_read_only_user, g_admin_user, g_audit_user;",
    )
    .expect("cleanup");
}
