#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package: `dpkg-buildpackage -us -uc -b` builds it from a copy of
# the source tree, `lintian` finds no error and no warning in it, it holds
# the files an installed system needs where Debian expects them, its
# maintainer scripts create the service user and enable (not start) the
# unit, and the daemon unpacked into a scratch root checks its installed
# configuration, creates a database with --init, starts once and answers.
. "$(dirname "$0")/../integration/lib.sh"

for tool in dpkg-buildpackage lintian dh; do
	command -v "$tool" >/dev/null ||
		{ echo "SKIP: $tool is not installed (apt-get install dpkg-dev lintian debhelper)"; exit 77; }
done

version=$(sed -n '1s/^gpuledger (\([^)]*\)).*/\1/p' "$SOURCE_ROOT/debian/changelog")
src=$T/src/gpuledger-$version
mkdir -p "$src"
if git -C "$SOURCE_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$SOURCE_ROOT" ls-files -co --exclude-standard -z |
		(cd "$SOURCE_ROOT" && tar --null -cf - -T -) | tar -xf - -C "$src"
else
	(cd "$SOURCE_ROOT" && tar --exclude='./build*' --exclude=./var -cf - .) | tar -xf - -C "$src"
fi
(cd "$src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 ||
	{ tail -n 40 "$T/build.log"; fail "dpkg-buildpackage failed"; }
deb=$T/src/gpuledger_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || fail "no $deb"
ok "dpkg-buildpackage built $(basename "$deb")"

expect_exit 0 lintian --fail-on error,warning "$T/src/gpuledger_${version}_$(dpkg --print-architecture).changes"
printf '%s\n' "$OUT" | grep -E '^[EW]: ' && fail "lintian: $OUT"
ok "lintian: no error, no warning"

files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/sbin/gpuledgerd ./usr/bin/gpuledger ./lib/systemd/system/gpuledgerd.service \
	./lib/systemd/system/gpuledgerd.socket \
	./usr/lib/sysusers.d/gpuledger.conf ./etc/logrotate.d/gpuledger ./etc/gpuledger/config.yaml \
	./usr/share/man/man8/gpuledgerd.8.gz ./usr/share/man/man1/gpuledger.1.gz \
	./usr/share/man/man5/gpuledger.yaml.5.gz ./usr/share/bash-completion/completions/gpuledger \
	./usr/share/doc/gpuledger/examples/example.yaml; do
	grep -qx -- "$f" <<<"$files" || fail "the package lacks $f"
done
ok "the package holds the daemon, the CLI, the unit, sysusers, logrotate, config, man pages, completion"

dpkg-deb -e "$deb" "$T/control"
grep -q 'systemd-sysusers' "$T/control/postinst" || fail "postinst does not create the user"
grep -q "deb-systemd-helper enable 'gpuledgerd.service'" "$T/control/postinst" ||
	fail "postinst does not enable the unit"
grep -q 'deb-systemd-invoke start' "$T/control/postinst" && fail "postinst starts the unit before --init"
grep -qx '/etc/gpuledger/config.yaml' "$T/control/conffiles" || fail "the config is not a conffile"
ok "postinst creates the user and enables (not starts) the unit; the config is a conffile"

# the cluster bridge: its binary, man page and units, the timer not enabled
for f in ./usr/bin/gpuledger-slurm ./usr/share/man/man8/gpuledger-slurm.8.gz \
	./lib/systemd/system/gpuledger-slurm.service ./lib/systemd/system/gpuledger-slurm.timer; do
	grep -qx -- "$f" <<<"$files" || fail "the package lacks $f"
done
# dh_installsystemd --no-enable: enabled again on upgrade only if it was
grep -q "deb-systemd-helper debian-installed 'gpuledger-slurm.timer'" "$T/control/postinst" ||
	fail "postinst enables the bridge's timer before its cluster is configured"
ok "the package holds gpuledger-slurm, its man page and units; the timer is left disabled"

# Into a scratch root, and start it once.
root=$T/root
dpkg-deb -x "$deb" "$root"
GPULEDGERD=$root/usr/sbin/gpuledgerd
GPULEDGER=$root/usr/bin/gpuledger
expect_exit 0 "$GPULEDGERD" --check-config "$root/etc/gpuledger/config.yaml"
grep -q '^  database: /var/lib/gpuledger/gpuledger.db' "$root/etc/gpuledger/config.yaml" ||
	fail "the installed config does not keep its database in /var/lib/gpuledger"
start_daemon "$root/etc/gpuledger/config.yaml"
expect_exit 0 gl --json program
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason "package test"
stop_daemon
ok "the unpacked daemon started on the installed config and served"
pass
