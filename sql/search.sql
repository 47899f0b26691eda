-- Full-text search capability: the trigger function, the view of maintained tsvector columns,
-- comments. The other functions are generated from src/search/.

-- The weighted trigger (src/search/trigger.rs; its C entry refuses a call that is not a trigger).
CREATE FUNCTION storage.tsvector_update() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'tsvector_update_wrapper';

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
       a.args[3:] AS sources
  FROM pg_trigger t
 CROSS JOIN LATERAL (SELECT storage._trigger_args(t.tgargs) AS args) AS a
 WHERE t.tgfoid = 'storage.tsvector_update()'::regprocedure
   AND t.tgparentid = 0;
GRANT SELECT ON storage.search_columns TO PUBLIC;
COMMENT ON VIEW storage.search_columns IS
    'Every tsvector column kept by a storage.tsvector_update trigger: table, column, configuration (name or per-row column), weights per source, trigger, GIN index, sources in argument order.';

COMMENT ON FUNCTION storage.tsvector_update() IS
    'Trigger: BEFORE INSERT OR UPDATE FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update(''tsvector_col'', ''config or config_col'', ''src:A'', ''src2:B'', ...). Equals setweight(E1,w1) || setweight(E2,w2) || ... ; skips parsing when no source changed.';
COMMENT ON FUNCTION storage.enable_search(regclass, name, text, jsonb) IS
    'Adds the tsvector column if missing, (re)creates the weighted trigger (sources ordered A to D), adds a GIN index if none, backfills; returns rows backfilled.';
COMMENT ON FUNCTION storage.rebuild_search(regclass, name, integer) IS
    'Recomputes the tsvector column of every row, batch_rows at a time; returns rows recomputed.';
COMMENT ON FUNCTION storage._trigger_args(bytea) IS
    'Internal: pg_trigger.tgargs as text[].';
