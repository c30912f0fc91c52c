package sso

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true,
		"127.0.0.1": false, "10.0.0.5": false, "172.16.1.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.1.1": false, "0.1.2.3": false, "198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false,
		"::1": false, "fe80::1": false, "fd00::1": false, "::ffff:10.0.0.5": false, "::ffff:93.184.216.34": true,
		"64:ff9b::a00:5": false, "64:ff9b::5db8:d822": true, "2002:a00:5::1": false, "::a00:5": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}
