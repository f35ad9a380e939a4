package ipfilter_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/store/memstore"
)

func ExampleParseList() {
	set, warnings, err := ipfilter.ParseList([]string{
		"203.0.113.77/24",
		"::ffff:192.0.2.0/120",
		" 2001:db8::/32 ",
		"198.51.100.7/32",
	}, ipfilter.ParseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Entries())
	for _, w := range warnings {
		fmt.Println(w)
	}
	_, _, err = ipfilter.ParseList([]string{"10.0.0.0/8", "010.1.2.3"}, ipfilter.ParseOptions{})
	fmt.Println(err)
	_, _, err = ipfilter.ParseList([]string{"0.0.0.0/0"}, ipfilter.ParseOptions{})
	fmt.Println(errors.Is(err, ipfilter.ErrMatchesAll))
	// Output:
	// [203.0.113.0/24 192.0.2.0/24 2001:db8::/32 198.51.100.7]
	// entry 1 "203.0.113.77/24" read as 203.0.113.0/24: host bits cleared
	// entry 2 "::ffff:192.0.2.0/120" read as 192.0.2.0/24: IPv4-mapped form rewritten as IPv4
	// ipfilter: entry 2 "010.1.2.3": not an IP address or CIDR prefix (leading zero)
	// true
}

func ExampleResolver() {
	r, err := ipfilter.NewResolver(ipfilter.ResolverConfig{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/32")},
	})
	if err != nil {
		panic(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.9, 203.0.113.5")

	req.RemoteAddr = "198.51.100.10:41000" // through the proxy
	fmt.Println(r.ClientIP(req))

	req.RemoteAddr = "192.0.2.200:41000" // straight in: the header is ignored
	fmt.Println(r.ClientIP(req))

	req.RemoteAddr = "198.51.100.10:41000"
	req.Header.Set("X-Forwarded-For", "203.0.113.5, unknown")
	_, err = r.ClientIP(req)
	fmt.Println(errors.Is(err, ipfilter.ErrUnidentified))
	// Output:
	// 203.0.113.5 <nil>
	// 192.0.2.200 <nil>
	// true
}

func ExampleFilter() {
	ctx := context.Background()
	f, err := ipfilter.New(ipfilter.Config{Store: memstore.NewIPLists()})
	if err != nil {
		panic(err)
	}
	admin := netip.MustParseAddr("192.0.2.50")

	// An administrator at 192.0.2.50 tries a list that excludes them.
	_, err = f.Replace(ctx, ipfilter.Change{
		Tenant: "acme", Scope: ipfilter.Users,
		Entries: []string{"203.0.113.0/24"}, AdminIP: admin,
	})
	fmt.Println(err)

	// Report-only first: nobody is blocked, would-be denials are reported.
	lists, _ := f.Lists(ctx, "acme")
	applied, _ := f.Replace(ctx, ipfilter.Change{
		Tenant: "acme", Scope: ipfilter.Users, Version: lists.Version,
		Entries: []string{"203.0.113.0/24", "192.0.2.50"}, AdminIP: admin, ReportOnly: true,
	})
	d, _ := f.Check(ctx, "acme", ipfilter.Users, netip.MustParseAddr("198.51.100.1"))
	fmt.Println(applied.Version, d, d.Allows())

	// Enforced: in force on the next request.
	f.Replace(ctx, ipfilter.Change{
		Tenant: "acme", Scope: ipfilter.Users, Version: applied.Version,
		Entries: []string{"203.0.113.0/24", "192.0.2.50"}, AdminIP: admin,
	})
	for _, ip := range []string{"203.0.113.5", "198.51.100.1"} {
		d, _ := f.Check(ctx, "acme", ipfilter.Users, netip.MustParseAddr(ip))
		fmt.Println(ip, d)
	}
	// The API-key scope is separate and still unrestricted.
	d, _ = f.Check(ctx, "acme", ipfilter.APIKeys, netip.MustParseAddr("198.51.100.1"))
	fmt.Println("api key", d)
	// Output:
	// ipfilter: the new list would lock out the administrator making the change
	// 1 would_deny true
	// 203.0.113.5 allowed
	// 198.51.100.1 denied
	// api key unrestricted
}
