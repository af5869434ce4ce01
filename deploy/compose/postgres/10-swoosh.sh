#!/bin/sh
# The decision-record store's database and role, beside Temporal's (created by temporalio/auto-setup).
set -eu
password=$(cat /run/secrets/swoosh_db_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE swoosh LOGIN PASSWORD '$password';
CREATE DATABASE swoosh OWNER swoosh;
SQL
