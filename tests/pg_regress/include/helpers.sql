-- Shared helpers of the pg_regress files, pulled in with \ir ../include/helpers.sql.
-- pg_temp.outcome(q): runs q and returns 'ok', or the error's SQLSTATE and message (no backtrace,
-- no internal error may ever show here: the files assert on these strings).
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
