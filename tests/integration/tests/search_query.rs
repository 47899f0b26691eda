//! The query side of search (issue 41): `storage.search` against the hand-written query,
//! websearch syntax, prefixes and stop words, synonyms, typo tolerance from the vocabulary, row
//! security, and what an ordinary role may not do with any of it.

use pg_storage_integration::{
    connect, connect_as, connect_noticed, count, describe, fresh_db, sqlstate,
};
use postgres::Client;

const WORDS: [&str; 24] = [
    "postgres",
    "index",
    "tuning",
    "vacuum",
    "replication",
    "standby",
    "query",
    "planner",
    "partition",
    "trigger",
    "database",
    "snapshot",
    "deadlock",
    "isolation",
    "commit",
    "latency",
    "cache",
    "memory",
    "benchmark",
    "headline",
    "ranking",
    "author",
    "comment",
    "favorite",
];

/// The blog's articles, 300 of them, each of words picked by its id (deterministic), searchable
/// by title (A), summary (B) and content (C).
fn blog(c: &mut Client) {
    c.batch_execute(
        "CREATE TABLE articles (id int PRIMARY KEY, title text, summary text, content text, tenant int NOT NULL DEFAULT 1);",
    )
    .expect("articles");
    let words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
    c.execute(
        "INSERT INTO articles (id, title, summary, content)
         SELECT g,
                ($1::text[])[1 + g % 24] || ' ' || ($1::text[])[1 + (g * 7) % 24],
                ($1::text[])[1 + (g * 5) % 24] || ' and ' || ($1::text[])[1 + (g * 11) % 24],
                (SELECT string_agg(($1::text[])[1 + (g * k * 13 + k) % 24], ' ') FROM generate_series(1, 30) k)
                  || CASE WHEN g % 10 = 0 THEN ' the query planner chooses an index' ELSE '' END
           FROM generate_series(1, 300) g",
        &[&words],
    )
    .expect("rows");
    c.batch_execute(
        "SELECT storage.enable_search('articles', 'searchable', 'english',
                '{\"title\": \"A\", \"summary\": \"B\", \"content\": \"C\"}');
         ANALYZE articles;",
    )
    .expect("enable_search");
}

fn keys_and_ranks(c: &mut Client, sql: &str, q: &str) -> Vec<(String, f32)> {
    c.query(sql, &[&q])
        .unwrap_or_else(|e| panic!("{sql} with {q}: {e}"))
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get(1)))
        .collect()
}

#[test]
fn search_ranks_as_the_hand_written_query_with_snippets_of_the_best_weighted_source() {
    let mut c = fresh_db("itest_search_rank");
    blog(&mut c);
    // the hand-written query: the column's configuration, ts_rank_cd with its weights, ties by key
    let hand = "SELECT jsonb_build_object('id', id)::text, ts_rank_cd(searchable, q)
                  FROM articles, storage.search_tsquery('english', $1) q
                 WHERE searchable @@ q ORDER BY 2 DESC, id LIMIT 20";
    let ours = "SELECT key::text, rank FROM storage.search('articles', $1)";
    for q in [
        "postgres index",
        "vacuum deadlock",
        "replication or standby",
        "cache -memory",
        "\"query planner\"",
        "tun",
        "snapshot isol",
    ] {
        let expected = keys_and_ranks(&mut c, hand, q);
        assert!(!expected.is_empty(), "{q}: the data must match it");
        assert_eq!(keys_and_ranks(&mut c, ours, q), expected, "{q}");
    }
    // pages: the next 20 are the hand-written query's next 20
    let page2 = keys_and_ranks(
        &mut c,
        "SELECT key::text, rank FROM storage.search('articles', $1, 20, 20)",
        "postgres or index",
    );
    let hand2 = keys_and_ranks(
        &mut c,
        "SELECT jsonb_build_object('id', id)::text, ts_rank_cd(searchable, q)
           FROM articles, storage.search_tsquery('english', $1) q
          WHERE searchable @@ q ORDER BY 2 DESC, id LIMIT 20 OFFSET 20",
        "postgres or index",
    );
    assert_eq!(page2.len(), 20);
    assert_eq!(page2, hand2);

    // snippets: ts_headline of the first source, in weight order, that holds a word of the query
    let mismatched = count(
        &mut c,
        "WITH q AS (SELECT storage.search_tsquery('english', 'vacuum deadlock') AS q)
         SELECT count(*) FROM storage.search('articles', 'vacuum deadlock') s
           JOIN articles a ON a.id = (s.key ->> 'id')::int, q
          WHERE s.headline IS DISTINCT FROM ts_headline('english',
                CASE WHEN ts_filter(a.searchable, '{a}') @@ 'vacuum | deadlock'::tsquery THEN a.title
                     WHEN ts_filter(a.searchable, '{b}') @@ 'vacuum | deadlock'::tsquery THEN a.summary
                     ELSE a.content END, q.q)",
    );
    assert_eq!(mismatched, 0);
    let marked = count(
        &mut c,
        "SELECT count(*) FROM storage.search('articles', 'vacuum deadlock') WHERE headline ~ '<b>(vacuum|deadlock)</b>'",
    );
    assert_eq!(marked, 20, "every snippet marks a matched word");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.search('articles', 'vacuum', headline => false) WHERE headline IS NULL"
        ),
        20
    );
    // limits
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.search('articles', 'vacuum', 0)"
        ),
        0
    );
    assert_eq!(
        sqlstate(
            &mut c,
            "SELECT * FROM storage.search('articles', 'vacuum', -1)"
        ),
        "22023"
    );
    // a table without a search column, or without a key
    c.batch_execute("CREATE TABLE plain (id int PRIMARY KEY, body text)")
        .expect("plain");
    assert_eq!(
        sqlstate(&mut c, "SELECT * FROM storage.search('plain', 'x')"),
        "55000"
    );
}

