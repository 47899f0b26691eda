-- Partitions capability: range partitions by time or integer, premake, default partition,
-- retention, ensure_partition, run_maintenance, convert_to_partitioned.
--
-- Positions. Every bound is handled as a "position": for time keys the wall-clock time in the
-- parent's time zone (partition_config.time_zone, the session's TimeZone at registration),
-- written YYYY-MM-DD HH:MM:SS[.ffffff]; for integer keys the number. The arithmetic on positions
-- (aligned periods, names, which ranges to create around existing children) is Rust
-- (src/partition, crates/core/src/partition.rs); this file converts column values to and from
-- positions and runs the DDL.
--
-- New children are created standalone (CREATE TABLE ... LIKE parent) and attached with
-- ATTACH PARTITION. Without a default partition that takes SHARE UPDATE EXCLUSIVE on the parent:
-- inserts and reads go on while a child is added. With one, the parent is locked SHARE ROW
-- EXCLUSIVE (reads go on, inserts pause for the attach) and the default ACCESS EXCLUSIVE; rows of
-- the new range found in the default are moved into the new child before the attach, in the same
-- transaction (no "updated partition constraint for default partition would be violated").
-- run_maintenance waits for each lock at most pg_storage_ext.partition_lock_timeout.

-- A step in its canonical form (minutes:N, days:N, months:N, int:N): parsed once, when a parent is
-- registered, and stored typed in partition_config.step_canonical for every later use.
CREATE DOMAIN storage.partition_step AS text CHECK (VALUE ~ '^(minutes|days|months|int):[1-9][0-9]{0,18}$');
COMMENT ON DOMAIN storage.partition_step IS
    'A partition step in canonical form: minutes:N, days:N, months:N or int:N.';

CREATE TABLE storage.partition_config (
    parent               regclass PRIMARY KEY,
    control_column       name NOT NULL,
    control_type         regtype NOT NULL,
    step                 text NOT NULL,
    premake              integer NOT NULL CHECK (premake >= 0),
    retention            text,
    retention_keep_table boolean NOT NULL DEFAULT false,
    default_partition    boolean NOT NULL DEFAULT true,
    time_zone            text NOT NULL,
    registered_at        timestamptz NOT NULL DEFAULT now(),
    template_table       regclass,
    retention_schema     name,
    retention_keep_index boolean NOT NULL DEFAULT true,
    sub_step             text,
    sub_column           name,
    sub_retention        text,
    step_canonical       storage.partition_step NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('storage.partition_config', '');
COMMENT ON TABLE storage.partition_config IS
    'Parents registered by storage.create_partitions / convert_to_partitioned: step, premake, retention. premake, retention, retention_keep_table, template_table, retention_schema and retention_keep_index may be updated in place.';
COMMENT ON COLUMN storage.partition_config.template_table IS
    'A table whose indexes, storage parameters and replica identity every new child gets (what PostgreSQL does not give partitions); NULL for none.';
COMMENT ON COLUMN storage.partition_config.retention_schema IS
    'Children past retention are detached and moved into this schema instead of dropped; NULL drops them (or detaches them in place with retention_keep_table).';
COMMENT ON COLUMN storage.partition_config.retention_keep_index IS
    'Whether a child detached by retention keeps its indexes (false: they are dropped).';
COMMENT ON COLUMN storage.partition_config.sub_step IS
    'Sub-partitioning of every child made: a step dividing step (range on the partition column), or hash:N (N hash partitions on sub_column); NULL for none.';
COMMENT ON COLUMN storage.partition_config.sub_column IS
    'The column of hash sub-partitions (range sub-partitions are on the partition column).';
COMMENT ON COLUMN storage.partition_config.step_canonical IS
    'The step as parsed at registration (minutes:N, days:N, months:N, int:N); what maintenance computes with.';
COMMENT ON COLUMN storage.partition_config.sub_retention IS
    'Range sub-partitions whose range ended longer ago than this are dropped (or detached, as retention_keep_table and retention_schema say) inside children that are still kept; NULL keeps them.';

-- 'time' or 'int' for a supported key type, NULL otherwise.
CREATE FUNCTION storage._partition_kind(typ regtype) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN typ IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype, 'uuid'::regtype) THEN 'time'
        WHEN typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN 'int'
    END
$$;
COMMENT ON FUNCTION storage._partition_kind(regtype) IS
    'Internal: time or int for a supported partition key type (uuid keys are uuidv7: time).';

