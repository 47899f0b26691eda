-- Full-text search capability: the trigger function, the view of maintained tsvector columns,
-- comments. The other functions are generated from src/search/.

-- The weighted trigger (src/search/trigger.rs; its C entry refuses a call that is not a trigger).
CREATE FUNCTION storage.tsvector_update() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'tsvector_update_wrapper';

-- Text from related tables (src/search/related.rs): each source of a search column, as
-- storage.enable_search(…, sources => …) recorded it; the triggers read it, never their
-- arguments. Dumped (configuration); written only by the extension's owner.
CREATE TABLE storage._search_sources (
    target regclass NOT NULL,
    search_column name NOT NULL,
    name text NOT NULL,
    related regclass NOT NULL,
    key_column name NOT NULL,
    text_column name NOT NULL,
    target_key name NOT NULL,
    weight text NOT NULL CHECK (weight IN ('A', 'B', 'C', 'D')),
    -- the text in a lookup table text_column points into (article_tags.tag_id -> tags.name)
    lookup regclass,
    lookup_key name,
    lookup_text name,
    PRIMARY KEY (target, search_column, name),
    CHECK ((lookup IS NULL) = (lookup_key IS NULL) AND (lookup IS NULL) = (lookup_text IS NULL))
);
CREATE INDEX _search_sources_related ON storage._search_sources (related);
CREATE INDEX _search_sources_lookup ON storage._search_sources (lookup);
SELECT pg_catalog.pg_extension_config_dump('storage._search_sources', '');
COMMENT ON TABLE storage._search_sources IS
    'Internal: the related sources of search columns (storage.enable_search''s sources): the searched table and column, the source''s name, the related table, its column holding the searched table''s key (target_key), its text column (or the column pointing into the lookup table, whose text column it is), the weight.';

-- The statement trigger on a related table (its C entry refuses a call that is not a trigger).
CREATE FUNCTION storage._search_related() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'search_related_wrapper';
COMMENT ON FUNCTION storage._search_related() IS
    'Internal: AFTER INSERT, UPDATE, DELETE, TRUNCATE FOR EACH STATEMENT on a related table of a search column: recomputes the search column of the rows whose related rows changed, as the searched table''s owner.';

CREATE VIEW storage.search_columns AS
SELECT t.tgrelid::regclass AS table_name,
       a.args[1]::name AS column_name,
       a.args[2] AS config,
       (SELECT jsonb_object_agg(CASE WHEN s ~ ':[A-Da-d]$' THEN left(s, -2) ELSE s END,
                                CASE WHEN s ~ ':[A-Da-d]$' THEN upper(right(s, 1)) ELSE 'D' END)
          FROM unnest(a.args[3:]) AS s) AS weights,
       t.tgname AS trigger_name,
       (SELECT ic.relname
          FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_am am ON am.oid = ic.relam
          JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = i.indkey[0]
         WHERE i.indrelid = t.tgrelid AND am.amname = 'gin' AND att.attname = a.args[1]::name
         ORDER BY ic.relname
         LIMIT 1) AS index_name,
       a.args[3:] AS sources,
       (SELECT jsonb_object_agg(r.name, jsonb_build_object('table', r.related::text, 'key', r.key_column,
                                                           'column', r.text_column, 'weight', r.weight)
                                        || CASE WHEN r.lookup IS NULL THEN '{}'::jsonb
                                                ELSE jsonb_build_object('lookup', jsonb_build_object(
                                                         'table', r.lookup::text, 'key', r.lookup_key, 'column', r.lookup_text)) END)
          FROM storage._search_sources r
         WHERE r.target = t.tgrelid AND r.search_column = a.args[1]::name) AS related
  FROM pg_trigger t
 CROSS JOIN LATERAL (SELECT storage._trigger_args(t.tgargs) AS args) AS a
 WHERE t.tgfoid = 'storage.tsvector_update()'::regprocedure
   AND t.tgparentid = 0
   -- what the trigger can maintain: a BEFORE ROW trigger of a table, on a tsvector column (one
   -- attached by hand to a view, or to a column of another type, is no search column)
   AND (t.tgtype & 3) = 3
   AND EXISTS (SELECT FROM pg_class c WHERE c.oid = t.tgrelid AND c.relkind IN ('r', 'p'))
   AND EXISTS (SELECT FROM pg_attribute att WHERE att.attrelid = t.tgrelid AND att.attname = a.args[1]::name
                                              AND NOT att.attisdropped AND att.atttypid = 'tsvector'::regtype);