#[test]
fn websearch_syntax_prefixes_and_stop_words_and_the_gin_index() {
    let (mut c, notices) = {
        let mut admin = fresh_db("itest_search_syntax");
        blog(&mut admin);
        connect_noticed("itest_search_syntax", "postgres")
    };
    let n = |c: &mut Client, q: &str| -> i64 {
        c.query_one(
            "SELECT count(*) FROM storage.search('articles', $1, 1000)",
            &[&q],
        )
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .get(0)
    };
    let direct = |c: &mut Client, cond: &str| -> i64 {
        count(c, &format!("SELECT count(*) FROM articles WHERE {cond}"))
    };
    // a phrase: the words adjacent, in order
    assert_eq!(
        n(&mut c, "\"query planner\""),
        direct(&mut c, "content ~* 'query planner'")
    );
    assert_eq!(
        n(&mut c, "\"planner query\""),
        direct(
            &mut c,
            "searchable @@ phraseto_tsquery('english', 'planner query')"
        )
    );
    // -word excludes, or is either
    assert_eq!(
        n(&mut c, "cache -memory"),
        direct(
            &mut c,
            "searchable @@ to_tsquery('english', 'cache & !memory')"
        )
    );
    assert_eq!(
        n(&mut c, "replication or standby"),
        direct(
            &mut c,
            "searchable @@ to_tsquery('english', 'replication | standby')"
        )
    );
    // the last word as a prefix while it is typed; a space after it ends it
    assert_eq!(
        n(&mut c, "tun"),
        direct(&mut c, "searchable @@ to_tsquery('english', 'tun:*')")
    );
    assert!(n(&mut c, "tun") > 0);
    assert_eq!(n(&mut c, "tun "), 0, "a finished word is not a prefix");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM (SELECT storage.search_tsquery('english', 'vacuum dead')::text AS q) s WHERE q = '''vacuum'' & ''dead'':*'"
        ),
        1
    );
    // stop words, punctuation, nothing: no rows, no error, no notice
    notices.lock().expect("notices").clear();
    for q in [
        "the",
        "the and of",
        "!!!",
        "",
        "   ",
        "\"",
        "-",
        "or",
        "\"the\" -a",
        "'''\\",
    ] {
        assert_eq!(n(&mut c, q), 0, "{q:?}");
    }
    assert_eq!(
        c.query_one("SELECT count(*) FROM storage.search('articles', NULL)", &[])
            .expect("NULL")
            .get::<_, i64>(0),
        0
    );
    assert!(
        notices.lock().expect("notices").is_empty(),
        "{:?}",
        notices.lock().expect("notices")
    );
    // the GIN index answers the match (the plan of the statement storage.search runs)
    c.batch_execute(
        "LOAD 'auto_explain';
         SET auto_explain.log_min_duration = 0;
         SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_level = notice;
         SET enable_seqscan = off;",
    )
    .expect("auto_explain");
    notices.lock().expect("notices").clear();
    c.query(
        "SELECT * FROM storage.search('articles', 'vacuum deadlock')",
        &[],
    )
    .expect("explained");
    let plans = notices.lock().expect("notices").join("\n");
    let ours = plans
        .split("duration:")
        .find(|p| p.contains("Query Text: SELECT jsonb_build_object"))
        .unwrap_or_else(|| panic!("no plan of the search statement in {plans}"));
    assert!(
        ours.contains("Bitmap Index Scan on articles_searchable_idx"),
        "{ours}"
    );
    assert!(
        ours.contains("Limit"),
        "snippets only for the rows returned: {ours}"
    );
}