-- The time a uuidv7 encodes (its top 48 bits, milliseconds since 1970): of a uuidv7 key value, or
-- of a partition bound (version 0, the period start's milliseconds followed by zeros); a
-- timestamp is taken as it is (ensure_partition accepts either). Other uuids are 22023.
CREATE FUNCTION storage._partition_uuid_time(val text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u uuid;
BEGIN
    IF val !~* '^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$' THEN
        RETURN val::timestamptz;
    END IF;
    u := val::uuid;
    IF uuid_extract_version(u) <> 7 AND right(u::text, 24) <> '0000-0000-000000000000' THEN
        RAISE EXCEPTION 'uuid % is not a version 7 uuid', u
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('It is version %s; only uuidv7 keys encode the time their partition follows.', uuid_extract_version(u)),
                    HINT = 'Generate keys with uuidv7() (PostgreSQL 18), or pass a timestamp.';
    END IF;
    RETURN to_timestamp((('x' || replace(left(u::text, 13), '-', ''))::bit(48)::bigint)::numeric / 1000);
END $$;
COMMENT ON FUNCTION storage._partition_uuid_time(text) IS
    'Internal: the time a uuidv7 (or a partition bound of one) encodes; a timestamp as it is; 22023 for other uuids.';

-- The partition key of a parent, checked: PARTITION BY RANGE on one column of a supported type.
CREATE FUNCTION storage._partition_key(parent regclass, OUT key_column name, OUT key_type regtype)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pt pg_partitioned_table;
BEGIN
    SELECT * INTO pt FROM pg_partitioned_table WHERE partrelid = parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partitioned table', parent
              USING ERRCODE = 'wrong_object_type',
                    DETAIL = format('relkind of %s is %L.', parent, (SELECT relkind FROM pg_class WHERE oid = parent)),
                    HINT = 'Declare it with PARTITION BY RANGE (column), or use storage.convert_to_partitioned for an existing table.';
    END IF;
    IF (SELECT relpersistence FROM pg_class WHERE oid = parent) = 't' THEN
        RAISE EXCEPTION '% is a temporary table', parent
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'A temporary table lives only in its own session; the maintenance job cannot see it.',
                    HINT = 'Partition a permanent table.';
    END IF;
    IF pt.partstrat <> 'r' THEN
        RAISE EXCEPTION '% is partitioned by %, not by range', parent,
                        CASE pt.partstrat WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' ELSE pt.partstrat::text END
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'storage partitions are ranges: PARTITION BY RANGE (column).';
    END IF;
    IF pt.partnatts = 1 AND pt.partattrs[0] = 0 THEN
        RAISE EXCEPTION 'the partition key of % is an expression, not a column', parent
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = format('Key: %s.', pg_get_partkeydef(parent)),
                    HINT = 'Partition by a column: PARTITION BY RANGE (created_at).';
    END IF;
    IF pt.partnatts <> 1 THEN
        RAISE EXCEPTION 'the partition key of % is not a single column', parent
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = format('Key: %s.', pg_get_partkeydef(parent)),
                    HINT = 'Partition by one column: PARTITION BY RANGE (created_at).';
    END IF;
    SELECT a.attname, a.atttypid::regtype INTO key_column, key_type
      FROM pg_attribute a WHERE a.attrelid = parent AND a.attnum = pt.partattrs[0];
    IF storage._partition_kind(key_type) IS NULL THEN
        RAISE EXCEPTION 'partition key %.% has type %, which storage partitions do not support', parent, quote_ident(key_column), key_type
              USING ERRCODE = 'datatype_mismatch',
                    HINT = 'Supported key types: timestamptz, timestamp, date, uuid (uuidv7; interval steps) and smallint, integer, bigint (numeric steps).';
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_key(regclass) IS
    'Internal: the single range-partition key column and its type, or a clear error.';

-- Canonical step (days:1, months:3, int:1000) for a key type, or 22023.
CREATE FUNCTION storage._partition_step(step text, typ regtype) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    iv interval;
BEGIN
    IF step IS NULL THEN
        RAISE EXCEPTION 'step must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'An interval such as ''1 month'' for time keys, a number such as ''1000'' for integer keys.';
    END IF;
    IF storage._partition_kind(typ) = 'int' THEN
        RETURN storage._partition_step_int(step);
    END IF;
    IF step ~ '^\s*[-+]?[0-9]+\s*$' THEN
        RAISE EXCEPTION 'step % is a number, but the key type % takes an interval', quote_literal(step), typ
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'For example ''1 hour'', ''1 day'', ''1 week'', ''1 month'', ''3 months'', ''1 year''.';
    END IF;
    BEGIN
        iv := step::interval;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow
                   OR invalid_text_representation THEN
        RAISE EXCEPTION 'step % is not an interval', quote_literal(step)
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('The key type is %s, which takes an interval step.', typ),
                    HINT = 'For example ''1 hour'', ''1 day'', ''1 week'', ''1 month'', ''3 months'', ''1 year''.';
    END;
    RETURN storage._partition_step_interval(iv, typ = 'date'::regtype, step);
END $$;
COMMENT ON FUNCTION storage._partition_step(text, regtype) IS
    'Internal: checks a step against the key type; returns its canonical form.';

-- Raises the error of a key value no period holds (infinity, BC, past year 9999). STABLE, not
-- IMMUTABLE: the planner folds an immutable call with constant arguments while inlining
-- _partition_pos_of, and would raise it for a branch the value never takes.
CREATE FUNCTION storage._partition_out_of_range(val text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'value % is outside the range partitions cover', quote_literal(val)
          USING ERRCODE = 'datetime_field_overflow',
                DETAIL = 'Periods are computed for years 1 to 9999; infinity and dates BC have none.',
                HINT = 'Give a finite value from 0001-01-01 to 9999-12-31.';
END $$;
COMMENT ON FUNCTION storage._partition_out_of_range(text) IS
    'Internal: raises 22008 for a key value outside years 1 to 9999 (infinity, BC).';

-- A key value (as text in the column's type) to a position: wall-clock time in the parent's zone,
-- or the integer, checked against the key type's range (22003 past an integer key's type, 22008
-- outside years 1 to 9999). Plain SQL, inlined by the planner into set-based queries. When typ is
-- a constant, the planner drops the other branches before it folds their casts, so a constant val
-- is never cast to the wrong type.
CREATE FUNCTION storage._partition_pos_of(typ regtype, tz text, val text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN val IS NULL THEN NULL
        WHEN typ = 'pg_catalog.timestamptz'::pg_catalog.regtype
            THEN CASE WHEN val::pg_catalog.timestamptz >= '0001-01-01 00:00:00+00' AND val::pg_catalog.timestamptz < '9999-12-31 00:00:00+00'
                      THEN pg_catalog.to_char(pg_catalog.timezone(tz, val::pg_catalog.timestamptz), 'YYYY-MM-DD HH24:MI:SS.US')
                      ELSE storage._partition_out_of_range(val) END
        WHEN typ = 'pg_catalog.timestamp'::pg_catalog.regtype
            THEN CASE WHEN val::pg_catalog.timestamp >= '0001-01-01' AND val::pg_catalog.timestamp < '9999-12-31'
                      THEN pg_catalog.to_char(val::pg_catalog.timestamp, 'YYYY-MM-DD HH24:MI:SS.US')
                      ELSE storage._partition_out_of_range(val) END
        WHEN typ = 'pg_catalog.date'::pg_catalog.regtype
            THEN CASE WHEN val::pg_catalog.date >= '0001-01-01' AND val::pg_catalog.date < '9999-12-31'
                      THEN pg_catalog.to_char(val::pg_catalog.date, 'YYYY-MM-DD')
                      ELSE storage._partition_out_of_range(val) END
        WHEN typ = 'pg_catalog.uuid'::pg_catalog.regtype
            THEN pg_catalog.to_char(pg_catalog.timezone(tz, storage._partition_uuid_time(val)), 'YYYY-MM-DD HH24:MI:SS.US')
        WHEN typ = 'pg_catalog.int4'::pg_catalog.regtype THEN val::pg_catalog.int4::pg_catalog.text
        WHEN typ = 'pg_catalog.int2'::pg_catalog.regtype THEN val::pg_catalog.int2::pg_catalog.text
        ELSE val::pg_catalog.int8::pg_catalog.text
    END
$$;
COMMENT ON FUNCTION storage._partition_pos_of(regtype, text, text) IS
    'Internal: a key value to a position (wall-clock time in the parent''s zone, or the integer).';

-- A position to a literal of the key type (unambiguous under any DateStyle).
CREATE FUNCTION storage._partition_from_pos(typ regtype, tz text, pos text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pos IS NULL THEN
        RETURN NULL;
    ELSIF typ = 'timestamptz'::regtype THEN
        RETURN to_char(pos::timestamp AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI:SS.USOF');
    ELSIF typ = 'date'::regtype THEN
        RETURN left(pos, 10);
    ELSIF typ = 'uuid'::regtype THEN
        -- the smallest uuid of the period: its start in milliseconds, then zeros
        RETURN regexp_replace(lpad(to_hex(floor(extract(epoch FROM pos::timestamp AT TIME ZONE tz) * 1000)::bigint), 12, '0'),
                              '^(.{8})(.{4})$', '\1-\2-0000-0000-000000000000');
    ELSE
        RETURN pos;
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_from_pos(regtype, text, text) IS
    'Internal: a position to a literal of the key type.';

-- Sort key of a position: seconds for time, the number for integers.
CREATE FUNCTION storage._partition_sort_key(kind text, pos text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pos IS NULL THEN NULL
                WHEN kind = 'int' THEN pos::numeric
                ELSE extract(epoch FROM pos::timestamp) END
$$;
COMMENT ON FUNCTION storage._partition_sort_key(text, text) IS
    'Internal: orders positions of one kind.';

-- Every child of a parent with its bounds as PostgreSQL prints them (unquoted; NULL for
-- MINVALUE/MAXVALUE and for the default partition). Plain SQL without SET clauses so that the
-- planner inlines it into maintenance queries (names are qualified instead).
CREATE FUNCTION storage._partition_children(parent regclass)
RETURNS TABLE (child regclass, lower_bound text, upper_bound text, is_default boolean)
LANGUAGE sql STABLE AS $$
    SELECT m.oid::pg_catalog.regclass,
           CASE WHEN m.r[1] IN ('MINVALUE', 'MAXVALUE') THEN NULL
                WHEN pg_catalog.left(m.r[1], 1) = '''' THEN pg_catalog.replace(pg_catalog.substr(m.r[1], 2, pg_catalog.length(m.r[1]) - 2), '''''', '''')
                ELSE m.r[1] END,
           CASE WHEN m.r[2] IN ('MINVALUE', 'MAXVALUE') THEN NULL
                WHEN pg_catalog.left(m.r[2], 1) = '''' THEN pg_catalog.replace(pg_catalog.substr(m.r[2], 2, pg_catalog.length(m.r[2]) - 2), '''''', '''')
                ELSE m.r[2] END,
           m.expr = 'DEFAULT'
      FROM (SELECT c.oid, b.expr, pg_catalog.regexp_match(b.expr, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS r
              FROM pg_catalog.pg_inherits i
              JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
                   LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS expr) b
             WHERE i.inhparent = parent
            OFFSET 0) m   -- a fence: print and match each bound once, not once per use
$$;
COMMENT ON FUNCTION storage._partition_children(regclass) IS
    'Internal: children of a range-partitioned table with their bounds as text.';

-- Ranges (positions) of the non-default children.
CREATE FUNCTION storage._partition_ranges(cfg storage.partition_config,
                                          OUT lowers text[], OUT uppers text[])
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.array_agg(storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.lower_bound)), '{}'),
           coalesce(pg_catalog.array_agg(storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.upper_bound)), '{}')
      FROM storage._partition_children(cfg.parent) ch WHERE NOT ch.is_default
$$;
COMMENT ON FUNCTION storage._partition_ranges(storage.partition_config) IS
    'Internal: positions of the bounds of the range children of a registered parent.';

-- Limits of an integer key type, NULL for time and bigint (the Rust side stops at i64).
CREATE FUNCTION storage._partition_limits(typ regtype, OUT lo bigint, OUT hi bigint)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE typ WHEN 'smallint'::regtype THEN -32768 WHEN 'integer'::regtype THEN -2147483648 END,
           CASE typ WHEN 'smallint'::regtype THEN 32767 WHEN 'integer'::regtype THEN 2147483647 END
$$;
COMMENT ON FUNCTION storage._partition_limits(regtype) IS
    'Internal: smallest and largest value of a smallint/integer key.';

-- What the extension creates for a table belongs to the table's owner, not to whoever called us.
CREATE FUNCTION storage._partition_own_like(rel regclass, like_rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner oid := (SELECT relowner FROM pg_class WHERE oid = like_rel);
BEGIN
    IF (SELECT relowner FROM pg_class WHERE oid = rel) <> owner THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %I', rel, pg_get_userbyid(owner));
    END IF;
END $$;
REVOKE ALL ON FUNCTION storage._partition_own_like(regclass, regclass) FROM PUBLIC;
COMMENT ON FUNCTION storage._partition_own_like(regclass, regclass) IS
    'Internal: gives rel the owner of like_rel (children, default partitions, conversions).';

-- A free name for a child: <parent>_p<lower> (or _default when lower_pos is 'default'), with _1,
-- _2, ... added when another relation of the schema has it.
CREATE FUNCTION storage._partition_child_name(nsp name, parent_name name, step text, lower_pos text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nth integer := 0;
    candidate text;
BEGIN
    LOOP
        IF lower_pos = 'default' THEN
            candidate := storage._partition_fit(parent_name, CASE WHEN nth = 0 THEN '_default' ELSE '_default_' || nth END);
        ELSE
            candidate := storage._partition_name(parent_name, step, lower_pos, nth);
        END IF;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = nsp AND c.relname = candidate);
        nth := nth + 1;
    END LOOP;
    RETURN candidate;
END $$;
COMMENT ON FUNCTION storage._partition_child_name(name, name, text, text) IS
    'Internal: a child name not taken in the schema.';

-- Creates one child [lower, upper) (positions; NULL = MINVALUE/MAXVALUE) standalone, moves the
-- rows of that range out of the default partition into it, and attaches it. Returns rows moved.
-- What a child gets from the parent's template table (partition_config.template_table): its
-- indexes (those the parent does not give its children, e.g. a unique key without the partition
-- column), storage parameters and replica identity.
CREATE FUNCTION storage._partition_apply_template(cfg storage.partition_config, child regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t pg_class;
    i record;
    def text;
    prefix text;
    idx name;
BEGIN
    IF cfg.template_table IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO t FROM pg_class WHERE oid = cfg.template_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the template table of % no longer exists', cfg.parent USING ERRCODE = 'undefined_table',
              HINT = format('UPDATE storage.partition_config SET template_table = NULL WHERE parent = %L;', cfg.parent::text);
    END IF;
    IF t.reloptions IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s SET (%s)', child, array_to_string(t.reloptions, ', '));
    END IF;
    FOR i IN SELECT x.indexrelid, x.indisunique, x.indisreplident, ic.relname
               FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
              WHERE x.indrelid = t.oid ORDER BY ic.relname LOOP
        def := pg_get_indexdef(i.indexrelid);
        prefix := format('CREATE %sINDEX %I ON %s USING ', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                         i.relname, t.oid::regclass);
        IF left(def, length(prefix)) <> prefix THEN
            RAISE EXCEPTION 'cannot read the definition of index % of the template table', i.relname
                  USING ERRCODE = 'internal_error', DETAIL = def, HINT = 'Recreate the index on the template table.';
        END IF;
        idx := storage._partition_fit((SELECT relname FROM pg_class WHERE oid = child), '_' || i.relname);
        EXECUTE format('CREATE %sINDEX %I ON %s USING %s', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                       idx, child, substr(def, length(prefix) + 1));
        IF i.indisreplident AND t.relreplident = 'i' THEN
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', child, idx);
        END IF;
    END LOOP;
    IF t.relreplident IN ('f', 'n') THEN
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', child, CASE t.relreplident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END);
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_apply_template(storage.partition_config, regclass) IS
    'Internal: gives a new child the indexes, storage parameters and replica identity of the parent''s template table.';

-- Checks sub-partitioning options; returns what partition_config.sub_step stores (the range step as
-- given, or hash:N), NULL for none.
CREATE FUNCTION storage._partition_check_sub(parent regclass, key_column name, key_type regtype, canon text,
                                             sub_step text, sub_column name) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[];
BEGIN
    IF sub_step IS NULL THEN
        IF sub_column IS NOT NULL THEN
            RAISE EXCEPTION 'sub_column needs a sub_step' USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example sub_step => ''hash:4'', sub_column => ''user_id''.';
        END IF;
        RETURN NULL;
    END IF;
    m := regexp_match(sub_step, '^\s*hash\s*[: ]\s*([0-9]{1,6})\s*$', 'i');
    IF m IS NOT NULL THEN
        IF m[1]::int < 2 OR m[1]::int > 1024 THEN
            RAISE EXCEPTION 'hash sub-partitions must number 2 to 1024, got %', m[1] USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example sub_step => ''hash:8''.';
        END IF;
        IF sub_column IS NULL THEN
            RAISE EXCEPTION 'hash sub-partitions need sub_column' USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Name the column to hash, e.g. sub_step => %L, sub_column => ''user_id''.', sub_step);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = parent AND attname = sub_column AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column % of % does not exist', quote_ident(sub_column), parent USING ERRCODE = 'undefined_column',
                  HINT = 'Name a column of the table to hash.';
        END IF;
        RETURN format('hash:%s', m[1]::int);
    END IF;
    IF sub_column IS NOT NULL AND sub_column <> key_column THEN
        RAISE EXCEPTION 'range sub-partitions are on the partition column %, not %', quote_ident(key_column), quote_ident(sub_column)
              USING ERRCODE = 'feature_not_supported',
                    HINT = 'Leave sub_column out for range sub-partitions, or hash on another column: sub_step => ''hash:4''.';
    END IF;
    IF NOT storage._partition_step_divides(canon, storage._partition_step(sub_step, key_type)) THEN
        RAISE EXCEPTION 'a sub_step of % does not divide each partition exactly', quote_literal(sub_step)
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('Partitions are %s; sub-partitions must fill each one with whole periods starting at its start.', canon),
                    HINT = 'Months into days or hours, weeks into days, days into hours, integers into divisors.';
    END IF;
    RETURN sub_step;
END $$;
COMMENT ON FUNCTION storage._partition_check_sub(regclass, name, regtype, text, text, name) IS
    'Internal: checks sub_step/sub_column of create_partitions; returns what partition_config.sub_step stores.';

-- ' PARTITION BY ...' of a child when the parent is sub-partitioned, '' otherwise.
CREATE FUNCTION storage._partition_sub_clause(cfg storage.partition_config) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN cfg.sub_step IS NULL THEN ''
                WHEN cfg.sub_step LIKE 'hash:%' THEN format(' PARTITION BY HASH (%I)', cfg.sub_column)
                ELSE format(' PARTITION BY RANGE (%I)', cfg.control_column) END
$$;
COMMENT ON FUNCTION storage._partition_sub_clause(storage.partition_config) IS
    'Internal: the PARTITION BY clause of a new child of a sub-partitioned parent.';

-- What a new child needs before it takes rows: its sub-partitions (all of them: a child's range
-- is bounded), the parent's FULL/NOTHING replica identity and the template (on the leaves).
CREATE FUNCTION storage._partition_finish_child(cfg storage.partition_config, child regclass,
                                                lower_pos text, upper_pos text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    leaves regclass[] := ARRAY[child];
    leaf regclass;
    nsp name;
    child_name name;
    sub text;
    n integer;
    p text;
    q text;
    sub_name text;
    kind text := storage._partition_kind(cfg.control_type);
    ident char := (SELECT relreplident FROM pg_class WHERE oid = cfg.parent);
BEGIN
    PERFORM storage._partition_own_like(child, cfg.parent);
    IF cfg.sub_step IS NOT NULL THEN
        SELECT n2.nspname, c.relname INTO nsp, child_name
          FROM pg_class c JOIN pg_namespace n2 ON n2.oid = c.relnamespace WHERE c.oid = child;
        leaves := '{}';
        IF cfg.sub_step LIKE 'hash:%' THEN
            n := split_part(cfg.sub_step, ':', 2)::int;
            FOR i IN 0 .. n - 1 LOOP
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                               nsp, storage._partition_fit(child_name, '_h' || i), child, n, i);
                leaves := leaves || format('%I.%I', nsp, storage._partition_fit(child_name, '_h' || i))::regclass;
            END LOOP;
        ELSIF lower_pos IS NULL OR upper_pos IS NULL THEN
            -- an unbounded child (MINVALUE/MAXVALUE) is one sub-partition
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, storage._partition_fit(child_name, '_all'), child);
            leaves := leaves || format('%I.%I', nsp, storage._partition_fit(child_name, '_all'))::regclass;
        ELSE
            sub := storage._partition_step(cfg.sub_step, cfg.control_type);
            p := lower_pos;
            WHILE storage._partition_sort_key(kind, p) < storage._partition_sort_key(kind, upper_pos) LOOP
                q := storage._partition_add(sub, p, 1);
                sub_name := storage._partition_child_name(nsp, child_name, sub, p);
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', nsp, sub_name, child,
                               storage._partition_from_pos(cfg.control_type, cfg.time_zone, p),
                               storage._partition_from_pos(cfg.control_type, cfg.time_zone, q));
                leaves := leaves || format('%I.%I', nsp, sub_name)::regclass;
                p := q;
            END LOOP;
        END IF;
        FOREACH leaf IN ARRAY leaves LOOP
            PERFORM storage._partition_own_like(leaf, cfg.parent);
        END LOOP;
        leaves := child || leaves;
    END IF;
    -- a replica identity of FULL or NOTHING on the parent holds for its rows in every child
    IF ident IN ('f', 'n') THEN
        FOREACH leaf IN ARRAY leaves LOOP
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', leaf, CASE ident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END);
        END LOOP;
    END IF;
    FOREACH leaf IN ARRAY leaves LOOP
        IF (SELECT relkind FROM pg_class WHERE oid = leaf) = 'r' THEN
            PERFORM storage._partition_apply_template(cfg, leaf);
        END IF;
    END LOOP;
    IF cfg.parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass) THEN
        PERFORM audit._index_log_partitions();
    END IF;
    -- a table isolated by tenant: its new partitions carry the tenant policies too
    PERFORM storage._tenant_apply(l.rel, t.tenant_column, t.setting)
       FROM storage.tenant_isolation t, unnest(leaves) AS l(rel)
      WHERE t.table_name = cfg.parent;
END $$;
COMMENT ON FUNCTION storage._partition_finish_child(storage.partition_config, regclass, text, text) IS
    'Internal: gives a new child its owner, sub-partitions, replica identity and template.';

-- A child detached by retention without its indexes (retention_keep_index = false).
CREATE FUNCTION storage._partition_drop_indexes(child regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = child AND contype IN ('p', 'u', 'x') ORDER BY conname LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', child, c.conname);
    END LOOP;
    FOR c IN SELECT indexrelid::regclass AS idx FROM pg_index WHERE indrelid = child LOOP
        EXECUTE format('DROP INDEX %s', c.idx);
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._partition_drop_indexes(regclass) IS
    'Internal: drops the indexes (and the constraints they back) of a detached child.';

CREATE FUNCTION storage._partition_create_child(cfg storage.partition_config, lower_pos text, upper_pos text,
                                                direct boolean DEFAULT false,
                                                OUT child regclass, OUT moved bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step text := cfg.step_canonical;
    nsp name;
    relname name;
    spc name;
    defid oid;
    child_name text;
    lo text := storage._partition_from_pos(cfg.control_type, cfg.time_zone, lower_pos);
    hi text := storage._partition_from_pos(cfg.control_type, cfg.time_zone, upper_pos);
    cond text;
    cols text;
    found_rows boolean;
BEGIN
    moved := 0;
    SELECT n.nspname, c.relname, t.spcname
      INTO nsp, relname, spc
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
     WHERE c.oid = cfg.parent;
    child_name := storage._partition_child_name(nsp, relname, step, lower_pos);
    IF direct THEN
        -- the parent's first children (_partition_fill holds ACCESS EXCLUSIVE on it already): one
        -- statement each, about a third cheaper than LIKE + ATTACH
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%s) TO (%s)%s%s', nsp, child_name, cfg.parent,
                       coalesce(quote_literal(lo), 'MINVALUE'), coalesce(quote_literal(hi), 'MAXVALUE'),
                       storage._partition_sub_clause(cfg),
                       CASE WHEN spc IS NOT NULL THEN format(' TABLESPACE %I', spc) ELSE '' END);
        child := format('%I.%I', nsp, child_name)::regclass;
        PERFORM storage._partition_finish_child(cfg, child, lower_pos, upper_pos);
        RETURN;
    END IF;
    -- The parent first, then the default: the order ATTACH PARTITION itself locks them in.
    -- Without a default partition, SHARE UPDATE EXCLUSIVE (what ATTACH takes) lets inserts go on.
    -- With one, inserts must pause: an insert that routed a row with the partition list from
    -- before the attach would put it in the default and fail its new constraint.
    SELECT partdefid INTO defid FROM pg_partitioned_table WHERE partrelid = cfg.parent;
    EXECUTE format('LOCK TABLE ONLY %s IN %s MODE', cfg.parent,
                   CASE WHEN defid <> 0 THEN 'SHARE ROW EXCLUSIVE' ELSE 'SHARE UPDATE EXCLUSIVE' END);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING STORAGE INCLUDING COMPRESSION)%s%s',
                   nsp, child_name, cfg.parent, storage._partition_sub_clause(cfg),
                   CASE WHEN spc IS NOT NULL THEN format(' TABLESPACE %I', spc) ELSE '' END);
    child := format('%I.%I', nsp, child_name)::regclass;
    PERFORM storage._partition_finish_child(cfg, child, lower_pos, upper_pos);
    IF defid <> 0 THEN
        EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', defid::regclass);
        cond := concat_ws(' AND ',
                          CASE WHEN lo IS NOT NULL THEN format('%I >= CAST($1 AS %s)', cfg.control_column, cfg.control_type) END,
                          CASE WHEN hi IS NOT NULL THEN format('%I < CAST($2 AS %s)', cfg.control_column, cfg.control_type) END,
                          format('%I IS NOT NULL', cfg.control_column));
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE %s)', defid::regclass, cond)
           INTO found_rows USING lo, hi;
        IF found_rows THEN
            SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
              FROM pg_attribute
             WHERE attrelid = child AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
            -- the move fires the table's triggers and evaluates its defaults and CHECKs: as the
            -- table's owner, restricted, never as the (superuser) caller
            moved := storage._run_as_owner(cfg.parent,
                         format('WITH m AS (DELETE FROM ONLY %s WHERE %s RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM m',
                                defid::regclass, cond, cols, child, cols, cols),
                         ARRAY[lo, hi], ARRAY[defid, child::oid]);
        END IF;
    END IF;
    -- (rows moved in are no change: the audit log's DDL trigger is told so)
    PERFORM audit._attach_moved(format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', cfg.parent, child,
                                       coalesce(quote_literal(lo), 'MINVALUE'), coalesce(quote_literal(hi), 'MAXVALUE')),
                                child);
    -- Citus distributed the child at ATTACH, copying its rows into shards on the workers: the
    -- copy left in the coordinator's table is dropped
    IF moved > 0 AND storage._citus_kind(child) IS NOT NULL THEN
        -- a relocation's leftover, not a TRUNCATE of the table's rows: capture logs nothing
        PERFORM storage._run_as_owner(child, 'SELECT truncate_local_data_after_distributing_table($1::pg_catalog.regclass)',
                                      ARRAY[child::text], ARRAY[child::oid]);
    END IF;
    -- the log keeps its indexes per partition (see sql/audit.sql)
    IF cfg.parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass) THEN
        PERFORM audit._index_log_partitions();
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_create_child(storage.partition_config, text, text, boolean) IS
    'Internal: creates and attaches one child, moving its rows out of the default partition first; direct: CREATE TABLE ... PARTITION OF (the parent is locked already).';

