#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGTERM and SIGINT stop the daemon cleanly: exit 0, socket removed, the
# database intact, migrated and private (mode 600) whatever the umask.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

umask 022
start_daemon
expect_exit 0 gl status
stop_daemon TERM
[[ ! -e $SOCK ]] || fail "socket $SOCK still exists after SIGTERM"
ok "socket removed"

[[ -f $DB ]] || fail "no database at $DB"
expect_exit 0 sqlite3 "$DB" 'PRAGMA integrity_check'
expect_eq "$OUT" ok "integrity_check"
expect_exit 0 sqlite3 "$DB" 'PRAGMA user_version'
[[ $OUT =~ ^[0-9]+$ && $OUT -ge 1 ]] || fail "user_version '$OUT' is not >= 1"
ok "user_version $OUT >= 1"
expect_eq "$(stat -c %a "$DB")" 600 "database mode"

# It starts again on the same database, and SIGINT stops it the same way.
start_daemon
expect_exit 0 gl --json status
# the first start's config entry, and no second one for the same config
expect_eq "$(json_get '["journal"]["seq"]')" 1 "journal.seq after restart"
stop_daemon INT
[[ ! -e $SOCK ]] || fail "socket $SOCK still exists after SIGINT"
ok "socket removed"
expect_exit 0 sqlite3 "$DB" 'PRAGMA integrity_check'
expect_eq "$OUT" ok "integrity_check after restart"

pass
