//! The Citus tier (issue: scale-out on Citus): a coordinator and two workers started by
//! `scripts/citus.sh` from the vendored Citus source, port in PGSE_CITUS_PORT. Ignored in the
//! ordinary run; `make test` runs them with `--ignored` when the vendored source is there, and says
//! it skipped the tier otherwise. What each function does on Citus tables is README: Scale-out.

use postgres::{Client, NoTls};

fn coordinator() -> Client {
    let port: u16 = std::env::var("PGSE_CITUS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("PGSE_CITUS_PORT: run the Citus tier through `make test` (scripts/citus.sh)");
    let conf = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let mut c = Client::connect(&conf, NoTls).expect("connect to the Citus coordinator");
    c.batch_execute(
        "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_storage_ext",
    )
    .expect("pg_storage_ext on the coordinator (Citus creates it on the workers)");
    c
}

fn one<T: for<'a> postgres::types::FromSql<'a>>(c: &mut Client, sql: &str) -> T {
    c.query_one(sql, &[]).expect(sql).get(0)
}

/// The 0A000 refusal of `storage._refuse_on_citus`: code, message, and a hint with the way out.
fn refused(c: &mut Client, sql: &str, what: &str, kind: &str) {
    let e = c.batch_execute(sql).expect_err(sql);
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
    assert_eq!(db.code().code(), "0A000", "{sql}: {e}");
    assert!(
        db.message()
            .starts_with(&format!("{what} does not support Citus {kind} tables")),
        "{sql}: {}",
        db.message()
    );
    assert!(
        db.detail().is_some_and(|d| !d.is_empty()),
        "{sql}: no detail"
    );
    assert!(
        db.hint().is_some_and(|h| h.contains("undistribute_table")),
        "{sql}: {:?}",
        db.hint()
    );
}

/// Every function that would be silently wrong on a distributed or reference table refuses at
/// once, before changing anything; the same functions still work on the coordinator's own tables.
#[test]
#[ignore = "the Citus tier: make test runs it with the vendored Citus"]
fn wrong_on_citus_tables_refuses_at_once() {
    let mut c = coordinator();
    c.batch_execute(
        "DROP TABLE IF EXISTS ct_items, ct_ref, ct_local CASCADE;
         CREATE TABLE ct_items (id bigint PRIMARY KEY, title text, body text, tenant text);
         SELECT create_distributed_table('ct_items', 'id');
         CREATE TABLE ct_ref (id int PRIMARY KEY, name text);
         SELECT create_reference_table('ct_ref');
         CREATE TABLE ct_local (id int PRIMARY KEY, name text);
         INSERT INTO ct_items SELECT g, 't' || g, 'b' || g, 'a' FROM generate_series(1, 100) g;
         INSERT INTO ct_ref VALUES (1, 'one');",
    )
    .expect("distributed, reference and local tables");
    assert_eq!(
        one::<Option<String>>(&mut c, "SELECT storage._citus_kind('ct_items')").as_deref(),
        Some("distributed")
    );
    assert_eq!(
        one::<Option<String>>(&mut c, "SELECT storage._citus_kind('ct_ref')").as_deref(),
        Some("reference")
    );
    assert_eq!(
        one::<Option<String>>(&mut c, "SELECT storage._citus_kind('ct_local')"),
        None
    );

    refused(
        &mut c,
        "SELECT audit.enable('ct_items')",
        "audit.enable",
        "distributed",
    );
    refused(
        &mut c,
        "SELECT audit.enable('ct_ref')",
        "audit.enable",
        "reference",
    );
    refused(
        &mut c,
        "SELECT storage.enable_search('ct_items', 'tsv', 'english', '{\"title\": \"A\"}')",
        "storage.enable_search",
        "distributed",
    );
    refused(
        &mut c,
        "SELECT storage.enable_tenant_isolation('ct_items', 'tenant')",
        "storage.enable_tenant_isolation",
        "distributed",
    );
    refused(
        &mut c,
        "SELECT storage.convert_to_partitioned('ct_items', 'id', '10')",
        "storage.convert_to_partitioned",
        "distributed",
    );
    c.batch_execute(
        "DROP MATERIALIZED VIEW IF EXISTS ct_counts;
         CREATE MATERIALIZED VIEW ct_counts AS SELECT count(*) AS n FROM ct_items;
         CREATE UNIQUE INDEX ON ct_counts (n);",
    )
    .expect("a matview over a distributed table");
    refused(
        &mut c,
        "SELECT storage.register_matview('ct_counts')",
        "storage.register_matview",
        "distributed",
    );
    // nothing was left behind: no capture, no search column, no registration, no policies
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM audit._tracked WHERE table_name IN ('ct_items'::regclass, 'ct_ref'::regclass)"
        ),
        0
    );
    assert_eq!(
        one::<i64>(&mut c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'ct_items'::regclass AND attname = 'tsv'"),
        0
    );
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM storage.matview_config WHERE view = 'ct_counts'::regclass"
        ),
        0
    );
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM pg_policy WHERE polrelid = 'ct_items'::regclass"
        ),
        0
    );

    // the coordinator's own tables are audited as anywhere
    c.batch_execute(
        "SELECT audit.enable('ct_local');
         INSERT INTO ct_local VALUES (1, 'a');
         UPDATE ct_local SET name = 'b' WHERE id = 1;",
    )
    .expect("audit a coordinator-local table");
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM audit.history('ct_local', '{\"id\": 1}')"
        ),
        2
    );
    c.batch_execute(
        "SELECT audit.disable('ct_local'); DROP MATERIALIZED VIEW ct_counts; DROP TABLE ct_items, ct_ref, ct_local;",
    )
    .expect("cleanup");
}

