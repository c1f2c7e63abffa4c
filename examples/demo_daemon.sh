#!/bin/sh
# The demo through the model daemon: one long-lived kernel, several setkey
# processes, and a "setkey -x" monitor that sees what the others do.
#
#   sh examples/demo_daemon.sh
#
# Uses .venv/bin/python when present (else $PYTHON or python3).
set -eu
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
	if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
SOCK=$(mktemp -u "${TMPDIR:-/tmp}/pfkeyd-demo.XXXXXX")
MONLOG=$(mktemp "${TMPDIR:-/tmp}/setkey-x.XXXXXX")

"$PYTHON" tools/pfkeyd.py --socket "$SOCK" &
DAEMON=$!
MONITOR=
cleanup() {
	[ -n "$MONITOR" ] && kill "$MONITOR" 2>/dev/null || true
	kill "$DAEMON" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$MONLOG"
}
trap cleanup EXIT INT TERM

i=0
while [ ! -S "$SOCK" ]; do
	i=$((i + 1)); [ "$i" -gt 100 ] && { echo "pfkeyd did not start" >&2; exit 1; }
	sleep 0.1
done

export PFKEY_SOCKET="$SOCK"
"$PYTHON" tools/setkey.py -x > "$MONLOG" &
MONITOR=$!
sleep 0.5

echo "== setkey -c (one process adds an SA and a policy)"
"$PYTHON" tools/setkey.py -c <<'SCRIPT'
add 10.0.0.1 10.0.0.2 esp 0x1001 -m transport -u 1
	-E aes-gcm-16 0x0102030405060708090a0b0c0d0e0f1011121314 ;
spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//unique:1 ;
add 10.0.0.1 10.0.0.2 esp 0x1001 -E aes-gcm-16 0x0102030405060708090a0b0c0d0e0f1011121314 ;
SCRIPT
echo "== setkey -D (another process, same kernel)"
"$PYTHON" tools/setkey.py -D
echo "== setkey -DP"
"$PYTHON" tools/setkey.py -DP
sleep 0.3
echo "== what setkey -x saw: one line per message (type, errno)"
grep '^sadb_msg{' "$MONLOG" | sed 's/^sadb_msg{ version=2 //; s/ satype=.*//' 
