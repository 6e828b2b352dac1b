# The orchestrator binary: one image for the api, worker and migrate services.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags nodev leaves `orchestrator dev` out (the embedded Temporal server, its Web UI, the
# in-process S3 store): a third of the size, and a worker's resident memory is its own.
# backup/backup_bench_test.go builds the worker it measures with the same command.
RUN CGO_ENABLED=0 go build -tags nodev -trimpath -ldflags="-s -w" -o /out/orchestrator ./cmd/orchestrator

FROM debian:bookworm-slim
# pg_dump and pg_restore of the server's major version (PostgreSQL 15) for backups and drills;
# zstd, which compresses the backups' dumps in a process of its own (backup.defaultCompression);
# pgBackRest for the pitr worker (physical backups), which runs as postgres's user 999 and
# writes the repository's configuration into /var/lib/orchestrator/pgbackrest.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 pgbackrest zstd ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 999 -g 999 -m 0700 /var/lib/orchestrator/pgbackrest
COPY --from=build /out/orchestrator /orchestrator
USER 65532:65532
ENTRYPOINT ["/orchestrator"]
