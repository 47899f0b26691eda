-- Migrations benchmark (bench/migrations.sh does the timing with concurrent sessions): the table
-- a schema change waits for while a long transaction reads it.
CREATE TABLE bench.mg (id int PRIMARY KEY, v text);
INSERT INTO bench.mg SELECT g, 'v' FROM generate_series(1, 10000) g;
ANALYZE bench.mg;