#[test]
fn synonyms_apply_at_once_and_go_when_removed() {
    let mut c = fresh_db("itest_search_synonyms");
    blog(&mut c);
    let n = |c: &mut Client, q: &str| -> i64 {
        c.query_one(
            "SELECT count(*) FROM storage.search('articles', $1, 1000)",
            &[&q],
        )
        .expect("search")
        .get(0)
    };
    let databases = count(
        &mut c,
        "SELECT count(*) FROM articles WHERE searchable @@ to_tsquery('english', 'database')",
    );
    assert!(databases > 0);
    assert_eq!(n(&mut c, "db "), 0);
    c.batch_execute("INSERT INTO storage.search_synonyms (config, term, synonyms) VALUES ('english', 'db', '{database}')")
        .expect("a synonym as a row");
    assert_eq!(n(&mut c, "db "), databases);
    // while typed too (the prefix, and the word's synonyms)
    assert!(n(&mut c, "db") >= databases);
    c.batch_execute("DELETE FROM storage.search_synonyms WHERE term = 'db'")
        .expect("removed");
    assert_eq!(n(&mut c, "db "), 0);
    // the function: set, replace, remove
    let set: bool = c
        .query_one(
            "SELECT storage.search_synonyms('english', 'rdbms', '{postgres, database}')",
            &[],
        )
        .expect("set")
        .get(0);
    assert!(set);
    let both = count(
        &mut c,
        "SELECT count(*) FROM articles WHERE searchable @@ to_tsquery('english', 'postgres | database')",
    );
    assert_eq!(n(&mut c, "rdbms "), both);
    c.batch_execute("SELECT storage.search_synonyms('english', 'rdbms', '{postgres}')")
        .expect("replace");
    assert_eq!(
        n(&mut c, "rdbms "),
        count(
            &mut c,
            "SELECT count(*) FROM articles WHERE searchable @@ to_tsquery('english', 'postgres')"
        )
    );
    let removed: bool = c
        .query_one(
            "SELECT storage.search_synonyms('english', 'rdbms', NULL)",
            &[],
        )
        .expect("remove")
        .get(0);
    assert!(removed);
    assert_eq!(n(&mut c, "rdbms "), 0);
    assert_eq!(
        sqlstate(
            &mut c,
            "SELECT storage.search_synonyms('english', 'the', '{a}')"
        ),
        "22023",
        "a stop word has no words to rewrite"
    );
    // an ordinary role reads them and writes none
    c.batch_execute(
        "DROP ROLE IF EXISTS itest_syn_user; CREATE ROLE itest_syn_user LOGIN;
         GRANT SELECT ON articles TO itest_syn_user;
         INSERT INTO storage.search_synonyms VALUES ('english', 'db', '{database}');",
    )
    .expect("role");
    let mut u = connect_as("itest_search_synonyms", "itest_syn_user");
    assert_eq!(n(&mut u, "db "), databases);
    for sql in [
        "INSERT INTO storage.search_synonyms VALUES ('english', 'postgres', '{mysql}')",
        "UPDATE storage.search_synonyms SET synonyms = '{nothing}'",
        "DELETE FROM storage.search_synonyms",
        "SELECT storage.search_synonyms('english', 'postgres', '{mysql}')",
    ] {
        assert_eq!(sqlstate(&mut u, sql), "42501", "{sql}");
    }
}

