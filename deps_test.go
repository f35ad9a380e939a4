package guard_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestImportRules enforces the dependency direction of the design: the
// mechanism packages never import each other, the facade, or a backend;
// the facade never imports a backend. A mechanism may import a leaf
// helper under internal/ (one that imports no other package of the
// module, such as internal/emailfold: the one canonical email form that
// auth and sso must agree on), which couples no mechanism to another.
func TestImportRules(t *testing.T) {
	const mod = "github.com/guardhq/guard"
	mechanisms := []string{"auth", "session", "audit", "mfa", "sso", "ipfilter", "rbac"}
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			if strings.Contains(string(out), "cannot find") || strings.Contains(err.Error(), "exit status 1") {
				return nil // package does not exist (yet)
			}
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	leaf := func(pkg string) bool {
		for _, d := range deps(pkg) {
			if d != pkg && strings.HasPrefix(d, mod) {
				return false
			}
		}
		return true
	}
	for _, m := range mechanisms {
		pkg := mod + "/" + m
		for _, d := range deps(pkg) {
			if d == pkg || !strings.HasPrefix(d, mod) {
				continue
			}
			if strings.HasPrefix(d, mod+"/internal/") && leaf(d) {
				continue
			}
			t.Errorf("%s imports %s: the mechanism packages import only the standard library and their own dependency", m, d)
		}
	}
	for _, d := range deps(mod) {
		if strings.HasPrefix(d, mod+"/store/") || strings.HasPrefix(d, mod+"/examples/") {
			t.Errorf("the facade imports %s", d)
		}
	}
}

// SAML-51: the module graph holds the dependency floors the SAML code
// relies on: goxmldsig v1.6.1 or later (GO-2026-4753, a signature
// validated against one element and content read from another, and
// GHSA-qhrp-hfff-vphr, canonicalisation without node limits) and
// crewjam/saml v0.4.14 or later (its advisories; since v0.6 it checks
// every document's XML round trip itself, internal/xmlroundtrip, in place
// of mattermost/xml-roundtrip-validator). The versions are the ones the
// module graph selects (go list -m), replacements included. SAML-51's
// other half, govulncheck, runs in .ci/run (internal/cmd/vulngate).
func TestDependencyFloors(t *testing.T) {
	floors := map[string]string{
		"github.com/russellhaering/goxmldsig": "v1.6.1",
		"github.com/crewjam/saml":             "v0.6.0",
	}
	args := []string{"list", "-m", "-f", "{{.Path}} {{.Version}}{{with .Replace}} {{.Version}}{{end}}"}
	for path := range floors {
		args = append(args, path)
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("go list -m printed %q", line)
		}
		path, version := f[0], f[len(f)-1] // a replacement's version comes last
		seen[path] = true
		if !versionAtLeast(version, floors[path]) {
			t.Errorf("the module graph selects %s %s; want %s or later", path, version, floors[path])
		}
	}
	for path := range floors {
		if !seen[path] {
			t.Errorf("go list -m did not list %s", path)
		}
	}
}

// versionAtLeast compares two semantic versions vMAJOR.MINOR.PATCH
// (anything after the patch number, a pre-release, counts as below it).
func versionAtLeast(v, floor string) bool {
	parse := func(s string) (n [3]int, pre bool) {
		s = strings.TrimPrefix(s, "v")
		if i := strings.IndexAny(s, "-+"); i >= 0 {
			pre, s = s[i] == '-', s[:i]
		}
		for i, part := range strings.SplitN(s, ".", 3) {
			n[i], _ = strconv.Atoi(part)
		}
		return n, pre
	}
	a, apre := parse(v)
	b, _ := parse(floor)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return !apre
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		v, floor string
		want     bool
	}{
		{"v1.6.1", "v1.6.1", true}, {"v1.6.0", "v1.6.1", false}, {"v1.10.0", "v1.6.1", true},
		{"v2.0.0", "v1.6.1", true}, {"v1.6.1-rc.1", "v1.6.1", false}, {"v0.4.14", "v0.6.0", false},
		{"v1.6.2-0.20260101000000-abcdef123456", "v1.6.1", true},
	} {
		if got := versionAtLeast(c.v, c.floor); got != c.want {
			t.Errorf("versionAtLeast(%q, %q) = %v, want %v", c.v, c.floor, got, c.want)
		}
	}
}