-- Creates the children planned between two positions; returns (children created, rows moved).
CREATE FUNCTION storage._partition_fill(cfg storage.partition_config, from_pos text, to_pos text,
                                        OUT created integer, OUT moved bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    ex record;
    lim record;
    c record;
    direct boolean;
BEGIN
    created := 0;
    moved := 0;
    -- A parent without any partition yet (being registered) holds no rows and no reader can be
    -- reading a partition of it: its children are made under one ACCESS EXCLUSIVE lock, each in
    -- one statement. Afterwards children are made standalone and attached (SHARE UPDATE EXCLUSIVE).
    direct := NOT EXISTS (SELECT FROM pg_inherits WHERE inhparent = cfg.parent);
    IF direct THEN
        EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', cfg.parent);
    END IF;
    ex := storage._partition_ranges(cfg);
    lim := storage._partition_limits(cfg.control_type);
    FOR r IN SELECT * FROM storage._partition_plan(cfg.step_canonical,
                                                   ex.lowers, ex.uppers, from_pos, to_pos, lim.lo, lim.hi)
    LOOP
        c := storage._partition_create_child(cfg, r.lower, r.upper, direct);
        created := created + 1;
        moved := moved + c.moved;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._partition_fill(storage.partition_config, text, text) IS
    'Internal: creates every missing child for the periods between two positions.';

-- The position premake counts from: now for time keys; for integer keys the lower bound of the
-- highest child holding rows (found by probing children from the top, no full scan), else of the
-- lowest child, else 0.
CREATE FUNCTION storage._partition_current(cfg storage.partition_config) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ch record;
    has_rows boolean;
    lowest text;
BEGIN
    IF storage._partition_kind(cfg.control_type) = 'time' THEN
        RETURN to_char(now() AT TIME ZONE cfg.time_zone, 'YYYY-MM-DD HH24:MI:SS.US');
    END IF;
    FOR ch IN SELECT child, storage._partition_pos_of(cfg.control_type, cfg.time_zone, lower_bound) AS lo
                FROM storage._partition_children(cfg.parent)
               WHERE NOT is_default
               ORDER BY storage._partition_sort_key('int', storage._partition_pos_of(cfg.control_type, cfg.time_zone, lower_bound)) DESC NULLS LAST
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', ch.child) INTO has_rows;
        IF has_rows THEN
            RETURN coalesce(ch.lo, (storage._partition_limits(cfg.control_type)).lo::text, '-9223372036854775808');
        END IF;
        lowest := coalesce(ch.lo, lowest);
    END LOOP;
    RETURN coalesce(lowest, '0');
END $$;
COMMENT ON FUNCTION storage._partition_current(storage.partition_config) IS
    'Internal: the position premake and retention count from.';

-- Retention must be a positive amount of the key's kind, at least one step.
CREATE FUNCTION storage._partition_check_retention(retention text, step text, typ regtype) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text := storage._partition_kind(typ);
    iv interval;
    n numeric;
BEGIN
    IF retention IS NULL THEN
        RETURN;
    END IF;
    IF kind = 'time' THEN
        BEGIN
            iv := retention::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow
                       OR invalid_text_representation THEN
            RAISE EXCEPTION 'retention % is not an interval', quote_literal(retention)
                  USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''12 months'' or ''90 days''.';
        END;
        IF iv < step::interval THEN
            RAISE EXCEPTION 'retention % is shorter than one step (%)', quote_literal(retention), quote_literal(step)
                  USING ERRCODE = 'invalid_parameter_value',
                        DETAIL = 'Retention drops whole children; one shorter than a child would drop the current one.',
                        HINT = 'Use a retention of at least one step, e.g. ''12 months'' for monthly children.';
        END IF;
    ELSE
        BEGIN
            n := retention::numeric;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'retention % is not a number', quote_literal(retention)
                  USING ERRCODE = 'invalid_parameter_value', HINT = 'For integer keys retention is how far below the highest values to keep, e.g. ''1000000''.';
        END;
        IF n < step::numeric OR n <> trunc(n) THEN
            RAISE EXCEPTION 'retention % is shorter than one step (%)', quote_literal(retention), quote_literal(step)
                  USING ERRCODE = 'invalid_parameter_value',
                        DETAIL = 'Retention drops whole children; one shorter than a child would drop the current one.',
                        HINT = 'Use a whole number of at least one step.';
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_check_retention(text, text, regtype) IS
    'Internal: checks a retention against the key kind and the step.';

CREATE FUNCTION storage.create_partitions(parent regclass, step text, premake integer DEFAULT 4,
                                          start_from text DEFAULT NULL, retention text DEFAULT NULL,
                                          retention_keep_table boolean DEFAULT false,
                                          default_partition boolean DEFAULT true,
                                          sub_step text DEFAULT NULL, sub_column name DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    k record;
    canon text;
    kind text;
    cfg storage.partition_config;
    start_pos text;
    base text;
    to_pos text;
    extreme text;
    made record;
    n integer := 0;
    nsp name;
    relname name;
    def_name text;
BEGIN
    PERFORM storage._require_primary('storage.create_partitions');
    IF parent IS NULL THEN
        RAISE EXCEPTION 'parent must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'Pass the partitioned table, e.g. storage.create_partitions(''article_views'', ''1 month'').';
    END IF;
    k := storage._partition_key(parent);
    canon := storage._partition_step(step, k.key_type);
    kind := storage._partition_kind(k.key_type);
    IF premake IS NULL OR premake < 0 THEN
        RAISE EXCEPTION 'premake must be zero or more, got %', coalesce(premake::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'premake is how many steps ahead to create children; 4 is the default.';
    END IF;
    PERFORM storage._partition_check_retention(retention, step, k.key_type);
    sub_step := storage._partition_check_sub(parent, k.key_column, k.key_type, canon, sub_step, sub_column);
    IF EXISTS (SELECT 1 FROM storage.partition_config c WHERE c.parent = create_partitions.parent) THEN
        RAISE EXCEPTION '% is already registered', parent
              USING ERRCODE = 'duplicate_object',
                    DETAIL = 'storage.partition_config has a row for it.',
                    HINT = 'storage.run_maintenance() keeps it up to date; change premake or retention with UPDATE storage.partition_config.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pg_storage_ext.partition'), parent::oid::integer);
    cfg := ROW(parent, k.key_column, k.key_type, step, premake, retention, coalesce(retention_keep_table, false),
               coalesce(default_partition, true), current_setting('TimeZone'), now(), NULL, NULL, true,
               sub_step, CASE WHEN sub_step LIKE 'hash:%' THEN sub_column END, NULL, canon)::storage.partition_config;
    IF start_from IS NOT NULL THEN
        BEGIN
            start_pos := storage._partition_pos_of(k.key_type, cfg.time_zone, start_from);
        EXCEPTION WHEN datetime_field_overflow OR numeric_value_out_of_range OR invalid_parameter_value THEN
            RAISE;   -- a value of the type that no period holds (or a uuid that is not v7): its own clear error
        WHEN data_exception THEN
            RAISE EXCEPTION 'start_from % is not a value of type %', quote_literal(start_from), k.key_type
                  USING ERRCODE = 'invalid_parameter_value', DETAIL = SQLERRM,
                        HINT = 'Give a value of the partition key''s type, e.g. ''2026-01-01'' or ''0''.';
        END;
    ELSE
        EXECUTE format('SELECT t.%I::text FROM %s AS t WHERE t.%1$I IS NOT NULL ORDER BY t.%1$I LIMIT 1', k.key_column, parent) INTO extreme;
        start_pos := coalesce(storage._partition_pos_of(k.key_type, cfg.time_zone, extreme),
                              CASE kind WHEN 'time' THEN storage._partition_current(cfg) ELSE '0' END);
    END IF;
    -- premake counts from now (time) or the highest value (integers), or from start_from if later
    IF kind = 'time' THEN
        base := storage._partition_current(cfg);
    ELSE
        EXECUTE format('SELECT t.%I::text FROM %s AS t WHERE t.%1$I IS NOT NULL ORDER BY t.%1$I DESC LIMIT 1', k.key_column, parent) INTO extreme;
        base := coalesce(storage._partition_pos_of(k.key_type, cfg.time_zone, extreme), start_pos);
    END IF;
    IF storage._partition_sort_key(kind, start_pos) > storage._partition_sort_key(kind, base) THEN
        base := start_pos;
    END IF;
    to_pos := coalesce(storage._partition_add(canon, storage._partition_floor(canon, base), premake), base);
    made := storage._partition_fill(cfg, start_pos, to_pos);
    n := made.created;
    IF cfg.default_partition
       AND (SELECT partdefid FROM pg_partitioned_table WHERE partrelid = parent) = 0 THEN
        SELECT n2.nspname, c.relname INTO nsp, relname
          FROM pg_class c JOIN pg_namespace n2 ON n2.oid = c.relnamespace WHERE c.oid = parent;
        def_name := storage._partition_child_name(nsp, relname, canon, 'default');
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, def_name, parent);
        PERFORM storage._partition_own_like(format('%I.%I', nsp, def_name)::regclass, parent);
        n := n + 1;
    END IF;
    INSERT INTO storage.partition_config SELECT cfg.*;
    RETURN n;