#[test]
fn typos_are_corrected_from_the_vocabulary_and_never_name_a_hidden_word() {
    let db = "itest_search_typos";
    let mut c = fresh_db(db);
    blog(&mut c);
    let (mut n, notices) = connect_noticed(db, "postgres");
    // without pg_trgm: a NOTICE says so, the search runs as typed
    let s: Option<String> = n
        .query_one("SELECT storage.search_suggest('articles', 'databse')", &[])
        .expect("suggest")
        .get(0);
    assert_eq!(s, None);
    assert!(
        notices
            .lock()
            .expect("notices")
            .iter()
            .any(|m| m.contains("unavailable")),
        "{:?}",
        notices.lock().expect("notices")
    );
    assert_eq!(
        count(
            &mut n,
            "SELECT count(*) FROM storage.search('articles', 'databse replicaton')"
        ),
        0
    );

    c.batch_execute("CREATE EXTENSION pg_trgm; SELECT storage._search_words_merge();")
        .expect("pg_trgm");
    let suggest = |c: &mut Client, q: &str| -> Option<String> {
        c.query_one("SELECT storage.search_suggest('articles', $1)", &[&q])
            .expect("suggest")
            .get(0)
    };
    assert_eq!(
        suggest(&mut c, "databse replicaton").as_deref(),
        Some("databas replic")
    );
    assert_eq!(
        suggest(&mut c, "database replication"),
        None,
        "nothing to correct"
    );
    assert_eq!(suggest(&mut c, "xqzvw"), None, "nothing close");
    assert_eq!(
        keys_and_ranks(
            &mut c,
            "SELECT key::text, rank FROM storage.search('articles', $1)",
            "databse replicaton"
        ),
        keys_and_ranks(
            &mut c,
            "SELECT key::text, rank FROM storage.search('articles', $1)",
            "database replication"
        ),
        "the search uses the corrections"
    );
    // a new word is in the vocabulary once its transaction commits and the queue is merged; a
    // savepoint rolled back and done again still queues it
    c.batch_execute(
        "BEGIN;
         SAVEPOINT s;
         INSERT INTO articles (id, title) VALUES (1001, 'kubernetes operators');
         ROLLBACK TO s;
         INSERT INTO articles (id, title) VALUES (1001, 'kubernetes operators');
         COMMIT;
         SELECT storage._search_words_merge();",
    )
    .expect("a new word");
    assert_eq!(suggest(&mut c, "kubrnetes").as_deref(), Some("kubernet"));
    c.batch_execute(
        "BEGIN;
         INSERT INTO articles (id, title) VALUES (1002, 'zeppelins');
         ROLLBACK;
         INSERT INTO articles (id, title) VALUES (1003, 'zeppelins again');
         SELECT storage._search_words_merge();",
    )
    .expect("a word after an aborted transaction");
    assert_eq!(suggest(&mut c, "zepelins").as_deref(), Some("zeppelin"));

    // row security: tenant 2's words are never suggested to tenant 1
    c.batch_execute(
        "INSERT INTO articles (id, title, tenant) VALUES (2001, 'acquisition of moonshine', 2);
         SELECT storage._search_words_merge();
         ALTER TABLE articles ENABLE ROW LEVEL SECURITY;
         CREATE POLICY by_tenant ON articles USING (tenant = current_setting('app.tenant')::int);
         DROP ROLE IF EXISTS itest_typo_tenant; CREATE ROLE itest_typo_tenant LOGIN;
         GRANT SELECT ON articles TO itest_typo_tenant;",
    )
    .expect("tenants");
    let mut t = connect_as(db, "itest_typo_tenant");
    t.batch_execute("SET app.tenant = '1'").expect("tenant 1");
    assert_eq!(suggest(&mut t, "moonshne"), None, "a hidden row's word");
    assert_eq!(
        count(
            &mut t,
            "SELECT count(*) FROM storage.search('articles', 'moonshine')"
        ),
        0
    );
    assert!(
        count(
            &mut t,
            "SELECT count(*) FROM storage.search('articles', 'vacuum', 1000)"
        ) > 0
    );
    assert_eq!(
        count(&mut t, "SELECT count(*) FROM storage.search('articles', 'vacuum', 1000) WHERE (key->>'id')::int > 2000"),
        0
    );
    t.batch_execute("SET app.tenant = '2'").expect("tenant 2");
    assert_eq!(suggest(&mut t, "moonshne").as_deref(), Some("moonshin"));
    assert_eq!(
        count(
            &mut t,
            "SELECT count(*) FROM storage.search('articles', 'moonshne')"
        ),
        1
    );
    assert_eq!(
        count(
            &mut t,
            "SELECT count(*) FROM storage.search('articles', 'vacuum', 1000)"
        ),
        0
    );
    // the vocabulary's internals are the extension's
    for sql in [
        "SELECT * FROM storage._search_words",
        "SELECT * FROM storage._search_words_queue",
        "INSERT INTO storage._search_words_queue VALUES ('articles'::regclass, 'forged')",
        "SELECT storage._search_words_merge()",
    ] {
        assert_eq!(sqlstate(&mut t, sql), "42501", "{sql}");
    }
    // the corrections' own check runs as the caller: a table it may not read is refused
    c.batch_execute("CREATE TABLE secret (id int PRIMARY KEY, body text);
                     INSERT INTO secret VALUES (1, 'classified blueprint');
                     SELECT storage.enable_search('secret', 'tsv', 'english', '{\"body\": \"A\"}');")
        .expect("secret");
    for sql in [
        "SELECT storage._search_correction('secret', 'tsv', 'blueprnt')",
        "SELECT storage._search_correction('secret', 'tsv', 'blueprint')",
        "SELECT storage.search_suggest('secret', 'blueprnt')",
        "SELECT * FROM storage.search('secret', 'blueprint')",
    ] {
        assert_eq!(sqlstate(&mut t, sql), "42501", "{sql}");
    }
}

#[test]
fn writers_of_new_words_never_wait_for_each_other_and_odd_input_is_only_text() {
    let db = "itest_search_writers";
    let mut c = fresh_db(db);
    blog(&mut c);
    c.batch_execute("CREATE EXTENSION pg_trgm")
        .expect("pg_trgm");
    // two transactions writing the same new words in opposite orders: neither waits
    let mut a = connect(db);
    let mut b = connect(db);
    a.batch_execute("BEGIN; INSERT INTO articles (id, title) VALUES (5001, 'quokka wombat')")
        .expect("a");
    b.batch_execute(
        "SET statement_timeout = '3s'; BEGIN; INSERT INTO articles (id, title) VALUES (5002, 'wombat quokka')",
    )
    .expect("b did not wait for a");
    a.batch_execute("COMMIT").expect("a commits");
    b.batch_execute("COMMIT").expect("b commits");
    c.batch_execute("SELECT storage._search_words_merge()")
        .expect("merge");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage._search_words WHERE word IN ('quokka', 'wombat')"
        ),
        2
    );
    // quotes, backslashes, long and many words, other scripts: text, never an error
    c.batch_execute(
        "INSERT INTO articles (id, title) VALUES (6001, 'o''neil''s back\\slash straße naïve 東京');
         SELECT storage._search_words_merge();",
    )
    .expect("odd words");
    let long = "postgres ".repeat(255);
    let many: String = (0..256).map(|i| format!("w{i}x ")).collect();
    for q in [
        "o'neil",
        "o'nel",
        "back\\slash",
        "bakslash",
        "straße",
        "strase",
        "東京",
        "'\\''",
        "\\",
        "\"unterminated phrase",
        "((( ))) & | ! <-> :*",
        long.as_str(),
        many.as_str(),
    ] {
        c.query("SELECT * FROM storage.search('articles', $1)", &[&q])
            .unwrap_or_else(|e| panic!("{:.60}: {}", q, describe(&e)));
        c.query("SELECT storage.search_suggest('articles', $1)", &[&q])
            .unwrap_or_else(|e| panic!("{:.60}: {}", q, describe(&e)));
    }
    // past a search box's size: a clear error, not PostgreSQL's stack limit
    for q in [
        "postgres ".repeat(20_000),
        "x".repeat(5000),
        (0..300).map(|i| format!("w{i} ")).collect(),
    ] {
        let e = c
            .query("SELECT * FROM storage.search('articles', $1)", &[&q])
            .expect_err("too long");
        assert_eq!(
            e.code().map(|s| s.code()),
            Some("54000"),
            "{}",
            describe(&e)
        );
    }
}

