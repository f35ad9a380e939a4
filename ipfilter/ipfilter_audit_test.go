package ipfilter_test

// Audit of IP allow-lists (branch audit-keysip): each test fails on the
// code as audited, because of the defect it is named after.

import (
	"net/netip"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// ParsePrefix refuses 0.0.0.0/0 and ::/0 because "an allow-list that
// matches everything is almost always a typing mistake", and the
// checklist (IP-9) asks that an entry never silently match nothing. The
// unspecified addresses 0.0.0.0 and :: (the usual way of writing "any" in
// a bind address) are accepted without error or warning as single
// addresses, yet no client can ever have them: the Resolver refuses them
// as peer and as forwarded value. A list of API keys set to "0.0.0.0"
// shuts out every key (the API-key scope has no self-lockout check).
func TestAuditParsePrefix_UnspecifiedAddressMatchesNoClient(t *testing.T) {
	rs, err := ipfilter.NewResolver(ipfilter.ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range []string{"0.0.0.0", "::", "0.0.0.0/32", "::/128"} {
		p, adj, err := ipfilter.ParsePrefix(entry, ipfilter.ParseOptions{})
		if err != nil {
			continue // refused: what is expected
		}
		if _, rerr := rs.Resolve(netip.AddrPortFrom(p.Addr(), 443).String(), nil); rerr == nil {
			t.Fatalf("the resolver accepts %v as a client: the test premise is wrong", p.Addr())
		}
		t.Errorf("ParsePrefix(%q) = %v, adjustment %q, no error: an entry no client can match, accepted silently", entry, p, adj)
	}
}
