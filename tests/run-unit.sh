#!/usr/bin/env bash
# `make unit`: the cmocka unit tests only.
CLUSTER=0 exec bash "$(dirname "$0")/run-all.sh" "$@"
