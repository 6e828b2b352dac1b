#!/bin/sh
# Runs once, when the postgres container initialises its volume: the application's database
# and role, the treasury's own login role, and Temporal's role.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE orchestrator LOGIN CREATEDB PASSWORD '${APP_DB_PASSWORD}';
CREATE DATABASE orchestrator OWNER orchestrator;
CREATE ROLE orchestrator_treasury_login LOGIN PASSWORD '${TREASURY_DB_PASSWORD:-treasury}';
CREATE ROLE temporal LOGIN CREATEDB PASSWORD '${TEMPORAL_DB_PASSWORD}';
SQL