END $$;
COMMENT ON FUNCTION storage.create_partitions(regclass, text, integer, text, text, boolean, boolean, text, name) IS
    'Registers a PARTITION BY RANGE table and creates its children from start_from (default: the lowest existing value, else the current period) to premake steps ahead of now (time) or of the highest value (integers), plus a default partition. Returns the number of partitions created (children and default).';

CREATE FUNCTION storage.partitions(parent regclass)
RETURNS TABLE (partition regclass, lower_bound text, upper_bound text, is_default boolean, estimated_rows bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' AS $$
#variable_conflict use_column
DECLARE
    k record;
BEGIN
    k := storage._partition_key(parent);
    RETURN QUERY
    SELECT ch.child, ch.lower_bound, ch.upper_bound, ch.is_default,
           CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint WHEN c.relpages = 0 AND c.relkind = 'r' THEN 0 END
      FROM storage._partition_children(parent) ch JOIN pg_class c ON c.oid = ch.child
     ORDER BY ch.is_default,
              storage._partition_sort_key(storage._partition_kind(k.key_type),
                  storage._partition_pos_of(k.key_type, current_setting('TimeZone'), ch.lower_bound)) NULLS FIRST;
END $$;
COMMENT ON FUNCTION storage.partitions(regclass) IS
    'Children of a range-partitioned table in bound order (default last): bounds as PostgreSQL prints them (NULL = MINVALUE/MAXVALUE), estimated rows from the statistics (NULL before the first ANALYZE).';

-- The registered configuration of a parent, or 42704.
CREATE FUNCTION storage._partition_config(parent regclass) RETURNS storage.partition_config
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg storage.partition_config;
BEGIN
    SELECT * INTO cfg FROM storage.partition_config c WHERE c.parent = _partition_config.parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not registered for partition maintenance', parent
              USING ERRCODE = 'undefined_object',
                    HINT = format('Register it first: SELECT storage.create_partitions(%L, ''1 month'');', parent::text);
    END IF;
    RETURN cfg;
END $$;
COMMENT ON FUNCTION storage._partition_config(regclass) IS
    'Internal: the partition_config row of a parent, or an error naming create_partitions.';

CREATE FUNCTION storage.ensure_partition(parent regclass, value text) RETURNS regclass
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cfg storage.partition_config := storage._partition_config(parent);
    kind text := storage._partition_kind(cfg.control_type);
    canon text := cfg.step_canonical;
    pos text;
    key numeric;
    found_child regclass;
    ex record;
    lim record;
    r record;
BEGIN
    PERFORM storage._require_primary('storage.ensure_partition');
    BEGIN
        pos := storage._partition_pos_of(cfg.control_type, cfg.time_zone, value);
    EXCEPTION WHEN datetime_field_overflow OR numeric_value_out_of_range OR invalid_parameter_value THEN
        RAISE;   -- a value of the type that no period holds (or a uuid that is not v7): its own clear error
    WHEN data_exception THEN
        RAISE EXCEPTION '% is not a value of type %', quote_literal(value), cfg.control_type
              USING ERRCODE = 'invalid_text_representation', DETAIL = SQLERRM,
                    HINT = format('Pass a value of the partition key %I.', cfg.control_column);
    END;
    key := storage._partition_sort_key(kind, pos);
    PERFORM pg_advisory_xact_lock(hashtext('pg_storage_ext.partition'), parent::oid::integer);
    SELECT ch.child INTO found_child
      FROM storage._partition_children(parent) ch
     WHERE NOT ch.is_default
       AND (ch.lower_bound IS NULL
            OR storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.lower_bound)) <= key)
       AND (ch.upper_bound IS NULL
            OR key < storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.upper_bound)));
    IF found_child IS NOT NULL THEN
        RETURN found_child;
    END IF;
    ex := storage._partition_ranges(cfg);
    lim := storage._partition_limits(cfg.control_type);
    FOR r IN SELECT * FROM storage._partition_plan(canon, ex.lowers, ex.uppers, pos, pos, lim.lo, lim.hi) LOOP
        IF (r.lower IS NULL OR storage._partition_sort_key(kind, r.lower) <= key)
           AND (r.upper IS NULL OR key < storage._partition_sort_key(kind, r.upper)) THEN
            RETURN (storage._partition_create_child(cfg, r.lower, r.upper)).child;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no partition range holds % in %', quote_literal(value), parent
          USING ERRCODE = 'internal_error', HINT = 'Please report this with storage.partitions() of the table.';
END $$;
COMMENT ON FUNCTION storage.ensure_partition(regclass, text) IS
    'The child of a registered parent that holds value, created if missing; rows of its range already in the default partition are moved into it in the same transaction.';

