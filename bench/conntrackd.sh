# bench/conntrackd.sh — conntrackd's configuration for the benchmarks that
# run it beside ctsyncd (sourced; needs T): FTFW over UDP on the veth sync
# link between fw1 and fw2, tuned as its manual recommends.
conntrackd_conf() {   # conntrackd_conf ID EXTERNAL_CACHE(on|off)
	local id=$1 other=$((3 - $1)) disable=On
	[ "$2" = on ] && disable=Off
	cat > "$T/conntrackd-$id.conf" <<EOF
Sync {
	Mode FTFW {
		DisableExternalCache $disable
	}
	UDP {
		IPv4_address 198.18.0.$id
		IPv4_Destination_Address 198.18.0.$other
		Port 3781
		Interface sync0
		SndSocketBuffer 33554432
		RcvSocketBuffer 33554432
		Checksum on
	}
}
General {
	HashSize 1048576
	HashLimit 8388608
	LogFile $T/conntrackd-$id.log
	Syslog off
	LockFile $T/conntrackd-$id.lock
	UNIX {
		Path $T/conntrackd-$id.ctl
	}
	Nice -20
	NetlinkBufferSize 67108864
	NetlinkBufferSizeMaxGrowth 134217728
	NetlinkOverrunResync On
	Filter From Userspace {
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address 198.18.0.1
			IPv4_address 198.18.0.2
		}
	}
}
EOF
}