GRANT SELECT ON storage.search_columns TO PUBLIC;
COMMENT ON VIEW storage.search_columns IS
    'Every tsvector column kept by a storage.tsvector_update trigger: table, column, configuration (name or per-row column), weights per source, trigger, GIN index, sources in argument order, and its sources in related tables (related: name -> table, key, column, weight).';

COMMENT ON FUNCTION storage.tsvector_update() IS
    'Trigger: BEFORE INSERT OR UPDATE FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update(''tsvector_col'', ''config or config_col'', ''src:A'', ''src2:B'', ...). Equals setweight(E1,w1) || setweight(E2,w2) || ... ; skips parsing when no source changed.';
COMMENT ON FUNCTION storage.enable_search(regclass, name, text, jsonb, jsonb) IS
    'Adds the tsvector column if missing, (re)creates the weighted trigger (sources ordered A to D), adds a GIN index if none, backfills; sources: text from related tables ({"tags": {"table": "article_tags", "key": "article_id", "column": "tag", "weight": "B"}}), kept current by statement triggers on them; returns rows backfilled.';
COMMENT ON FUNCTION storage.rebuild_search(regclass, name, integer) IS
    'Recomputes the tsvector column of every row, batch_rows at a time; returns rows recomputed.';
COMMENT ON FUNCTION storage._trigger_args(bytea) IS
    'Internal: pg_trigger.tgargs as text[].';

-- The query side (docs/search.md, "Searching"): a search box's text to ranked rows with
-- snippets. Synonyms are rows of storage.search_synonyms, their queries computed once when
-- written (generated columns); storage.search_tsquery parses what a user typed.

CREATE FUNCTION storage._search_alternatives(config regconfig, words text[]) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
    w text;
    q tsquery;
    any_of tsquery := ''::tsquery;
BEGIN
    FOREACH w IN ARRAY coalesce(words, '{}') LOOP
        q := phraseto_tsquery(config, w);
        IF numnode(q) > 0 THEN
            any_of := CASE WHEN numnode(any_of) = 0 THEN q ELSE any_of || q END;
        END IF;
    END LOOP;
    RETURN any_of;
END
$$;
COMMENT ON FUNCTION storage._search_alternatives(regconfig, text[]) IS
    'Internal: the words (phrases) parsed with config, joined by OR; empty when every one is a stop word.';

CREATE TABLE storage.search_synonyms (
    config regconfig NOT NULL,
    term text NOT NULL,
    synonyms text[] NOT NULL,
    _target tsquery GENERATED ALWAYS AS (phraseto_tsquery(config, term)) STORED,
    _substitute tsquery GENERATED ALWAYS AS (storage._search_alternatives(config, term || synonyms)) STORED,
    PRIMARY KEY (config, term),
    CONSTRAINT search_synonyms_term_has_words CHECK (numnode(_target) > 0)
);
SELECT pg_catalog.pg_extension_config_dump('storage.search_synonyms', '');
GRANT SELECT ON storage.search_synonyms TO PUBLIC;
COMMENT ON TABLE storage.search_synonyms IS
    'Synonyms of storage.search: a query word or phrase term, under the text search configuration config, also matches each of synonyms (ts_rewrite; effective at once, no dictionary file). One direction: add a row per word for an equivalence.';

CREATE FUNCTION storage.search_synonyms(config regconfig, term text, synonyms text[]) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM storage._require_primary('storage.search_synonyms');
    IF coalesce(cardinality(synonyms), 0) = 0 THEN
        DELETE FROM storage.search_synonyms s WHERE s.config = config AND s.term = term;
        RETURN FOUND;
    END IF;
    INSERT INTO storage.search_synonyms AS s (config, term, synonyms) VALUES (config, term, synonyms)
        ON CONFLICT ON CONSTRAINT search_synonyms_pkey DO UPDATE SET synonyms = excluded.synonyms;
    RETURN true;
EXCEPTION WHEN check_violation THEN
    RAISE EXCEPTION 'the term "%" has no words under %', term, config USING ERRCODE = 'invalid_parameter_value',
        DETAIL = 'The configuration reads it as stop words or punctuation only.',
        HINT = 'Give a word the configuration indexes.';