-- What maintenance would do for one parent, without doing it: children to premake, whether the
-- default holds rows, children past retention. Cheap: catalog reads, EXISTS probes.
CREATE FUNCTION storage._partition_work(cfg storage.partition_config,
                                        OUT to_make integer, OUT default_rows boolean, OUT expired regclass[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text := storage._partition_kind(cfg.control_type);
    canon text := cfg.step_canonical;
    cur text := storage._partition_current(cfg);
    ex record := storage._partition_ranges(cfg);
    lim record := storage._partition_limits(cfg.control_type);
    defid oid;
    cutoff numeric;
BEGIN
    SELECT count(*) INTO to_make
      FROM storage._partition_plan(canon, ex.lowers, ex.uppers, cur,
                                   coalesce(storage._partition_add(canon, storage._partition_floor(canon, cur), cfg.premake), cur),
                                   lim.lo, lim.hi);
    default_rows := false;
    SELECT partdefid INTO defid FROM pg_partitioned_table WHERE partrelid = cfg.parent;
    -- a default partition without a single page is empty: no query needed (but for a Citus
    -- table, whose rows are in shards on the workers)
    IF defid <> 0 AND (pg_relation_size(defid) > 0 OR storage._citus_kind(defid) IS NOT NULL) THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NOT NULL)', defid::regclass, cfg.control_column)
           INTO default_rows;
    END IF;
    expired := '{}';
    IF cfg.retention IS NOT NULL THEN
        IF kind = 'time' THEN
            cutoff := extract(epoch FROM (now() AT TIME ZONE cfg.time_zone) - cfg.retention::interval);
            -- the audit log keeps what a change feed has not acknowledged (audit._feed_keep)
            IF cfg.parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass) THEN
                cutoff := least(cutoff, extract(epoch FROM audit._feed_keep() AT TIME ZONE cfg.time_zone));
            END IF;
        ELSE
            cutoff := cur::numeric - cfg.retention::numeric;
        END IF;
        SELECT coalesce(array_agg(ch.child ORDER BY storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.upper_bound))), '{}')
          INTO expired
          FROM storage._partition_children(cfg.parent) ch
         WHERE NOT ch.is_default AND ch.upper_bound IS NOT NULL
           AND storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch.upper_bound)) <= cutoff;
    END IF;
    -- sub-partitions past sub_retention inside the children that are kept
    IF cfg.sub_retention IS NOT NULL AND cfg.sub_step NOT LIKE 'hash:%' THEN
        IF kind = 'time' THEN
            cutoff := extract(epoch FROM (now() AT TIME ZONE cfg.time_zone) - cfg.sub_retention::interval);
        ELSE
            cutoff := cur::numeric - cfg.sub_retention::numeric;
        END IF;
        expired := expired || ARRAY(
            SELECT ch2.child
              FROM storage._partition_children(cfg.parent) ch
             CROSS JOIN LATERAL storage._partition_children(ch.child) ch2
             WHERE NOT ch.is_default AND ch.child <> ALL (expired) AND ch2.upper_bound IS NOT NULL
               AND storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch2.upper_bound)) <= cutoff
             ORDER BY storage._partition_sort_key(kind, storage._partition_pos_of(cfg.control_type, cfg.time_zone, ch2.upper_bound)));
    END IF;
END $$;
COMMENT ON FUNCTION storage._partition_work(storage.partition_config) IS
    'Internal: what run_maintenance has to do for a parent (premake count, default rows, expired children).';

-- Does the work for one parent: drain the default, premake, retention. Returns the counts.
CREATE FUNCTION storage._partition_maintain_one(cfg storage.partition_config, default_rows boolean,
                                                OUT created integer, OUT dropped integer,
                                                OUT detached integer, OUT moved bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    canon text := cfg.step_canonical;
    w record;
    defid oid;
    p text;
    made record;
    cur text;
    child regclass;
    before oid[];
    rows bigint;
BEGIN
    created := 0; dropped := 0; detached := 0; moved := 0;
    -- the children there were before this run: retention of one made by this run's drain drops
    -- rows that were only just moved, which is said (below)
    SELECT array_agg(t.relid::oid) INTO before FROM pg_partition_tree(cfg.parent) t WHERE t.relid <> cfg.parent;
    -- 1. drain: a child for every period that has rows in the default partition (the caller's
    -- _partition_work found whether there are any)
    IF default_rows THEN
        SELECT partdefid INTO defid FROM pg_partitioned_table WHERE partrelid = cfg.parent;
        FOR p IN EXECUTE format('SELECT DISTINCT storage._partition_floor($1, storage._partition_pos_of($2, $3, v::text)) '
                                'FROM (SELECT DISTINCT %I AS v FROM ONLY %s WHERE %I IS NOT NULL) s',
                                cfg.control_column, defid::regclass, cfg.control_column)
          USING canon, cfg.control_type, cfg.time_zone
        LOOP
            made := storage._partition_fill(cfg, p, p);
            created := created + made.created;
            moved := moved + made.moved;
        END LOOP;
    END IF;
    -- 2. premake
    cur := storage._partition_current(cfg);
    made := storage._partition_fill(cfg, cur,
                coalesce(storage._partition_add(canon, storage._partition_floor(canon, cur), cfg.premake), cur));
    created := created + made.created;
    moved := moved + made.moved;
    -- 3. retention, counted from the state after 1 and 2
    IF cfg.retention IS NULL AND cfg.sub_retention IS NULL THEN
        RETURN;
    END IF;
    -- change feeds lagging past pg_storage_ext.audit_feed_max_lag keep the audit log no longer
    IF cfg.parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass) THEN
        PERFORM audit._feed_mark_broken();
    END IF;
    w := storage._partition_work(cfg);
    FOREACH child IN ARRAY w.expired LOOP
        IF NOT child::oid = ANY (coalesce(before, '{}')) THEN
            EXECUTE format('SELECT count(*) FROM %s', child) INTO rows;
            IF rows > 0 THEN
                RAISE WARNING 'pg_storage_ext: retention of % % % rows moved out of its default partition by this same run', cfg.parent,
                      CASE WHEN cfg.retention_keep_table OR cfg.retention_schema IS NOT NULL THEN 'detaches' ELSE 'drops' END, rows
                      USING DETAIL = format('Partition %s was made for rows older than the retention (%s) found in the default partition.', child, cfg.retention),
                            HINT = 'Rows older than the retention are not kept; set retention_keep_table or retention_schema to keep expired partitions as tables.';
            END IF;
        END IF;
        IF cfg.retention_keep_table OR cfg.retention_schema IS NOT NULL THEN
            -- (a sub-partition is detached from its own parent)
            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s',
                           (SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = child), child);
            IF NOT cfg.retention_keep_index THEN
                PERFORM storage._partition_drop_indexes(child);
            END IF;
            IF cfg.retention_schema IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %s SET SCHEMA %I', child, cfg.retention_schema);
            END IF;
            detached := detached + 1;
        ELSE
            EXECUTE format('DROP TABLE %s', child);
            dropped := dropped + 1;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._partition_maintain_one(storage.partition_config, boolean) IS
    'Internal: drains the default partition, premakes and applies retention for one parent.';

CREATE FUNCTION storage._partition_run_maintenance(target regclass)
RETURNS TABLE (o_parent regclass, o_created integer, o_dropped integer, o_detached integer, o_moved bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '0' AS $$
DECLARE
    cfg storage.partition_config;
    w record;
    res record;
    attempt integer;
    retries integer;
BEGIN
    -- the settings below are defined when the library loads: load it
    PERFORM storage._partition_fit('', '');
    retries := current_setting('pg_storage_ext.partition_lock_retries')::integer;
    IF target IS NOT NULL THEN
        cfg := storage._partition_config(target);
    END IF;
    PERFORM set_config('lock_timeout', current_setting('pg_storage_ext.partition_lock_timeout'), true);
    FOR cfg IN SELECT * FROM storage.partition_config c
                WHERE target IS NULL OR c.parent = target ORDER BY c.parent::oid LOOP
        o_parent := cfg.parent;
        o_created := 0; o_dropped := 0; o_detached := 0; o_moved := 0;
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = cfg.parent) THEN
            -- the table was dropped: forget it
            DELETE FROM storage.partition_config c WHERE c.parent = cfg.parent;
            CONTINUE;
        END IF;
        IF NOT pg_try_advisory_xact_lock(hashtext('pg_storage_ext.partition'), cfg.parent::oid::integer) THEN
            RAISE DEBUG 'pg_storage_ext: % skipped, another session is maintaining it', cfg.parent;
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            w := storage._partition_work(cfg);
            IF w.to_make > 0 OR w.default_rows OR cardinality(w.expired) > 0 THEN
                attempt := 0;
                LOOP
                    BEGIN
                        res := storage._partition_maintain_one(cfg, w.default_rows);
                        o_created := res.created; o_dropped := res.dropped;
                        o_detached := res.detached; o_moved := res.moved;
                        EXIT;
                    EXCEPTION WHEN lock_not_available THEN
                        attempt := attempt + 1;
                        IF attempt > retries THEN
                            RAISE WARNING 'pg_storage_ext: maintenance of % skipped: lock not available after % attempts', cfg.parent, attempt
                                  USING DETAIL = 'A long transaction holds a lock on the table or its default partition.',
                                        HINT = 'It is retried on the next run; raise pg_storage_ext.partition_lock_timeout to wait longer.';
                            EXIT;
                        END IF;
                        PERFORM pg_sleep(least(0.05 * power(2, attempt), 1.0) * (0.5 + random() / 2));
                    END;
                END LOOP;
            END IF;
        EXCEPTION
            WHEN lock_not_available THEN
                -- reading what to do (the default partition's rows, the tree) waited too: skipped,
                -- as a lock the work itself could not get
                RAISE WARNING 'pg_storage_ext: maintenance of % skipped: lock not available', cfg.parent
                      USING DETAIL = 'A long transaction holds a lock on the table or one of its partitions.',
                            HINT = 'It is retried on the next run; raise pg_storage_ext.partition_lock_timeout to wait longer.';
            WHEN OTHERS THEN
                IF target IS NOT NULL THEN
                    RAISE;
                END IF;
                RAISE WARNING 'pg_storage_ext: maintenance of % failed: %', cfg.parent, SQLERRM
                      USING HINT = 'The other parents were maintained; fix this one and run storage.run_maintenance() again.';
        END;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._partition_run_maintenance(regclass) IS
    'Internal: body of storage.run_maintenance.';

-- On a Citus coordinator, every worker's own registered parents (the logs its shards of audited
-- distributed tables write, docs/citus.md) are kept by run_maintenance() here too: premade
-- months, retention (and a worker added since audit.enable gets its log). A worker without the
-- extension is skipped.
CREATE FUNCTION storage._partition_maintain_workers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- whether the workers log for this node (shards of audited distributed tables)
    logs boolean;