#[test]
fn text_from_related_tables_follows_their_rows_at_once() {
    let db = "itest_search_related";
    let mut c = fresh_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS itest_rel_owner; CREATE ROLE itest_rel_owner LOGIN;
         DROP ROLE IF EXISTS itest_rel_writer; CREATE ROLE itest_rel_writer LOGIN;
         GRANT CREATE ON SCHEMA public TO itest_rel_owner;
         SET ROLE itest_rel_owner;
         CREATE TABLE articles (id int PRIMARY KEY, title text, body text);
         CREATE TABLE article_tags (article_id int REFERENCES articles, tag text, PRIMARY KEY (article_id, tag));
         CREATE TABLE authors (article_id int PRIMARY KEY, name text);
         INSERT INTO articles VALUES (1, 'Tuning indexes', 'GIN and btree'), (2, 'Cooking pasta', 'salt water');
         INSERT INTO article_tags VALUES (1, 'postgres'), (1, 'performance'), (2, 'kitchen');
         INSERT INTO authors VALUES (1, 'Ada Lovelace');
         GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON article_tags TO itest_rel_writer;
         RESET ROLE;",
    )
    .expect("the blog's tables, owned by an ordinary role");
    c.batch_execute(
        "SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\", \"body\": \"C\"}',
                sources => '{\"tags\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"tag\", \"weight\": \"B\"},
                             \"author\": {\"table\": \"public.authors\", \"key\": \"article_id\", \"column\": \"name\"}}')",
    )
    .expect("enable_search with sources");
    let found = |c: &mut Client, q: &str| -> Vec<String> {
        c.query(
            "SELECT key::text FROM storage.search('articles', $1)",
            &[&q],
        )
        .expect("search")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let one = vec!["{\"id\": 1}".to_string()];
    let two = vec!["{\"id\": 2}".to_string()];
    assert_eq!(found(&mut c, "postgres "), one);
    assert_eq!(found(&mut c, "lovelace "), one);
    // weights: a tag is B, an author D, as given
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM articles WHERE id = 1 AND searchable @@ 'postgr:B'::tsquery AND searchable @@ 'lovelac:D'::tsquery"),
        1
    );
    // the writer of tags (no right on articles) changes the results at once, statement by statement
    let mut w = connect_as(db, "itest_rel_writer");
    w.batch_execute("INSERT INTO article_tags VALUES (2, 'italian')")
        .expect("insert");
    assert_eq!(found(&mut c, "italian "), two);
    w.batch_execute("UPDATE article_tags SET tag = 'french' WHERE tag = 'italian'")
        .expect("update");
    assert!(found(&mut c, "italian ").is_empty());
    assert_eq!(found(&mut c, "french "), two);
    w.batch_execute("DELETE FROM article_tags WHERE tag = 'postgres'")
        .expect("delete");
    assert!(found(&mut c, "postgres ").is_empty());
    // in the writer's own transaction too
    w.batch_execute("BEGIN; INSERT INTO article_tags VALUES (1, 'vacuum')")
        .expect("in a transaction");
    assert_eq!(
        w.query(
            "SELECT key::text FROM storage.search('articles', 'vacuum ')",
            &[]
        )
        .map(|r| r.len())
        .unwrap_or(0),
        0,
        "the writer may not read articles: its search is refused, not widened"
    );
    w.batch_execute("ROLLBACK").ok();
    w.batch_execute("TRUNCATE article_tags").expect("truncate");
    assert!(found(&mut c, "french ").is_empty());
    assert!(found(&mut c, "kitchen ").is_empty());
    assert_eq!(found(&mut c, "lovelace "), one, "another source stays");
    // the articles' own changes keep the related text
    c.batch_execute("INSERT INTO article_tags VALUES (2, 'dinner'); UPDATE articles SET title = 'Cooking spaghetti' WHERE id = 2")
        .expect("own change");
    assert_eq!(found(&mut c, "dinner "), two);
    assert_eq!(found(&mut c, "spaghetti "), two);
    // the triggers are the related tables' owner's, the configuration the extension's
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'article_tags'::regclass AND tgname LIKE 'pgse_search_related_%'"),
        4
    );
    let related: String = c
        .query_one("SELECT related::text FROM storage.search_columns WHERE table_name = 'articles'::regclass", &[])
        .expect("view")
        .get(0);
    assert!(
        related.contains("article_tags") && related.contains("authors"),
        "{related}"
    );
    for sql in [
        "SELECT storage._search_related()",
        "INSERT INTO storage._search_sources VALUES ('articles', 'searchable', 'x', 'article_tags', 'article_id', 'tag', 'id', 'A')",
        "DELETE FROM storage._search_sources",
    ] {
        let state = sqlstate(&mut w, sql);
        assert!(state == "42501" || state == "39P01", "{sql}: {state}");
    }
    // a trigger attached by hand to a table no source names does nothing
    w.batch_execute(
        "CREATE TEMP TABLE mine (article_id int, tag text);
         CREATE TRIGGER t AFTER INSERT ON mine REFERENCING NEW TABLE AS pgse_new FOR EACH STATEMENT EXECUTE FUNCTION storage._search_related();
         INSERT INTO mine VALUES (1, 'forged');",
    )
    .expect("a trigger by hand");
    assert!(found(&mut c, "forged ").is_empty());

    // without sources: none, and the related tables' triggers go
    c.batch_execute("SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\", \"body\": \"C\"}')")
        .expect("without sources");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgse_search_related_%'"
        ),
        0
    );
    assert!(found(&mut c, "lovelace ").is_empty());

    // what enable_search refuses
    c.batch_execute(
        "CREATE TABLE pairs (a int, b int, t text, PRIMARY KEY (a, b));
         CREATE TABLE pair_notes (a int, note text);
         CREATE TABLE text_keyed (article_id text, tag text);
         CREATE TABLE hidden (article_id int, tag text);
         REVOKE ALL ON hidden FROM itest_rel_owner;",
    )
    .expect("tables to refuse");
    for (sources, state) in [
        ("'{\"x\": {\"table\": \"nowhere\", \"key\": \"article_id\", \"column\": \"tag\"}}'", "42P01"),
        ("'{\"x\": {\"table\": \"article_tags\", \"key\": \"nope\", \"column\": \"tag\"}}'", "42703"),
        ("'{\"x\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"nope\"}}'", "42703"),
        ("'{\"x\": {\"table\": \"text_keyed\", \"key\": \"article_id\", \"column\": \"tag\"}}'", "42804"),
        ("'{\"x\": {\"table\": \"hidden\", \"key\": \"article_id\", \"column\": \"tag\"}}'", "42501"),
        ("'{\"x\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"tag\", \"weight\": \"E\"}}'", "22023"),
        ("'{\"x\": {\"table\": \"article_tags\"}}'", "22023"),
        ("'[1]'", "22023"),
        ("'{\"x\": {\"table\": \"articles\", \"key\": \"id\", \"column\": \"title\"}}'", "22023"),
    ] {
        let sql = format!("SELECT storage.enable_search('articles', 'searchable', 'english', '{{\"title\": \"A\"}}', sources => {sources})");
        assert_eq!(sqlstate(&mut c, &sql), state, "{sources}");
    }
    assert_eq!(
        sqlstate(
            &mut c,
            "SELECT storage.enable_search('pairs', 'tsv', 'english', '{\"t\": \"A\"}', sources => '{\"n\": {\"table\": \"pair_notes\", \"key\": \"a\", \"column\": \"note\"}}')"
        ),
        "0A000"
    );
}

