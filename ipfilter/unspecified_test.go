package ipfilter_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// An unspecified address as an entry matches no client: it is refused
// with ErrUnspecified, AllowAll or not, in every spelling; a prefix that
// merely starts there is a range like any other.
func TestParsePrefixUnspecified(t *testing.T) {
	for _, in := range []string{"0.0.0.0", "0.0.0.0/32", " 0.0.0.0\t", "::", "::/128", "0:0:0:0:0:0:0:0", "::ffff:0.0.0.0", "::ffff:0.0.0.0/128"} {
		for _, allowAll := range []bool{false, true} {
			_, _, err := ipfilter.ParsePrefix(in, ipfilter.ParseOptions{AllowAll: allowAll})
			var pe *ipfilter.ParseError
			if !errors.Is(err, ipfilter.ErrUnspecified) || !errors.As(err, &pe) {
				t.Errorf("ParsePrefix(%q, AllowAll %v): %v, want a *ParseError wrapping ErrUnspecified", in, allowAll, err)
			}
		}
	}
	for _, in := range []string{"0.0.0.0/8", "0.0.0.0/31", "0.0.0.1", "::/127", "::1"} {
		if _, _, err := ipfilter.ParsePrefix(in, ipfilter.ParseOptions{}); err != nil {
			t.Errorf("ParsePrefix(%q): %v, want it accepted", in, err)
		}
	}
	_, _, err := ipfilter.ParseList([]string{"10.0.0.0/8", "0.0.0.0"}, ipfilter.ParseOptions{})
	var pe *ipfilter.ParseError
	if !errors.As(err, &pe) || pe.Index != 1 || !errors.Is(err, ipfilter.ErrUnspecified) {
		t.Errorf("ParseList with 0.0.0.0 second: %v, want a *ParseError for entry 2 wrapping ErrUnspecified", err)
	}
}

// The refusals of entries that match everything or nothing tell the
// administrator what to do instead, in terms that hold for a user of the
// facade, which has no AllowAll: leave the list empty.
func TestParsePrefixAllOrNothingMessages(t *testing.T) {
	for _, in := range []string{"0.0.0.0/0", "::/0", "0.0.0.0", "::"} {
		_, _, err := ipfilter.ParsePrefix(in, ipfilter.ParseOptions{})
		if err == nil {
			t.Fatalf("ParsePrefix(%q) accepted", in)
		}
		msg := err.Error()
		if strings.Contains(msg, "AllowAll") || !strings.Contains(msg, "leave the list empty") {
			t.Errorf("ParsePrefix(%q): %q, want it to say to leave the list empty, not to set AllowAll", in, msg)
		}
	}
	if msg := ipfilter.ErrUnspecified.Error(); !strings.Contains(msg, "matches no client") {
		t.Errorf("ErrUnspecified = %q, want it to say that it matches no client", msg)
	}
}

// A list stored before unspecified addresses were refused still compiles
// (such an entry matches nothing; the other entries keep working):
// refusing it there would make the tenant's lists corrupt and deny every
// request. A trusted proxy written 0.0.0.0/32 is still accepted, as it
// always was (the Resolver refuses that peer anyway).
func TestUnspecifiedStoredAndTrustedProxy(t *testing.T) {
	pol, err := ipfilter.Compile(ipfilter.Lists{Version: 3, APIKeys: ipfilter.Rules{Entries: []string{"203.0.113.0/24", "0.0.0.0", "::"}}})
	if err != nil {
		t.Fatalf("Compile of a stored list with 0.0.0.0 and ::: %v", err)
	}
	if d := pol.Check(ipfilter.APIKeys, netip.MustParseAddr("203.0.113.5")); d != ipfilter.Allowed {
		t.Errorf("203.0.113.5 against the stored list: %v, want Allowed", d)
	}
	if d := pol.Check(ipfilter.APIKeys, netip.MustParseAddr("198.51.100.7")); d != ipfilter.Denied {
		t.Errorf("198.51.100.7 against the stored list: %v, want Denied", d)
	}
	if _, err := ipfilter.NewResolver(ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}}); err != nil {
		t.Errorf("NewResolver with trusted proxy 0.0.0.0/32: %v, want it accepted as before", err)
	}
}
