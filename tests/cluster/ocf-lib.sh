# tests/cluster/ocf-lib.sh — the OCF agent's monitor run by hand (sourced
# after lib.sh): ocf_score ID prints the promotion score it sets for fw$ID.
# crm_attribute and crm_master stand-ins record it (the agent sets one only
# under a clone, hence clone_max).
mkdir -p "$T/fakebin"
for f in crm_attribute crm_master; do
	printf '#!/bin/sh\necho "$*" >> %s/score.log\n' "$T" > "$T/fakebin/$f"
	chmod 755 "$T/fakebin/$f"
done
ocf_score() {         # ocf_score ID -> 100, 10, 1, -INFINITY...
	local id=$1
	echo "${DAEMON_PID[$((id - 1))]}" > "$T/ocf-fw$id.pid"
	: > "$T/score.log"
	ip netns exec "$P-fw$id" env PATH="$T/fakebin:$PATH" HA_SBIN_DIR="$T/fakebin" \
		OCF_ROOT=/usr/lib/ocf __OCF_ACTION=monitor OCF_RESKEY_CRM_meta_clone_max=${NFW:-2} \
		OCF_RESKEY_crm_feature_set=3.16.2 OCF_RESKEY_config="$T/fw$id.conf" \
		OCF_RESKEY_socket="$T/fw$id.sock" OCF_RESKEY_pidfile="$T/ocf-fw$id.pid" \
		OCF_RESKEY_binary="$B/ctsyncd" OCF_RESKEY_ctl="$B/ctsyncctl" \
		"$TOP/scripts/ocf/ctsyncd" monitor >/dev/null 2>&1
	sed -n 's/.*-v \(-\{0,1\}[0-9A-Z]*\).*/\1/p' "$T/score.log" | tail -1
}
