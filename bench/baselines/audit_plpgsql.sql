-- Baseline of bench/audit.sql: a per-row PL/pgSQL audit trigger written as the PostgreSQL
-- documentation's example (PL/pgSQL chapter, "A PL/pgSQL Trigger Function for Auditing"): one
-- INSERT per changed row, the row image as jsonb.
CREATE TABLE bench.audit_plpgsql_log (
    operation char(1) NOT NULL,
    stamp timestamptz NOT NULL,
    userid name NOT NULL,
    row_data jsonb
);

CREATE FUNCTION bench.audit_plpgsql() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE') THEN
        INSERT INTO bench.audit_plpgsql_log SELECT 'D', now(), current_user, to_jsonb(OLD);
    ELSIF (TG_OP = 'UPDATE') THEN
        INSERT INTO bench.audit_plpgsql_log SELECT 'U', now(), current_user, to_jsonb(NEW);
    ELSIF (TG_OP = 'INSERT') THEN
        INSERT INTO bench.audit_plpgsql_log SELECT 'I', now(), current_user, to_jsonb(NEW);
    END IF;
    RETURN NULL;
END $$;