BEGIN
    IF storage._citus_workers() THEN
        logs := EXISTS (SELECT FROM audit._tracked t WHERE storage._citus_kind(t.table_name) = 'distributed');
        PERFORM storage._on_workers(format(
            'DO $pgse$ BEGIN
                 IF pg_catalog.to_regprocedure(''storage.run_maintenance(regclass)'') IS NOT NULL THEN
                     IF %L THEN
                         PERFORM audit._citus_worker_log();
                     END IF;
                     PERFORM storage.run_maintenance();
                 END IF;
             END $pgse$', logs));
    END IF;
END
$$;
COMMENT ON FUNCTION storage._partition_maintain_workers() IS
    'Internal: on a Citus coordinator, runs storage.run_maintenance() on every worker that has the extension.';

CREATE FUNCTION storage.run_maintenance(parent regclass DEFAULT NULL)
RETURNS TABLE (parent regclass, created integer, dropped integer, detached integer, moved_from_default bigint)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT storage._require_primary('storage.run_maintenance');
    SELECT storage._partition_maintain_workers() WHERE $1 IS NULL;
    SELECT * FROM storage._partition_run_maintenance($1)
$$;
COMMENT ON FUNCTION storage.run_maintenance(regclass) IS
    'For one or every registered parent: premake children ahead, drain the default partition into proper children, apply retention (drop, or detach with retention_keep_table). Safe from pg_cron: one advisory lock per parent (a concurrent caller skips it), lock waits bounded by pg_storage_ext.partition_lock_timeout with pg_storage_ext.partition_lock_retries retries.';

-- The start of the lowest period that has rows in the default partition; NULL when it has none.
CREATE FUNCTION storage._partition_default_next(cfg storage.partition_config) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    defid oid;
    v text;
BEGIN
    SELECT partdefid INTO defid FROM pg_partitioned_table WHERE partrelid = cfg.parent;
    IF defid IS NULL OR defid = 0 OR (pg_relation_size(defid) = 0 AND storage._citus_kind(defid) IS NULL) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT t.%I::text FROM ONLY %s AS t WHERE t.%1$I IS NOT NULL ORDER BY t.%1$I LIMIT 1', cfg.control_column, defid::regclass) INTO v;
    RETURN storage._partition_floor(cfg.step_canonical,
                                    storage._partition_pos_of(cfg.control_type, cfg.time_zone, v));
END $$;
COMMENT ON FUNCTION storage._partition_default_next(storage.partition_config) IS
    'Internal: the start of the lowest period with rows in the default partition (NULL when none).';

-- Moves the rows of the default partition into their children, lowest period first, committing
-- whenever batch_rows rows have moved since the last commit (a period's rows move in one
-- transaction: its child cannot be attached while the default holds any of them). Interrupted, it
-- leaves whole periods moved and the rest in the default; run again, it goes on from there.
-- Transaction control forbids SET search_path: it is pinned with set_config after each COMMIT.
CREATE PROCEDURE storage.partition_data_proc(parent regclass, batch_rows integer DEFAULT 10000)
LANGUAGE plpgsql AS $$
DECLARE
    cfg storage.partition_config;
    p text;
    last_p text;
    made record;
    since_commit bigint := 0;
    total bigint := 0;
    periods integer := 0;
    attempt integer;
    progress integer;
BEGIN
    PERFORM storage._require_primary('storage.partition_data_proc');
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF batch_rows IS NULL OR batch_rows OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_rows must be positive, got %', coalesce(batch_rows::pg_catalog.text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'The default, 10000, suits most tables.';
    END IF;
    cfg := storage._partition_config(parent);
    PERFORM storage._partition_fit('', '');   -- loads the library, which defines the settings below
    progress := storage._progress_start('partition_data_proc', parent::pg_catalog.text,
                                        (SELECT c.reltuples::pg_catalog.int8 FROM pg_catalog.pg_inherits i
                                           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                                          WHERE i.inhparent OPERATOR(pg_catalog.=) parent
                                            AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) OPERATOR(pg_catalog.=) 'DEFAULT'));
    LOOP
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM pg_catalog.set_config('lock_timeout', pg_catalog.current_setting('pg_storage_ext.partition_lock_timeout'), true);
        -- run_maintenance and ensure_partition of this parent wait for the batch
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_storage_ext.partition'), parent::pg_catalog.oid::pg_catalog.int4);
        p := storage._partition_default_next(cfg);
        EXIT WHEN p IS NULL;
        IF p IS NOT DISTINCT FROM last_p THEN
            RAISE EXCEPTION 'rows of the period starting % stay in the default partition of %', p, parent
                  USING ERRCODE = 'internal_error', HINT = 'Please report this with storage.partitions() of the table.';
        END IF;
        attempt := 0;
        LOOP
            BEGIN
                made := storage._partition_fill(cfg, p, p);
                EXIT;
            EXCEPTION WHEN lock_not_available THEN
                attempt := attempt OPERATOR(pg_catalog.+) 1;
                IF attempt OPERATOR(pg_catalog.>) 50 THEN
                    RAISE EXCEPTION 'partition_data_proc of % gave up waiting for a lock', parent
                          USING ERRCODE = 'lock_not_available',
                                DETAIL = format('%s rows moved so far (committed); a long transaction holds a lock on the table or its default partition.', total),
                                HINT = 'Run it again later: it goes on where it stopped.';
                END IF;
                PERFORM pg_catalog.pg_sleep(0.05 OPERATOR(pg_catalog.*) (0.5 OPERATOR(pg_catalog.+) pg_catalog.random()));
            END;
        END LOOP;
        last_p := p;
        total := total OPERATOR(pg_catalog.+) made.moved;
        since_commit := since_commit OPERATOR(pg_catalog.+) made.moved;
        periods := periods OPERATOR(pg_catalog.+) 1;
        PERFORM storage._progress_update(progress, total, pg_catalog.format('period %s', p));
        IF since_commit OPERATOR(pg_catalog.>=) batch_rows THEN
            COMMIT;
            RAISE NOTICE 'pg_storage_ext: % rows of % moved out of the default partition (% periods)', total, parent, periods;
            since_commit := 0;
        END IF;
    END LOOP;
    PERFORM storage._progress_end(progress);
    COMMIT;
    RAISE NOTICE 'pg_storage_ext: done, % rows of % moved out of the default partition into % periods', total, parent, periods;
END $$;
COMMENT ON PROCEDURE storage.partition_data_proc(regclass, integer) IS
    'Moves the rows of a registered parent''s default partition into their children (created as needed), lowest period first, committing whenever batch_rows rows have moved (a period moves whole); safe to interrupt and run again. CALL it as a statement of its own.';

-- ACCESS EXCLUSIVE on rels, in order, without ever queueing for long in front of readers: each
-- try waits at most 50 ms (a reader that arrives meanwhile waits no longer, and a reader holding
-- one of the relations while waiting for another cannot deadlock with us); retried with jitter,
-- then one last wait under the caller's own lock_timeout.
CREATE FUNCTION storage._partition_lock_swap(rels regclass[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text := format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE',
                        (SELECT string_agg(r::text, ', ' ORDER BY i) FROM unnest(rels) WITH ORDINALITY AS u(r, i)));
    caller_timeout text := current_setting('lock_timeout');
BEGIN
    FOR attempt IN 1 .. 200 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            EXECUTE stmt;
            PERFORM set_config('lock_timeout', caller_timeout, true);
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            -- the failed try is rolled back: no lock kept, lock_timeout back to the caller's
            PERFORM pg_sleep(0.01 + random() * 0.05);
        END;
    END LOOP;
    EXECUTE stmt;
END $$;
COMMENT ON FUNCTION storage._partition_lock_swap(regclass[]) IS
    'Internal: ACCESS EXCLUSIVE on relations for a swap, in short retried waits.';

-- The views and materialized views whose query reads a relation, with their kind; the one place
-- that walks pg_depend/pg_rewrite for it.
CREATE FUNCTION storage._dependent_views(rel regclass) RETURNS TABLE (view regclass, kind "char")
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT r.ev_class::regclass, c.relkind
      FROM pg_depend d
      JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
      JOIN pg_class c ON c.oid = r.ev_class
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = rel AND r.ev_class <> rel
$$;
COMMENT ON FUNCTION storage._dependent_views(regclass) IS
    'Internal: the views (v) and materialized views (m) that read a relation.';

-- Moving a table's contents and everything it carries into another table (conversion to a
-- partitioned table, and back). The steps, in the order the callers run them:
-- _table_prepare (right after CREATE TABLE … LIKE), _table_copy (per source relation),
-- _table_check, _table_carry, _table_swap. Everything is carried exactly
-- (tests/pg_regress/sql/partition_convert.sql compares the catalogs before and after).

-- LIKE validates NOT VALID checks (they are added back by _table_carry after the copy) and does
-- not copy per-column statistics targets and options.
CREATE FUNCTION storage._table_prepare(source regclass, dest regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
              WHERE conrelid = source AND contype = 'c' AND NOT convalidated ORDER BY conname LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', dest, c.conname);
    END LOOP;
    FOR c IN SELECT attname, attstattarget, attoptions FROM pg_attribute
              WHERE attrelid = source AND attnum > 0 AND NOT attisdropped
                AND (attstattarget IS NOT NULL OR attoptions IS NOT NULL) ORDER BY attnum LOOP
        IF c.attstattarget IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', dest, c.attname, c.attstattarget);
        END IF;
        IF c.attoptions IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET (%s)', dest, c.attname, array_to_string(c.attoptions, ', '));
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._table_prepare(regclass, regclass) IS
    'Internal: readies a table made with LIKE for a copy (NOT VALID checks off until _table_carry, statistics targets and column options).';

-- The rows of one plain relation (ONLY it), in batches of about batch_rows (a TID range scan
-- each), as the relation's owner, restricted (defaults and CHECKs of the copy are the owner's).
CREATE FUNCTION storage._table_copy(source regclass, dest regclass, batch_rows integer) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;
    rel pg_class;
    pages bigint;
    per_batch bigint;
    p bigint := 0;
    total bigint := 0;
    progress integer;
BEGIN
    SELECT * INTO rel FROM pg_class WHERE oid = source;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute WHERE attrelid = source AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    pages := pg_relation_size(source) / current_setting('block_size')::bigint;
    per_batch := greatest(1, batch_rows / greatest(1, CASE WHEN rel.reltuples > 0 AND rel.relpages > 0
                                                           THEN (rel.reltuples / rel.relpages)::bigint ELSE 100 END));
    progress := storage._progress_start('copy rows', format('%s -> %s', source, dest), rel.reltuples::bigint);
    WHILE p < pages LOOP
        total := total + storage._run_as_owner(source,
                 format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ONLY %s '
                        'WHERE ctid >= CAST($1 AS tid) AND ctid < CAST($2 AS tid)', dest, cols, cols, source),
                 ARRAY[format('(%s,0)', p), format('(%s,0)', least(p + per_batch, 4294967295))]);
        p := p + per_batch;
        PERFORM storage._progress_update(progress, total, format('page %s of %s', least(p, pages), pages));
    END LOOP;
    PERFORM storage._progress_end(progress);
    RETURN total;
END $$;
COMMENT ON FUNCTION storage._table_copy(regclass, regclass, integer) IS
    'Internal: copies the rows of one relation into another in batches of pages, as the relation''s owner.';

