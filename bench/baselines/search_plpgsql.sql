-- Baseline for bench/search.sql: the weighted tsvector trigger as users write it in PL/pgSQL
-- (PostgreSQL docs 12.4.3), recomputing on every INSERT and UPDATE.
CREATE OR REPLACE FUNCTION bench.articles_tsv_plpgsql() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.searchable :=
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.title, '')), 'A') ||
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.summary, '')), 'B') ||
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.content, '')), 'C');
    RETURN NEW;
END $$;
