# The two commands: `make demo` (the main job) and `make test` (what CI runs).
SHELL := /bin/bash
.PHONY: setup install demo test bench psql pg-config package package-test

setup:
	@scripts/setup.sh

install: setup
	@scripts/install.sh

demo: setup
	@scripts/demo.sh

test:
	@scripts/test.sh

bench: setup
	@scripts/bench.sh

# target/package/: the .deb and the tarball for Debian's PostgreSQL 18 (docs/install.md)
package: setup
	@scripts/package.sh

# the package installed and used on Debian's own postgresql-18 in a Debian unstable chroot
package-test: package
	@scripts/package-test.sh

psql:
	@scripts/cluster.sh psql demo 28818

pg-config:
	@bash -c '. scripts/lib.sh; find_pg_config'