/// A distributed partitioned table kept from the coordinator: children premade (Citus distributes
/// them), rows that landed in the default partition moved into new children by run_maintenance
/// (the coordinator's copy of the default is empty: the rows are in shards), no copy of the moved
/// rows left in the coordinator's tables.
#[test]
#[ignore = "the Citus tier: make test runs it with the vendored Citus"]
fn distributed_parent_drains_its_default_partition() {
    let mut c = coordinator();
    c.batch_execute(
        "DROP TABLE IF EXISTS ct_views CASCADE;
         CREATE TABLE ct_views (id bigint NOT NULL, viewed_at timestamptz NOT NULL, ip text)
             PARTITION BY RANGE (viewed_at);
         SELECT create_distributed_table('ct_views', 'id');
         SELECT storage.create_partitions('ct_views', '1 day', 2);
         INSERT INTO ct_views SELECT g, now() + g * interval '1 minute', '10.0.0.1' FROM generate_series(1, 50) g;
         INSERT INTO ct_views SELECT 1000 + g, now() + interval '20 days' + g * interval '1 minute', '10.0.0.2'
           FROM generate_series(1, 30) g;",
    )
    .expect("a distributed partitioned table with rows in its default partition");
    // create_partitions names the default partition <parent>_default
    assert_eq!(
        one::<String>(
            &mut c,
            "SELECT partition::text FROM storage.partitions('ct_views') WHERE is_default"
        ),
        "ct_views_default"
    );
    assert_eq!(
        one::<i64>(&mut c, "SELECT count(*) FROM ct_views_default"),
        30
    );
    assert_eq!(
        one::<Option<String>>(&mut c, "SELECT storage._citus_kind('ct_views_default')").as_deref(),
        Some("distributed")
    );
    let moved: i64 = one(
        &mut c,
        "SELECT sum(moved_from_default)::bigint FROM storage.run_maintenance('ct_views')",
    );
    assert_eq!(moved, 30);
    assert_eq!(
        one::<i64>(&mut c, "SELECT count(*) FROM ct_views_default"),
        0
    );
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM ct_views"), 80);
    // every child is distributed and holds nothing on the coordinator itself
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM storage.partitions('ct_views') p WHERE storage._citus_kind(p.partition) IS DISTINCT FROM 'distributed'"
        ),
        0
    );
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT sum(pg_relation_size(p.partition))::bigint FROM storage.partitions('ct_views') p"
        ),
        0
    );
    // the moved rows are where routing puts them
    assert_eq!(
        one::<i64>(
            &mut c,
            "SELECT count(*) FROM ct_views WHERE viewed_at > now() + interval '19 days'"
        ),
        30
    );
    c.batch_execute("DROP TABLE ct_views").expect("cleanup");
}