/// What a fresh-context attacker found in the query side, kept fixed.
#[test]
fn what_the_attackers_found_stays_fixed() {
    let db = "itest_search_attack";
    let mut c = fresh_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS itest_sa_mallory; CREATE ROLE itest_sa_mallory LOGIN;
         DROP ROLE IF EXISTS itest_sa_alice; CREATE ROLE itest_sa_alice LOGIN;
         CREATE SCHEMA mallory AUTHORIZATION itest_sa_mallory;
         CREATE SCHEMA alice AUTHORIZATION itest_sa_alice;
         CREATE EXTENSION pg_trgm;",
    )
    .expect("roles");
    // 1. a search trigger attached by hand to a view (whose function a reader runs) is no search
    //    column: the merge never reads it, as the extension's owner or anyone
    let mut m = connect_as(db, "itest_sa_mallory");
    m.batch_execute(
        "CREATE FUNCTION mallory.evil() RETURNS tsvector LANGUAGE plpgsql AS $$
         BEGIN IF current_user <> 'itest_sa_mallory' THEN EXECUTE 'ALTER ROLE itest_sa_mallory SUPERUSER'; END IF;
               RETURN 'x'; END $$;
         CREATE VIEW mallory.v AS SELECT 'x'::text AS body, mallory.evil() AS searchable;
         CREATE TRIGGER t BEFORE INSERT ON mallory.v FOR EACH STATEMENT
           EXECUTE FUNCTION storage.tsvector_update('searchable', 'english', 'body');
         CREATE TABLE mallory.dos (id int PRIMARY KEY, body text, searchable text);
         CREATE TRIGGER t BEFORE INSERT ON mallory.dos FOR EACH STATEMENT
           EXECUTE FUNCTION storage.tsvector_update('searchable', 'english', 'body');",
    )
    .expect("mallory's traps");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.search_columns WHERE table_name::text LIKE 'mallory.%'"
        ),
        0
    );
    // 3. and one table's broken vocabulary stops nobody else's
    c.batch_execute(
        "CREATE TABLE alice.secret (id int PRIMARY KEY, body text);
         ALTER TABLE alice.secret OWNER TO itest_sa_alice;
         INSERT INTO alice.secret VALUES (1, 'zanzibarcorp merger confidential');
         SELECT storage.enable_search('alice.secret', 'searchable', 'english', '{\"body\": \"A\"}');
         SELECT storage._search_words_merge();",
    )
    .expect("the merge and enable_search run");
    assert!(!pg_storage_integration::is_superuser("itest_sa_mallory"));
    // 2. no oracle: without SELECT, a word in the vocabulary and one nowhere are both refused
    for w in ["zanzibarcorp", "nosuchword", "zanz:*"] {
        assert_eq!(
            sqlstate(
                &mut m,
                &format!("SELECT storage._search_correction('alice.secret', 'searchable', '{w}')")
            ),
            "42501",
            "{w}"
        );
    }
    // under row security, a word only in a hidden row is suggested as a word in no row is
    c.batch_execute(
        "CREATE TABLE docs (id int PRIMARY KEY, tenant text, body text);
         INSERT INTO docs VALUES (1, 'bob', 'hunter2 password'), (2, 'itest_sa_mallory', 'hunter2zz hunter9zz');
         SELECT storage.enable_search('docs', 'searchable', 'english', '{\"body\": \"A\"}');
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON docs USING (tenant = current_user);
         GRANT SELECT, INSERT ON docs TO itest_sa_mallory;",
    )
    .expect("tenants");
    let suggest = |c: &mut Client, q: &str| -> Option<String> {
        c.query_one("SELECT storage.search_suggest('docs', $1)", &[&q])
            .expect("suggest")
            .get(0)
    };
    assert_eq!(
        suggest(&mut m, "hunter2 ").as_deref(),
        Some("hunter2zz"),
        "bob's hunter2 is not seen"
    );
    assert_eq!(suggest(&mut m, "hunter9 ").as_deref(), Some("hunter9zz"));
    // 5. a word planted by a row that never made it stops no correction
    m.batch_execute(
        "INSERT INTO docs VALUES (1, 'itest_sa_mallory', 'pasword') ON CONFLICT DO NOTHING",
    )
    .expect("nothing inserted");
    c.batch_execute("SELECT storage._search_words_merge()")
        .expect("merge");
    let mut b = {
        c.batch_execute(
            "DROP ROLE IF EXISTS bob; CREATE ROLE bob LOGIN; GRANT SELECT ON docs TO bob;",
        )
        .expect("bob");
        connect_as(db, "bob")
    };
    assert_eq!(suggest(&mut b, "pasword ").as_deref(), Some("password"));
    // 7. operators PostgreSQL's parser gives up on: 54000, not an internal error
    let q = format!("a {}b", "-".repeat(40));
    let e = c
        .query("SELECT storage.search_tsquery('english', $1)", &[&q])
        .expect_err("too complex");
    assert_eq!(
        e.code().map(|s| s.code()),
        Some("54000"),
        "{}",
        describe(&e)
    );
    // 8. a source whose column's name holds a colon is that column, weight D, for snippets too
    c.batch_execute(
        "CREATE TABLE notes (id int PRIMARY KEY, x text, \"x:A\" text);
         INSERT INTO notes VALUES (1, 'INTERNAL NOTE not indexed', 'public words here');
         CREATE TRIGGER t BEFORE INSERT OR UPDATE ON notes FOR EACH ROW
           EXECUTE FUNCTION storage.tsvector_update('tsv', 'english', 'x:A');
         ALTER TABLE notes ADD COLUMN tsv tsvector;
         UPDATE notes SET id = id;",
    )
    .expect("a colon in a name");
    let h: String = c
        .query_one(
            "SELECT headline FROM storage.search('notes', 'public')",
            &[],
        )
        .expect("headline")
        .get(0);
    assert!(
        h.contains("<b>public</b>") && !h.contains("INTERNAL"),
        "{h}"
    );
    // generated columns cannot be sources (a BEFORE trigger runs before they are computed)
    c.batch_execute("CREATE TABLE gen (id int PRIMARY KEY, a text, g text GENERATED ALWAYS AS (upper(a)) STORED)")
        .expect("gen");
    assert_eq!(
        sqlstate(
            &mut c,
            "SELECT storage.enable_search('gen', 'tsv', 'english', '{\"g\": \"A\"}')"
        ),
        "0A000"
    );
    // a partition searches its own rows through its tree's search column
    c.batch_execute(
        "CREATE TABLE posts (id int, at date, body text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE posts_2026 PARTITION OF posts FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE posts_2027 PARTITION OF posts FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
         SELECT storage.enable_search('posts', 'tsv', 'english', '{\"body\": \"A\"}');
         INSERT INTO posts VALUES (1, '2026-05-01', 'partitioned search'), (2, '2027-05-01', 'partitioned search');",
    )
    .expect("partitions");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.search('posts', 'partitioned')"
        ),
        2
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM storage.search('posts_2026', 'partitioned')"
        ),
        1
    );

    // 4. and 6. a database not in UTF8: search works (no prefix, no typos, said once), and bytes
    //    that are not UTF-8 are 22021, never a Rust message
    for (name, encoding) in [
        ("itest_search_latin1", "LATIN1"),
        ("itest_search_ascii", "SQL_ASCII"),
    ] {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'"
            ))
            .expect("a database not in UTF8");
        let (mut l, notices) = connect_noticed(name, "postgres");
        l.batch_execute(
            "CREATE EXTENSION pg_storage_ext; CREATE EXTENSION pg_trgm;
             CREATE TABLE e (id int PRIMARY KEY, body text);
             INSERT INTO e VALUES (1, 'hello world');
             SELECT storage.enable_search('e', 'tsv', 'english', '{\"body\": \"A\"}');",
        )
        .expect("search set up");
        assert_eq!(
            count(&mut l, "SELECT count(*) FROM storage.search('e', 'hello')"),
            1,
            "{encoding}"
        );
        assert_eq!(
            count(&mut l, "SELECT count(*) FROM storage.search('e', 'helo')"),
            0,
            "{encoding}"
        );
        assert!(
            notices
                .lock()
                .expect("notices")
                .iter()
                .any(|n| n.contains("encoding")),
            "{encoding}: {:?}",
            notices.lock().expect("notices")
        );
        if encoding == "SQL_ASCII" {
            for sql in [
                "SELECT storage._search_lexeme(convert_from('\\xc328ff', 'SQL_ASCII')::cstring)",
                "SELECT * FROM storage._search_split(convert_from('\\xc328ff', 'SQL_ASCII')::cstring)",
            ] {
                assert_eq!(sqlstate(&mut l, sql), "22021", "{sql}");
            }
            assert_eq!(
                count(&mut l, "SELECT count(*) FROM storage.search('e', convert_from('\\xc328ff', 'SQL_ASCII'))"),
                0
            );
        }
        drop(l);
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .expect("drop");
    }
}

