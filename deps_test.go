package guard_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces the dependency direction of DESIGN.md: the
// mechanism packages never import each other, the facade, or a backend;
// the facade never imports a backend.
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
	for _, m := range mechanisms {
		pkg := mod + "/" + m
		for _, d := range deps(pkg) {
			if d == pkg || !strings.HasPrefix(d, mod) {
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