-- The same rows on both sides: count and an order-independent checksum of every row.
CREATE FUNCTION storage._table_check(source regclass, dest regclass, copied bigint, what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a record;
    b record;
BEGIN
    EXECUTE format('SELECT count(*) AS n, coalesce(sum(hashtextextended(x::text, 0)), 0) AS h FROM %s x', source) INTO a;
    EXECUTE format('SELECT count(*) AS n, coalesce(sum(hashtextextended(x::text, 0)), 0) AS h FROM %s x', dest) INTO b;
    IF a.n <> b.n OR a.h <> b.h OR a.n <> copied THEN
        RAISE EXCEPTION '% of % did not copy every row unchanged', what, source
              USING ERRCODE = 'data_corrupted',
                    DETAIL = format('Before: %s rows, checksum %s. After: %s rows, checksum %s. Copied: %s.',
                                    a.n, a.h, b.n, b.h, copied),
                    HINT = 'Nothing was changed. Please report this.';
    END IF;
END $$;
COMMENT ON FUNCTION storage._table_check(regclass, regclass, bigint, text) IS
    'Internal: raises XX001 unless two tables hold the same rows (count and checksum) and copied is their count.';

-- Gives dest what source carries (after the copy, so triggers do not fire on it): NOT VALID
-- checks, identity positions, constraints and indexes (under temporary names; key_column, when
-- given, is appended to unique keys), triggers with their state, audit capture, grants, comments,
-- row security switches, replica identity, publications. Returns what _table_swap finishes.
CREATE FUNCTION storage._table_carry(source regclass, dest regclass, key_column name, command text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel pg_class;
    nsp name;
    c record;
    def text;
    prefix text;
    renames jsonb := '[]';
    identity_seqs jsonb := '[]';
BEGIN
    SELECT * INTO rel FROM pg_class WHERE oid = source;
    nsp := (SELECT nspname FROM pg_namespace WHERE oid = rel.relnamespace);
    FOR c IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
              WHERE conrelid = source AND contype = 'c' AND NOT convalidated ORDER BY conname LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', dest, c.conname, c.def);
    END LOOP;
    -- identity sequences continue where the old ones were, and take their names after the swap
    FOR c IN SELECT pg_get_serial_sequence(source::text, a.attname) AS old_seq,
                    pg_get_serial_sequence(dest::text, a.attname) AS new_seq
               FROM pg_attribute a WHERE a.attrelid = source AND a.attidentity <> '' LOOP
        EXECUTE format('SELECT setval(%L, last_value, is_called) FROM %s', c.new_seq, c.old_seq);
        identity_seqs := identity_seqs || jsonb_build_array(jsonb_build_array(c.new_seq,
                             (SELECT relname FROM pg_class WHERE oid = c.old_seq::regclass)));
    END LOOP;
    -- primary key, unique and exclusion constraints, then foreign keys
    FOR c IN SELECT oid, conname, contype FROM pg_constraint
              WHERE conrelid = source AND contype IN ('p', 'u', 'x', 'f') ORDER BY contype = 'f', conname LOOP
        def := pg_get_constraintdef(c.oid);
        IF c.contype IN ('p', 'u') AND key_column IS NOT NULL THEN
            def := storage._partition_extend_key(def, key_column);
        END IF;
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', dest, storage._partition_fit(c.conname, '_pse'), def);
        IF obj_description(c.oid, 'pg_constraint') IS NOT NULL THEN
            EXECUTE format('COMMENT ON CONSTRAINT %I ON %s IS %L', storage._partition_fit(c.conname, '_pse'), dest,
                           obj_description(c.oid, 'pg_constraint'));
        END IF;
        renames := renames || jsonb_build_array(jsonb_build_array('c', storage._partition_fit(c.conname, '_pse'), c.conname));
    END LOOP;
    -- other indexes, from PostgreSQL's own definition with the table and the name replaced
    FOR c IN SELECT i.indexrelid, ic.relname, i.indisunique FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = source
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = source)
              ORDER BY ic.relname LOOP
        def := pg_get_indexdef(c.indexrelid);
        prefix := format('CREATE %sINDEX %I ON %s%I.%I USING ', CASE WHEN c.indisunique THEN 'UNIQUE ' ELSE '' END,
                         c.relname, CASE WHEN rel.relkind = 'p' THEN 'ONLY ' ELSE '' END, nsp, rel.relname);
        IF left(def, length(prefix)) <> prefix THEN
            RAISE EXCEPTION 'cannot read the definition of index %', c.relname USING ERRCODE = 'internal_error',
                  DETAIL = def, HINT = 'Drop the index before converting and recreate it afterwards.';
        END IF;
        def := substr(def, length(prefix) + 1);
        IF c.indisunique AND key_column IS NOT NULL THEN
            def := storage._partition_extend_key(def, key_column);
        END IF;
        EXECUTE format('CREATE %sINDEX %I ON %s USING %s', CASE WHEN c.indisunique THEN 'UNIQUE ' ELSE '' END,
                       storage._partition_fit(c.relname, '_pse'), dest, def);
        IF obj_description(c.indexrelid, 'pg_class') IS NOT NULL THEN
            EXECUTE format('COMMENT ON INDEX %I.%I IS %L', nsp, storage._partition_fit(c.relname, '_pse'),
                           obj_description(c.indexrelid, 'pg_class'));
        END IF;
        renames := renames || jsonb_build_array(jsonb_build_array('i', storage._partition_fit(c.relname, '_pse'), c.relname));
    END LOOP;
    -- triggers, re-pointed at dest (name, columns, WHEN clause and arguments untouched), with their
    -- enabled state and comment; audit capture triggers excepted: the audit configuration moves
    FOR c IN SELECT oid, tgname, tgenabled FROM pg_trigger WHERE tgrelid = source AND NOT tgisinternal
                AND tgfoid <> 'audit._capture()'::regprocedure ORDER BY tgname LOOP
        EXECUTE storage._partition_retarget(pg_get_triggerdef(c.oid), dest::text);
        IF c.tgenabled <> 'O' THEN
            EXECUTE format('ALTER TABLE %s %s TRIGGER %I', dest,
                           CASE c.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END,
                           c.tgname);
        END IF;
        IF obj_description(c.oid, 'pg_trigger') IS NOT NULL THEN
            EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', c.tgname, dest, obj_description(c.oid, 'pg_trigger'));
        END IF;
    END LOOP;
    -- an audited table stays audited with the same options; its history goes on
    PERFORM audit._carry_capture(source, dest, command);
    -- grants (table and column), comment, row security switches
    FOR c IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(rel.relacl) a
              WHERE a.grantee <> rel.relowner LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', c.privilege_type, dest,
                       CASE WHEN c.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(c.grantee)) END,
                       CASE WHEN c.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    FOR c IN SELECT att.attname, a.grantee, a.privilege_type, a.is_grantable
               FROM pg_attribute att, aclexplode(att.attacl) a
              WHERE att.attrelid = source AND att.attacl IS NOT NULL AND a.grantee <> rel.relowner LOOP
        EXECUTE format('GRANT %s (%I) ON %s TO %s%s', c.privilege_type, c.attname, dest,
                       CASE WHEN c.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(c.grantee)) END,
                       CASE WHEN c.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF obj_description(source, 'pg_class') IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %s IS %L', dest, obj_description(source, 'pg_class'));
    END IF;
    IF rel.relrowsecurity THEN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', dest);
    END IF;
    IF rel.relforcerowsecurity THEN
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', dest);
    END IF;
    -- replica identity FULL or NOTHING, on the table and every child (USING INDEX after the renames)
    IF rel.relreplident IN ('f', 'n') THEN
        FOR c IN SELECT dest AS r UNION ALL SELECT relid FROM pg_partition_tree(dest) WHERE relid <> dest LOOP
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', c.r, CASE rel.relreplident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END);
        END LOOP;
    END IF;
    -- publication membership
    FOR c IN SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
              WHERE r.prrelid = source ORDER BY p.pubname LOOP
        EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', c.pubname, dest);
    END LOOP;
    RETURN jsonb_build_object(
        'renames', renames,
        'identity_seqs', identity_seqs,
        -- extended statistics are made again after the old table is gone, under their own names
        'stats', (SELECT coalesce(jsonb_agg(jsonb_build_array(pg_get_statisticsobjdef(s.oid), format('%I.%I', sn.nspname, s.stxname),
                                                              obj_description(s.oid, 'pg_statistic_ext')) ORDER BY s.stxname), '[]')
                    FROM pg_statistic_ext s JOIN pg_namespace sn ON sn.oid = s.stxnamespace WHERE s.stxrelid = source),
        'ri_index', (SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                      WHERE x.indrelid = source AND x.indisreplident AND rel.relreplident = 'i'));
END $$;
COMMENT ON FUNCTION storage._table_carry(regclass, regclass, name, text) IS
    'Internal: gives a table the constraints, indexes, triggers, audit capture, grants, comments and replica identity of another; returns what _table_swap finishes.';

-- The swap, under a short ACCESS EXCLUSIVE lock taken in 50 ms tries: views reading source are
-- re-pointed by their text (printed before the rename; locked with it, views first, the order a
-- reader of a view takes them), dest takes source's name, serial sequences move to dest, source is
-- dropped, constraints, indexes, identity sequences and extended statistics take the old names.
CREATE FUNCTION storage._table_swap(source regclass, dest regclass, carried jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel pg_class;
    nsp name;
    views text[];
    def text;
    c record;
    e jsonb;
BEGIN
    SELECT * INTO rel FROM pg_class WHERE oid = source;
    nsp := (SELECT nspname FROM pg_namespace WHERE oid = rel.relnamespace);
    PERFORM storage._partition_lock_swap(ARRAY(SELECT view FROM storage._dependent_views(source)) || source);
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s%s AS %s', v.oid::regclass,
                                     CASE WHEN v.reloptions IS NOT NULL THEN format(' WITH (%s)', array_to_string(v.reloptions, ', ')) ELSE '' END,
                                     pg_get_viewdef(v.oid)) ORDER BY v.oid), '{}')
      INTO views
      FROM pg_class v
     WHERE v.oid IN (SELECT view FROM storage._dependent_views(source) WHERE kind = 'v');
    EXECUTE format('ALTER TABLE %s RENAME TO %I', source, storage._partition_fit(rel.relname, '_pse_old'));
    EXECUTE format('ALTER TABLE %s RENAME TO %I', dest, rel.relname);
    FOREACH def IN ARRAY views LOOP
        EXECUTE def;
    END LOOP;
    -- serial sequences now belong to dest, so dropping source keeps them
    FOR c IN SELECT s.oid::regclass AS seq, a.attname
               FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.refobjid = source AND d.deptype = 'a' AND d.classid = 'pg_class'::regclass LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', c.seq, dest, c.attname);
    END LOOP;
    EXECUTE format('DROP TABLE %s', source);
    FOR e IN SELECT jsonb_array_elements(carried->'renames') LOOP
        IF e->>0 = 'c' THEN
            EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', dest, e->>1, e->>2);
        ELSE
            EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', nsp, e->>1, e->>2);
        END IF;
    END LOOP;
    IF carried->>'ri_index' IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', dest, carried->>'ri_index');
    END IF;
    FOR e IN SELECT jsonb_array_elements(carried->'stats') LOOP
        EXECUTE e->>0;
        IF e->>2 IS NOT NULL THEN
            EXECUTE format('COMMENT ON STATISTICS %s IS %L', e->>1, e->>2);
        END IF;
    END LOOP;
    FOR e IN SELECT jsonb_array_elements(carried->'identity_seqs') LOOP
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', e->>0, e->>1);
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._table_swap(regclass, regclass, jsonb) IS
    'Internal: puts a table in the place of another (views, name, serial sequences, then the old one dropped and the carried names restored).';

