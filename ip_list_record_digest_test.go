package guard_test

import (
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// ip.allowlist_changed records the list clipped to 1000 bytes, with a count
// of entries: two lists of as many entries that differ only past the clip
// must still be told apart on the record (list_sha256, as listMeta gives
// it), and the list clipped at a whole entry.
func TestIPListChangedRecordsListDigest(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "ada@example.test", rbac.Owner)
	set := func(last string) map[string]string {
		t.Helper()
		lists, err := f.g.IPAllowLists(f.ctx, owner, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		var entries []string
		for i := range 99 {
			entries = append(entries, fmt.Sprintf("2001:db8:0:%x::/64", i))
		}
		entries = append(entries, last)
		if _, err := f.g.SetIPAllowList(f.ctx, owner, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys,
			Entries: entries, Version: lists.Version}); err != nil {
			t.Fatal(err)
		}
		evs := f.events(t, audit.IPListChanged)
		return evs[len(evs)-1].Meta
	}
	first, second := set("2001:db8:ffff:1::/64"), set("2001:db8:ffff:2::/64")
	for _, m := range []map[string]string{first, second} {
		if m["entries"] != "100" || len(m["list"]) > 1000 {
			t.Errorf("ip.allowlist_changed entries %q, list of %d bytes", m["entries"], len(m["list"]))
		}
		if l := m["list"]; l != "" && l[len(l)-3:] != "/64" {
			t.Errorf("list not clipped at a whole entry: …%s", l[max(0, len(l)-12):])
		}
	}
	d1, d2 := first["list_sha256"], second["list_sha256"]
	if len(d1) != 64 || len(d2) != 64 || d1 == d2 {
		t.Errorf("list_sha256 = %q then %q: two lists differing past the clip are recorded alike", d1, d2)
	}
}
