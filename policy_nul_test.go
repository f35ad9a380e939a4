package guard_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/guardhq/guard"
)

// Validate refuses a NUL byte in every string field of a Policy, which is
// stored whole (PostgreSQL's jsonb refuses "\u0000": a store failure,
// ErrUnavailable, where bad input is a *PolicyError). Each string field
// is given a value that is valid but for a NUL byte at its end.
func TestValidateRefusesNULInStrings(t *testing.T) {
	valid := map[string]string{"OnSessionLimit": guard.EndOldestSession, "BreakGlassUser": "ann"}
	typ := reflect.TypeFor[guard.Policy]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		v, ok := valid[f.Name]
		if !ok {
			t.Errorf("Policy.%s: a string field this test has no valid value for", f.Name)
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			var p guard.Policy
			reflect.ValueOf(&p).Elem().Field(i).SetString(v)
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate with %s %q = %v, want nil", f.Name, v, err)
			}
			reflect.ValueOf(&p).Elem().Field(i).SetString(v + "\x00")
			var pe *guard.PolicyError
			if err := p.Validate(); !errors.As(err, &pe) || pe.Field != f.Name {
				t.Errorf("Validate with %s %q = %v, want a *PolicyError on %s", f.Name, v+"\x00", err, f.Name)
			}
		})
	}
}
