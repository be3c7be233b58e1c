#!/bin/bash
# accept_all.sh: a broken gatekeeperd for mutation.sh. Rewrites the config
# given with -c so that every site is "state: online" (a copy next to it)
# and runs the real daemon, $GATEKEEPERD_REAL, on the copy. A suite that
# still passes with this daemon proves nothing.
set -u
args=()
while (($#)); do
	if [[ $1 == -c || $1 == --config ]] && (($# > 1)); then
		copy="${2%.yaml}.accept-all.yaml"
		sed -E 's/^([[:space:]]*)state:.*/\1state: online/' "$2" >"$copy" || exit 1
		args+=("$1" "$copy")
		shift 2
	else
		args+=("$1")
		shift
	fi
done
exec "${GATEKEEPERD_REAL:?GATEKEEPERD_REAL names the real daemon}" "${args[@]}"