END
$$;
COMMENT ON FUNCTION storage.search_synonyms(regconfig, text, text[]) IS
    'Sets the synonyms of term under config (a row of the table storage.search_synonyms); NULL or an empty array removes them. Returns whether anything was set or removed.';

-- (client_min_messages: the parser's NOTICE on a query of stop words only is not the caller's
-- concern: such a query finds nothing)
CREATE FUNCTION storage.search_tsquery(config regconfig, query text) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
    s record;
    q tsquery;
    word tsquery;
    prefix tsquery;
BEGIN
    -- a search box, not a document: PostgreSQL's query tree of tens of thousands of words
    -- exceeds the stack in its own functions
    IF length(query) > 4096 OR cardinality(regexp_split_to_array(btrim(query), '\s+')) > 256 THEN
        RAISE EXCEPTION 'a search query is too long: % characters, % words', length(query),
                        cardinality(regexp_split_to_array(btrim(query), '\s+'))
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = 'A search query holds at most 4096 characters and 256 words.',
                  HINT = 'Search with fewer words.';
    END IF;
    -- the word being typed is found in UTF8 text (src/search, pg_storage_core::search)
    IF getdatabaseencoding() = 'UTF8' THEN
        SELECT * INTO s FROM storage._search_split(coalesce(query, '')::cstring);
    ELSE
        SELECT coalesce(query, '') AS rest, NULL::text AS word, false AS by_or INTO s;
    END IF;
    BEGIN
        q := storage._search_synonyms_applied(config, websearch_to_tsquery(config, s.rest));
        word := websearch_to_tsquery(config, s.word);
    EXCEPTION WHEN internal_error THEN
        -- PostgreSQL's parser gives up on some runs of operators ("tsquery stack too small")
        RAISE EXCEPTION 'the search query is too complex' USING ERRCODE = 'program_limit_exceeded',
            DETAIL = format('PostgreSQL''s websearch_to_tsquery: %s.', SQLERRM),
            HINT = 'Search with words and fewer operators.';
    END;
    IF s.word IS NOT NULL THEN
        -- one lexeme: its prefix, as the user types (it matches the word itself too), and the
        -- word's synonyms (a stop word, or several lexemes: as is)
        IF numnode(word) = 1 THEN
            prefix := (word::text || ':*')::tsquery;
            word := storage._search_synonyms_applied(config, word);
            word := CASE WHEN word::text = prefix::text THEN prefix
                         WHEN numnode(word) = 1 THEN prefix ELSE prefix || word END;
        END IF;
        IF numnode(word) > 0 THEN
            q := CASE WHEN numnode(q) = 0 THEN word WHEN s.by_or THEN q || word ELSE q && word END;
        END IF;
    END IF;
    RETURN q;
END
$$;

CREATE FUNCTION storage._search_synonyms_applied(config regconfig, q tsquery) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    IF numnode(q) = 0 THEN
        RETURN q;
    END IF;
    FOR r IN SELECT y._target, y._substitute FROM storage.search_synonyms y
              WHERE y.config = _search_synonyms_applied.config AND q @> y._target ORDER BY y.term LOOP
        q := ts_rewrite(q, r._target, r._substitute);
    END LOOP;
    RETURN q;
END
$$;
COMMENT ON FUNCTION storage._search_synonyms_applied(regconfig, tsquery) IS
    'Internal: q with every term of storage.search_synonyms under config it holds replaced by the term or its synonyms (ts_rewrite).';
COMMENT ON FUNCTION storage.search_tsquery(regconfig, text) IS
    'What a user typed in a search box as a tsquery: websearch_to_tsquery syntax (quotes, -word, or), the last word also as a prefix while it is being typed, synonyms of storage.search_synonyms applied. Empty for stop words or punctuation only; 54000 past 4096 characters or 256 words.';