/// The blog's own shape: article_tags holds tag ids, the names are in tags (a lookup).
#[test]
fn text_through_a_lookup_table_follows_both_tables() {
    let db = "itest_search_lookup";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE articles (id int PRIMARY KEY, title text);
         CREATE TABLE tags (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE article_tags (article_id int REFERENCES articles, tag_id int REFERENCES tags, PRIMARY KEY (article_id, tag_id));
         INSERT INTO articles VALUES (1, 'Tuning indexes'), (2, 'Cooking pasta'), (3, 'Nothing tagged');
         INSERT INTO tags VALUES (1, 'postgres'), (2, 'kitchen'), (3, 'performance');
         INSERT INTO article_tags VALUES (1, 1), (1, 3), (2, 2);
         SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\"}',
                sources => '{\"tags\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"tag_id\",
                                        \"lookup\": {\"table\": \"tags\", \"key\": \"id\", \"column\": \"name\"}, \"weight\": \"B\"}}');",
    )
    .expect("articles tagged through a lookup table");
    let found = |c: &mut Client, q: &str| -> Vec<String> {
        c.query(
            "SELECT key::text FROM storage.search('articles', $1)",
            &[&q],
        )
        .expect("search")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let ids = |v: &[i32]| -> Vec<String> { v.iter().map(|i| format!("{{\"id\": {i}}}")).collect() };
    assert_eq!(found(&mut c, "postgres "), ids(&[1]));
    assert_eq!(found(&mut c, "kitchen "), ids(&[2]));
    // a link added or removed
    c.batch_execute("INSERT INTO article_tags VALUES (3, 1)")
        .expect("link");
    assert_eq!(found(&mut c, "postgres "), ids(&[1, 3]));
    c.batch_execute("DELETE FROM article_tags WHERE article_id = 1 AND tag_id = 1")
        .expect("unlink");
    assert_eq!(found(&mut c, "postgres "), ids(&[3]));
    // a tag renamed: every article carrying it, at once
    c.batch_execute("UPDATE tags SET name = 'postgresql' WHERE id = 1")
        .expect("rename");
    assert!(found(&mut c, "postgres ").is_empty());
    assert_eq!(found(&mut c, "postgresql "), ids(&[3]));
    c.batch_execute("UPDATE tags SET name = 'speed' WHERE id = 3")
        .expect("rename another");
    assert_eq!(found(&mut c, "speed "), ids(&[1]));
    let related: String = c
        .query_one("SELECT related::text FROM storage.search_columns WHERE table_name = 'articles'::regclass", &[])
        .expect("view")
        .get(0);
    assert!(related.contains("\"lookup\""), "{related}");
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgse_search_related_%' AND tgrelid IN ('tags'::regclass, 'article_tags'::regclass)"),
        8
    );
    // a lookup key of another type than the column pointing to it
    c.batch_execute("CREATE TABLE labels (code text PRIMARY KEY, name text)")
        .expect("labels");
    assert_eq!(
        sqlstate(
            &mut c,
            "SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\"}',
                    sources => '{\"t\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"tag_id\",
                                        \"lookup\": {\"table\": \"labels\", \"key\": \"code\", \"column\": \"name\"}}}')"
        ),
        "42804"
    );
    // without sources the lookup table's triggers go too
    c.batch_execute(
        "SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\"}')",
    )
    .expect("no sources");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgse_search_related_%'"
        ),
        0
    );
}
