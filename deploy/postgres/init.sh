#!/bin/sh
# Runs once, when the postgres container initialises its volume (as the superuser postgres):
# the application's empty database and Temporal's role. The
# orchestrator's own identities (owner, runtime, treasury login, backup) are made by the
# `db-bootstrap` service, `orchestrator db bootstrap`, which is idempotent and is what
# upgrades use too (README "Production").
#
#   orchestrator      the application's database (its owner becomes orchestrator_owner)
#   temporal          LOGIN CREATEDB: Temporal's server creates and migrates its databases
#
# Passwords come from the environment (compose requires them) and reach psql as variables,
# quoted by psql itself.
set -eu
: "${TEMPORAL_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v temporal_pw="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE DATABASE orchestrator;
REVOKE ALL ON DATABASE orchestrator FROM PUBLIC;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_pw';
SQL