-- What neither a conversion nor its undoing can carry, all of it in one error (0A000).
CREATE FUNCTION storage._table_refuse(source regclass, what text, also text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    refused text[];
BEGIN
    refused := array_remove(coalesce(also, '{}') || ARRAY[
        (SELECT format('foreign keys referencing it (%s): a foreign key needs a unique key without the partition column',
                       string_agg(format('%s on %s', conname, conrelid::regclass), ', ' ORDER BY conname))
           FROM pg_constraint WHERE confrelid = source AND contype = 'f' HAVING count(*) > 0),
        (SELECT 'row security policies ' || string_agg(quote_ident(polname), ', ' ORDER BY polname)
           FROM pg_policy WHERE polrelid = source),
        (SELECT 'rules ' || string_agg(quote_ident(rulename), ', ' ORDER BY rulename)
           FROM pg_rewrite WHERE ev_class = source AND rulename <> '_RETURN'),
        (SELECT 'materialized views reading it: ' || string_agg(view::text, ', ' ORDER BY view::text)
           FROM storage._dependent_views(source) WHERE kind = 'm'),
        (SELECT 'publications with a row filter or column list: ' || string_agg(quote_ident(p.pubname), ', ' ORDER BY p.pubname)
           FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
          WHERE r.prrelid = source AND (r.prqual IS NOT NULL OR r.prattrs IS NOT NULL))], NULL);
    IF cardinality(refused) > 0 THEN
        RAISE EXCEPTION '% cannot be % without losing what it carries', source, what
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Not carried: ' || array_to_string(refused, '; ') || '.',
                    HINT = 'Remove these, run it again, and set them up again afterwards.';
    END IF;
END $$;
COMMENT ON FUNCTION storage._table_refuse(regclass, text, text[]) IS
    'Internal: refuses (0A000, everything listed, with the caller''s own findings) a conversion of a table that carries what cannot be moved.';

-- convert_to_partitioned: a new partitioned table is built beside the old one under EXCLUSIVE
-- lock (readers go on, writers wait), filled in batches of pages, checked (row count and a
-- checksum of every row), given everything the old table carries, then swapped in under a short
-- ACCESS EXCLUSIVE lock (the _table_* steps above). What cannot be carried is refused before
-- anything is done, with the list.
CREATE FUNCTION storage.convert_to_partitioned(target regclass, control_column name, step text,
                                               batch_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    rel pg_class;
    nsp name;
    col_type regtype;
    canon text;
    kind text;
    new_name text;
    new_rel regclass;
    spc name;
    cfg storage.partition_config;
    extreme text;
    start_pos text;
    to_pos text;
    total bigint;
    c record;
    made record;
    def_name text;
BEGIN
    PERFORM storage._require_primary('storage.convert_to_partitioned');
    PERFORM storage._refuse_on_citus(target, 'storage.convert_to_partitioned',
        'Its copy, checksum and swap run on the coordinator''s table, which on a Citus table holds no rows (they are in shards on the workers): nothing would be copied.');
    IF target IS NULL OR control_column IS NULL THEN
        RAISE EXCEPTION 'target and control_column must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'storage.convert_to_partitioned(''article_views'', ''viewed_at'', ''1 month'').';
    END IF;
    SELECT * INTO rel FROM pg_class WHERE oid = target;
    nsp := (SELECT nspname FROM pg_namespace WHERE oid = rel.relnamespace);
    IF rel.relpersistence = 't' THEN
        RAISE EXCEPTION '% is a temporary table', target
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'A temporary table lives only in its own session; the maintenance job cannot see it.',
                    HINT = 'Convert a permanent table.';
    ELSIF rel.relkind = 'p' THEN
        RAISE EXCEPTION '% is already partitioned', target USING ERRCODE = 'wrong_object_type',
              HINT = format('Register it with storage.create_partitions(%L, %L).', target::text, step);
    ELSIF rel.relkind <> 'r' OR rel.relispartition THEN
        RAISE EXCEPTION '% is not a plain table', target USING ERRCODE = 'wrong_object_type',
              DETAIL = CASE WHEN rel.relispartition THEN 'It is a partition.' ELSE format('relkind is %L.', rel.relkind) END,
              HINT = 'storage.convert_to_partitioned converts an ordinary table.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = target OR inhparent = target) THEN
        RAISE EXCEPTION '% takes part in table inheritance', target USING ERRCODE = 'feature_not_supported',
              HINT = 'Remove the INHERITS relationship first (ALTER TABLE ... NO INHERIT).';
    END IF;
    SELECT a.atttypid::regtype INTO col_type FROM pg_attribute a
     WHERE a.attrelid = target AND a.attname = control_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of % does not exist', quote_ident(control_column), target
              USING ERRCODE = 'undefined_column', HINT = 'Name the timestamp or integer column to partition by.';
    END IF;
    kind := storage._partition_kind(col_type);
    IF kind IS NULL THEN
        RAISE EXCEPTION 'column % has type %, which storage partitions do not support', quote_ident(control_column), col_type
              USING ERRCODE = 'datatype_mismatch',
                    HINT = 'Supported key types: timestamptz, timestamp, date, uuid (uuidv7), smallint, integer, bigint.';
    END IF;
    canon := storage._partition_step(step, col_type);
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'batch_rows must be positive, got %', coalesce(batch_rows::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'The default, 10000, suits most tables.';
    END IF;
    -- what a partitioned table cannot carry, all of it in one error
    PERFORM storage._table_refuse(target, 'converted', ARRAY[
        CASE WHEN rel.reloptions IS NOT NULL
             THEN format('storage parameters (%s): a partitioned table has none; set them on its partitions after converting',
                         array_to_string(rel.reloptions, ', ')) END,
        CASE WHEN rel.relpersistence = 'u' THEN 'UNLOGGED: a partitioned table cannot be unlogged' END,
        CASE WHEN rel.reloftype <> 0 THEN format('OF %s: a typed table', rel.reloftype::regtype) END,
        CASE WHEN rel.relam <> (SELECT oid FROM pg_am WHERE amname = 'heap')
             THEN format('table access method %s', (SELECT amname FROM pg_am WHERE oid = rel.relam)) END,
        (SELECT 'exclusion constraints ' || string_agg(quote_ident(conname), ', ' ORDER BY conname)
           FROM pg_constraint WHERE conrelid = target AND contype = 'x')]);

    -- writers wait from here; readers go on until the swap
    EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', target);
    new_name := storage._partition_fit(rel.relname, '_pse_new');
    spc := (SELECT spcname FROM pg_tablespace WHERE oid = rel.reltablespace);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) '
                   'PARTITION BY RANGE (%I)%s',
                   nsp, new_name, target, control_column,
                   CASE WHEN spc IS NOT NULL THEN format(' TABLESPACE %I', spc) ELSE '' END);
    new_rel := format('%I.%I', nsp, new_name)::regclass;
    PERFORM storage._partition_own_like(new_rel, target);
    PERFORM storage._table_prepare(target, new_rel);

    -- children from the lowest value to premake steps past the highest (or now), and a default
    cfg := ROW(new_rel, control_column, col_type, step, 4, NULL, false, true, current_setting('TimeZone'), now(), NULL, NULL, true,
               NULL, NULL, NULL, canon)::storage.partition_config;
    EXECUTE format('SELECT t.%I::text FROM %s AS t WHERE t.%1$I IS NOT NULL ORDER BY t.%1$I LIMIT 1', control_column, target) INTO extreme;
    start_pos := coalesce(storage._partition_pos_of(col_type, cfg.time_zone, extreme),
                          CASE kind WHEN 'time' THEN storage._partition_current(cfg) ELSE '0' END);
    EXECUTE format('SELECT t.%I::text FROM %s AS t WHERE t.%1$I IS NOT NULL ORDER BY t.%1$I DESC LIMIT 1', control_column, target) INTO extreme;
    to_pos := coalesce(storage._partition_pos_of(col_type, cfg.time_zone, extreme), start_pos);
    IF kind = 'time' AND storage._partition_sort_key(kind, storage._partition_current(cfg)) > storage._partition_sort_key(kind, to_pos) THEN
        to_pos := storage._partition_current(cfg);
    END IF;
    to_pos := coalesce(storage._partition_add(canon, storage._partition_floor(canon, to_pos), cfg.premake), to_pos);
    made := storage._partition_fill(cfg, start_pos, to_pos);
    def_name := storage._partition_child_name(nsp, new_name, canon, 'default');
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, def_name, new_rel);
    PERFORM storage._partition_own_like(format('%I.%I', nsp, def_name)::regclass, new_rel);

    total := storage._table_copy(target, new_rel, batch_rows);
    PERFORM storage._table_check(target, new_rel, total, 'conversion');
    PERFORM storage._table_swap(target, new_rel, storage._table_carry(target, new_rel, control_column, 'storage.convert_to_partitioned'));

    -- children were named after the temporary table: name them after the table
    FOR c IN SELECT child, is_default, storage._partition_pos_of(col_type, cfg.time_zone, lower_bound) AS lo
               FROM storage._partition_children(new_rel) LOOP
        EXECUTE format('ALTER TABLE %s RENAME TO %I', c.child,
                       storage._partition_child_name(nsp, rel.relname, canon, CASE WHEN c.is_default THEN 'default' ELSE c.lo END));
    END LOOP;
    INSERT INTO storage.partition_config SELECT cfg.*;
    RETURN total;
END $$;
COMMENT ON FUNCTION storage.convert_to_partitioned(regclass, name, text, integer) IS
    'Turns a plain table into a range-partitioned table of the same name (monthly/daily/... or integer steps), carrying everything it carries exactly (rows, columns, constraints, indexes, triggers, audit capture, grants, comments, sequences, replica identity, publications, views on it; the partition column added to unique keys where PostgreSQL requires it) or refusing with the list of what it cannot carry. Rows are copied in batches of about batch_rows and checked by count and checksum; registered for run_maintenance with premake 4 and a default partition. Returns rows moved.';

-- undo_partitioning: the reverse of convert_to_partitioned, with the same steps and checks.
CREATE FUNCTION storage.undo_partitioning(parent regclass, batch_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cfg storage.partition_config;
    rel pg_class;
    nsp name;
    new_rel regclass;
    spc name;
    leaf regclass;
    total bigint := 0;
BEGIN
    PERFORM storage._require_primary('storage.undo_partitioning');
    PERFORM storage._refuse_on_citus(parent, 'storage.undo_partitioning',
        'Its copy, checksum and swap run on the coordinator''s table, which on a Citus table holds no rows (they are in shards on the workers): nothing would be copied.');
    IF parent IS NULL THEN
        RAISE EXCEPTION 'parent must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'storage.undo_partitioning(''article_views'').';
    END IF;
    cfg := storage._partition_config(parent);
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'batch_rows must be positive, got %', coalesce(batch_rows::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'The default, 10000, suits most tables.';
    END IF;
    SELECT * INTO rel FROM pg_class WHERE oid = parent;
    nsp := (SELECT nspname FROM pg_namespace WHERE oid = rel.relnamespace);
    -- publications of single partitions would have nothing to point at afterwards
    PERFORM storage._table_refuse(parent, 'turned back into a plain table', ARRAY[
        (SELECT 'partitions in publications of their own: ' || string_agg(DISTINCT format('%s in %I', r.prrelid::regclass, p.pubname), ', ')
           FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
          WHERE r.prrelid IN (SELECT relid FROM pg_partition_tree(parent) WHERE relid <> parent))]);

    -- writers wait from here; readers go on until the swap
    EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', parent);
    spc := (SELECT spcname FROM pg_tablespace WHERE oid = rel.reltablespace);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)%s',
                   nsp, storage._partition_fit(rel.relname, '_pse_new'), parent,
                   CASE WHEN spc IS NOT NULL THEN format(' TABLESPACE %I', spc) ELSE '' END);
    new_rel := format('%I.%I', nsp, storage._partition_fit(rel.relname, '_pse_new'))::regclass;
    PERFORM storage._partition_own_like(new_rel, parent);
    PERFORM storage._table_prepare(parent, new_rel);
    FOR leaf IN SELECT relid FROM pg_partition_tree(parent) WHERE isleaf ORDER BY relid LOOP
        total := total + storage._table_copy(leaf, new_rel, batch_rows);
    END LOOP;
    PERFORM storage._table_check(parent, new_rel, total, 'undo_partitioning');
    PERFORM storage._table_swap(parent, new_rel, storage._table_carry(parent, new_rel, NULL, 'storage.undo_partitioning'));
    DELETE FROM storage.partition_config c WHERE c.parent = cfg.parent;
    RETURN total;
END $$;
COMMENT ON FUNCTION storage.undo_partitioning(regclass, integer) IS
    'Turns a registered partitioned table back into a plain table of the same name with every row, column, constraint, index, trigger, audit capture, grant and comment of the table (the same steps and checks as convert_to_partitioned), and unregisters it. Objects defined on single partitions only are not carried. Returns rows moved.';

COMMENT ON FUNCTION storage._partition_step_interval(interval, boolean, text) IS
    'Internal: canonical step (minutes:N, days:N, months:N) of an interval, or 22023.';
COMMENT ON FUNCTION storage._partition_step_int(text) IS
    'Internal: canonical step (int:N) of an integer key''s step, or 22023.';
COMMENT ON FUNCTION storage._partition_floor(text, text) IS
    'Internal: start of the period holding a position.';
COMMENT ON FUNCTION storage._partition_add(text, text, bigint) IS
    'Internal: a period start moved by n steps; NULL past the representable range.';
COMMENT ON FUNCTION storage._partition_name(text, text, text, integer) IS
    'Internal: <parent>_p<lower> within 63 bytes, _<nth> added when nth > 0.';
COMMENT ON FUNCTION storage._partition_plan(text, text[], text[], text, text, bigint, bigint) IS
    'Internal: ranges to create so every period between two positions is covered, cut around existing children.';
COMMENT ON FUNCTION storage._partition_fit(text, text) IS
    'Internal: base || suffix within 63 bytes (cut with a hash of base when too long).';
COMMENT ON FUNCTION storage._partition_extend_key(text, text) IS
    'Internal: a constraint or index definition with a column added to its key list.';
COMMENT ON FUNCTION storage._partition_retarget(text, text) IS
    'Internal: a trigger definition re-pointed at another table (only the relation after ON changes).';

-- A dropped parent leaves the configuration at once (run_maintenance would forget it later).
CREATE FUNCTION storage._partition_on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM storage.partition_config) THEN
        DELETE FROM storage.partition_config c
         USING pg_event_trigger_dropped_objects() AS d
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND c.parent::oid = d.objid;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION storage._partition_on_drop() FROM PUBLIC;
COMMENT ON FUNCTION storage._partition_on_drop() IS
    'Internal: event trigger; a dropped partitioned table leaves storage.partition_config.';
CREATE EVENT TRIGGER pg_storage_ext_partition_drop ON sql_drop
    EXECUTE FUNCTION storage._partition_on_drop();
COMMENT ON FUNCTION storage._partition_step_divides(text, text) IS
    'Internal: whether each period of a step is a whole number of periods of another, starting on one.';
