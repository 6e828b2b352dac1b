#!/bin/sh
# Registers the default namespace (30 days of history), unless it exists.
set -eu
temporal operator namespace describe -n default >/dev/null 2>&1 ||
  temporal operator namespace create -n default --retention 720h
