#!/bin/sh
# Creates Temporal's two databases on the shared PostgreSQL and applies their schemas
# (idempotent: an existing database and an up-to-date schema are left alone).
set -eu
tool="temporal-sql-tool --plugin postgres12 --ep postgres -u temporal -p 5432"
for db in temporal temporal_visibility; do
  $tool --db "$db" create || true
done
$tool --db temporal setup-schema -v 0.0 || true
$tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
$tool --db temporal_visibility setup-schema -v 0.0 || true
$tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