-- The search column of a table (the first by name when several), its configuration (a
-- per-row configuration column: the queries' is default_text_search_config) and its sources.
CREATE FUNCTION storage._search_target(target regclass, caller text,
                                       OUT column_name name, OUT config regconfig, OUT config_column name,
                                       OUT sources text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
BEGIN
    -- (a partition: its tree's search column, read through the partition)
    SELECT s.column_name, s.config AS cfg,
           ARRAY(SELECT CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = s.table_name AND a.attname = src::name
                                                                      AND a.attnum > 0 AND NOT a.attisdropped)
                             THEN src || ':D' ELSE src END
                   FROM unnest(s.sources) WITH ORDINALITY AS u(src, n) ORDER BY n) AS sources
      INTO c
      FROM storage.search_columns s
     WHERE s.table_name IN (target, pg_partition_root(target))
     ORDER BY s.table_name = target DESC, s.column_name LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% has no search column', target USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = format('%s reads the tsvector column storage.enable_search keeps.', caller),
            HINT = 'Call storage.enable_search on the table first.';
    END IF;
    column_name := c.column_name;
    sources := c.sources;
    IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target AND a.attname = c.cfg::name
                                            AND a.attnum > 0 AND NOT a.attisdropped) THEN
        config_column := c.cfg::name;
        config := current_setting('default_text_search_config')::regconfig;
        RETURN;
    END IF;
    BEGIN
        config := c.cfg::regconfig;
    EXCEPTION WHEN undefined_object OR invalid_name OR syntax_error THEN
        RAISE EXCEPTION 'the text search configuration % of % does not exist', c.cfg, target
            USING ERRCODE = 'undefined_object', DETAIL = 'The search column''s trigger names it.',
                  HINT = 'Name it schema-qualified in storage.enable_search.';
    END;
END
$$;
COMMENT ON FUNCTION storage._search_target(regclass, text) IS
    'Internal: the search column of target read by storage.search and storage.search_suggest, the configuration its queries are parsed with, its per-row configuration column if any, and its sources.';

-- The words of a search box that match nothing, each with the closest vocabulary word that
-- matches a row the caller can see (storage._search_correction): the token's number among the
-- box's whitespace-separated tokens, its lexeme (word:* while typed) and the replacement.
-- Only plain words are corrected (not -negated ones, not or, not punctuated tokens), the first 16.
CREATE FUNCTION storage._search_fixes(target regclass, search_column name, config regconfig, query text)
RETURNS TABLE (token integer, lexeme text, replacement text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tokens text[];
    typing record;
    m text[];
    lex text[];
    words text[] := '{}';
    at integer[] := '{}';
    i integer;
BEGIN
    IF query IS NULL OR btrim(query) = '' THEN
        RETURN;
    END IF;
    IF getdatabaseencoding() <> 'UTF8' THEN
        RAISE NOTICE 'pg_storage_ext: typo tolerance is unavailable: the database encoding is %, not UTF8; searching as typed',
                     getdatabaseencoding();
        RETURN;
    END IF;
    tokens := regexp_split_to_array(btrim(query), '\s+');
    SELECT * INTO typing FROM storage._search_split(query::cstring);
    FOR i IN 1 .. cardinality(tokens) LOOP
        -- a search box's first 16 plain words at most (each costs index probes)
        EXIT WHEN cardinality(words) >= 16;
        m := regexp_match(tokens[i], '^("?)([[:alnum:]]+)([[:punct:]]*)$');
        CONTINUE WHEN m IS NULL OR lower(m[2]) = 'or';
        lex := tsvector_to_array(to_tsvector(config, m[2]));
        CONTINUE WHEN cardinality(lex) <> 1;
        words := words || CASE WHEN i = cardinality(tokens) AND typing.word IS NOT NULL THEN lex[1] || ':*' ELSE lex[1] END;
        at := at || i;
    END LOOP;
    IF cardinality(words) = 0 THEN
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(words) LOOP
        replacement := storage._search_correction(target, search_column, words[i]::cstring);
        CONTINUE WHEN replacement IS NULL;
        token := at[i];
        lexeme := words[i];
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION storage._search_fixes(regclass, name, regconfig, text) IS
    'Internal: the plain words of a search box that match no row, with the closest vocabulary word matching one (storage._search_correction): token number, lexeme, replacement.';

CREATE FUNCTION storage.search_suggest(target regclass, query text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    tokens text[];
    fix record;
    changed boolean := false;
BEGIN
    SELECT * INTO t FROM storage._search_target(target, 'storage.search_suggest');
    IF query IS NULL OR btrim(query) = '' THEN
        RETURN NULL;
    END IF;
    tokens := regexp_split_to_array(btrim(query), '\s+');
    FOR fix IN SELECT * FROM storage._search_fixes(target, t.column_name, t.config, query) LOOP
        tokens[fix.token] := regexp_replace(tokens[fix.token], '[[:alnum:]]+', replace(fix.replacement, '\', '\\'));
        changed := true;
    END LOOP;
    RETURN CASE WHEN changed THEN array_to_string(tokens, ' ') END;
END
$$;
COMMENT ON FUNCTION storage.search_suggest(regclass, text) IS
    '"Did you mean": query with each plain word that matches no row the caller can see replaced by the closest word of target''s search vocabulary (pg_trgm similarity) that matches one, as storage.search does; NULL when nothing is replaced. The words are the vocabulary''s lexemes (stemmed). Without pg_trgm a NOTICE says typo tolerance is unavailable.';

-- (PL/pgSQL refuses an argument and a result column of one name, headline: storage.search is
-- SQL over this)
CREATE FUNCTION storage._search(target regclass, query text, max_results integer, offset_rows integer,
                                want_headline boolean)
RETURNS TABLE (key jsonb, rank real, snippet text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    col record;
    per_row_config boolean;
    cfg regconfig;
    q tsquery;
    keys name[];
    key_expr text;
    key_order text;
    key_inner text;
    key_inner_order text;
    src text[];
    wt text[];
    pick text := 'NULL::text';
    i int;
    sql text;
    fix record;
    fixed tsquery;
    found bigint;
BEGIN
    IF max_results IS NULL OR max_results < 0 OR offset_rows IS NULL OR offset_rows < 0 THEN
        RAISE EXCEPTION 'max_results and offset_rows must be zero or more, got % and %', max_results, offset_rows
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'They page the results: LIMIT and OFFSET.',
                  HINT = 'The defaults are 20 and 0.';
    END IF;
    SELECT * INTO col FROM storage._search_target(target, 'storage.search');
    per_row_config := col.config_column IS NOT NULL;
    cfg := col.config;
    q := storage.search_tsquery(cfg, query);
    IF numnode(q) = 0 OR max_results = 0 THEN
        RETURN;
    END IF;
    -- the key: the primary key (or the replica identity index) columns
    SELECT array_agg(a.attname ORDER BY k.n) INTO keys
      FROM (SELECT i.indkey, i.indrelid FROM pg_index i
             WHERE i.indrelid = target AND (i.indisprimary OR i.indisreplident)
             ORDER BY i.indisprimary DESC LIMIT 1) x
     CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum;
    IF keys IS NULL THEN
        RAISE EXCEPTION '% has no primary key', target USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'storage.search returns each row''s key, and breaks ties of rank by it.',
            HINT = 'Add a primary key.';
    END IF;
    SELECT string_agg(format('%L, s.%I', k, 'k' || n), ', ' ORDER BY n), string_agg(format('s.%I', 'k' || n), ', ' ORDER BY n),
           string_agg(format('t.%I AS %I', k, 'k' || n), ', ' ORDER BY n), string_agg(format('t.%I', k), ', ' ORDER BY n)
      INTO key_expr, key_order, key_inner, key_inner_order FROM unnest(keys) WITH ORDINALITY AS u(k, n);
    -- the snippet's source: of the columns of the best weight holding a word of the query, the
    -- first not NULL (sources are ordered A to D)
    SELECT array_agg(CASE WHEN a ~ ':[A-Da-d]$' THEN left(a, -2) ELSE a END ORDER BY n),
           array_agg(CASE WHEN a ~ ':[A-Da-d]$' THEN lower(right(a, 1)) ELSE 'd' END ORDER BY n)
      INTO src, wt FROM unnest(col.sources) WITH ORDINALITY AS u(a, n);
    IF want_headline THEN
        pick := 'CASE';
        FOR i IN 1 .. cardinality(src) LOOP
            pick := pick || format(' WHEN s.%I IS NOT NULL AND ts_filter(s.%I, %L) @@ $4 THEN s.%I::text',
                                   'src' || i, 'tsv', '{' || wt[i] || '}', 'src' || i);
        END LOOP;
        pick := pick || ' ELSE coalesce(' || (SELECT string_agg(format('s.%I::text', 'src' || i), ', ')
                                                FROM generate_series(1, cardinality(src)) i) || ') END';
        pick := format('ts_headline(%s, %s, $1)',
                       CASE WHEN per_row_config THEN 's.cfg::regconfig' ELSE '$5' END, pick);
    END IF;
    sql := format(
        'SELECT jsonb_build_object(%s), s.rank, %s FROM ('
        ' SELECT %s, t.%I AS tsv, %s AS cfg, %s, ts_rank_cd(t.%I, $1) AS rank FROM %s t WHERE t.%I @@ $1'
        ' ORDER BY rank DESC, %s LIMIT $2 OFFSET $3) s ORDER BY s.rank DESC, %s',
        key_expr, pick, key_inner, col.column_name,
        CASE WHEN per_row_config THEN format('t.%I', col.config_column) ELSE 'NULL' END,
        (SELECT string_agg(format('t.%I AS %I', src[i], 'src' || i), ', ') FROM generate_series(1, cardinality(src)) i),
        col.column_name, target, col.column_name,
        key_inner_order, key_order);
    RETURN QUERY EXECUTE sql USING q, max_results, offset_rows, storage._search_any(q), cfg;
    GET DIAGNOSTICS found = ROW_COUNT;
    IF found > 0 THEN
        RETURN;
    END IF;
    -- nothing found as typed: the words that match nothing, replaced by the closest that match
    -- (storage.search_suggest), and the search again
    fixed := q;
    FOR fix IN SELECT * FROM storage._search_fixes(target, col.column_name, cfg, query) LOOP
        fixed := ts_rewrite(fixed, storage._search_lexeme(fix.lexeme::cstring)::tsquery,
                            storage._search_lexeme(fix.replacement::cstring)::tsquery);
    END LOOP;
    IF fixed::text <> q::text THEN
        RETURN QUERY EXECUTE sql USING fixed, max_results, offset_rows, storage._search_any(fixed), cfg;
    END IF;
END
$$;

-- Any word of a query: its lexemes joined by OR (a snippet's source is a column holding one).
CREATE FUNCTION storage._search_any(q tsquery) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT (SELECT string_agg(m[1], ' | ') FROM regexp_matches(q::text, '(''(?:[^'']|'''')*''(?::\*)?)', 'g') m)::tsquery $$;
COMMENT ON FUNCTION storage._search_any(tsquery) IS
    'Internal: the lexemes of a tsquery joined by OR (prefix marks kept).';
COMMENT ON FUNCTION storage._search(regclass, text, integer, integer, boolean) IS
    'Internal: the body of storage.search, run as its caller.';

CREATE FUNCTION storage.search(target regclass, query text, max_results integer DEFAULT 20,
                               offset_rows integer DEFAULT 0, headline boolean DEFAULT true)
RETURNS TABLE (key jsonb, rank real, headline text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.key, s.rank, s.snippet FROM storage._search($1, $2, $3, $4, $5) AS s $$;
COMMENT ON FUNCTION storage.search(regclass, text, integer, integer, boolean) IS
    'Searches the search column of target (storage.enable_search) for what a user typed (storage.search_tsquery): rows by ts_rank_cd with the column''s weights, ties by key (the primary key as jsonb); headline: ts_headline of the best-weighted source column holding a query word, computed for the rows returned only. Row security and privileges apply (the caller''s query).';
COMMENT ON FUNCTION storage._search_split(cstring) IS
    'Internal: a search box''s text split into the words before the one being typed, that word when it is matched as a prefix, and whether it follows or.';

-- The search vocabulary (typo tolerance; src/search/vocabulary.rs): every lexeme of a table's
-- search column, and the queue the search trigger appends a backend's new lexemes to. Not
-- dumped (table OIDs change in a restore; storage.rebuild_search fills it again); read and
-- written only as the extension's owner.
CREATE TABLE storage._search_words (
    table_name oid NOT NULL,
    word text COLLATE "C" NOT NULL,
    PRIMARY KEY (table_name, word)
);
CREATE TABLE storage._search_words_queue (
    table_name oid NOT NULL,
    word text COLLATE "C" NOT NULL
);
CREATE INDEX _search_words_queue_word ON storage._search_words_queue (table_name, word);
COMMENT ON TABLE storage._search_words IS
    'Internal: the search vocabulary of each table with a search column (its lexemes), for storage.search_suggest; the trigram index on word is made once pg_trgm is installed.';
COMMENT ON TABLE storage._search_words_queue IS
    'Internal: lexemes the search trigger saw, waiting for storage._search_words_merge.';

CREATE FUNCTION storage._search_words_merge(max_rows integer DEFAULT 100000) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    trgm name;
    moved bigint;
    t record;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN 0;
    END IF;
    -- one merger at a time (the writers' inserts do not conflict with this lock)
    BEGIN
        PERFORM storage._run_as_owner('storage._search_words_queue'::regclass,
            'LOCK TABLE storage._search_words_queue IN SHARE UPDATE EXCLUSIVE MODE NOWAIT');
    EXCEPTION WHEN lock_not_available THEN
        RETURN 0;
    END;
    moved := storage._run_as_owner('storage._search_words'::regclass,
        $m$WITH moved AS (
               DELETE FROM storage._search_words_queue q
                WHERE q.ctid = ANY (ARRAY(SELECT q2.ctid FROM storage._search_words_queue q2 LIMIT $1::pg_catalog.int4))
               RETURNING q.table_name, q.word)
           INSERT INTO storage._search_words (table_name, word)
           SELECT DISTINCT m.table_name, m.word FROM moved m
            WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) m.table_name)
           ON CONFLICT DO NOTHING$m$, ARRAY[max_rows::text]);
    -- a table without a vocabulary (its search column made before there was one, or restored:
    -- not dumped) gets its column's lexemes at once (ts_stat, read as the table's owner), and the
    -- mark '' that it has one
    FOR t IN SELECT s.table_name AS rel, s.column_name FROM storage.search_columns s
              WHERE NOT EXISTS (SELECT FROM storage._search_words w WHERE w.table_name = s.table_name::oid AND w.word = '')
    LOOP
        -- one table's trouble (dropped meanwhile, locked, broken) is that table's: logged, skipped
        BEGIN
            PERFORM storage._search_words_fill(t.rel, t.column_name);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_storage_ext: the search vocabulary of % was not filled: %', t.rel, SQLERRM;
        END;
    END LOOP;
    -- the words of dropped tables (one probe per table: a loose scan of the distinct OIDs)
    PERFORM storage._run_as_owner('storage._search_words'::regclass,
        $d$WITH RECURSIVE t(o) AS (
               SELECT min(w.table_name) FROM storage._search_words w
               UNION ALL
               SELECT (SELECT min(w.table_name) FROM storage._search_words w WHERE w.table_name OPERATOR(pg_catalog.>) t.o)
                 FROM t WHERE t.o IS NOT NULL)
           DELETE FROM storage._search_words w USING t
            WHERE w.table_name OPERATOR(pg_catalog.=) t.o
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t.o)$d$);
    -- the trigram index, once pg_trgm is there
    SELECT n.nspname INTO trgm FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF trgm IS NOT NULL AND to_regclass('storage._search_words_trgm') IS NULL THEN
        PERFORM storage._run_as_owner('storage._search_words'::regclass,
            format('CREATE INDEX _search_words_trgm ON storage._search_words USING gin (word %I.gin_trgm_ops)', trgm));
    END IF;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION storage._search_words_merge(integer) IS
    'Internal: moves up to max_rows queued lexemes into the search vocabulary (words of dropped tables left out), fills the vocabulary of a search table that has none (ts_stat; after an update or a restore), drops dropped tables'' words and makes the trigram index once pg_trgm is installed; one merger at a time; returns the words moved. Run by the heartbeat job and by enable_search/rebuild_search.';
COMMENT ON FUNCTION storage._search_lexeme(cstring) IS
    'Internal: a lexeme (word:* for a prefix) as tsquery input, quoted and escaped.';
COMMENT ON FUNCTION storage._search_correction(regclass, name, cstring) IS
    'Internal: NULL when a row the caller can see matches the lexeme, else the most similar vocabulary word (pg_trgm) matching such a row; candidates read as the extension owner, every check as the caller.';
COMMENT ON FUNCTION storage._search_words_fill(regclass, name) IS
    'Internal: fills the search vocabulary of a table''s search column (ts_stat, read as the table''s owner) and marks it filled; returns the words added.';
