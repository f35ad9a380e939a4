package sqlitestore_test

import (
	"reflect"
	"testing"

	guard "github.com/guardhq/guard"
)

// nilFields returns the path of every nil interface, pointer, func, map or
// slice field in v, looking into nested structs (mfa.Stores, sso.Stores).
func nilFields(v reflect.Value, path string) []string {
	var out []string
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			out = append(out, nilFields(f, name)...)
		case reflect.Interface, reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice:
			if f.IsNil() {
				out = append(out, name)
			}
		}
	}
	return out
}

// Stores fills every store the facade consumes, so a host that opens one
// SQLite file gets every feature; and every store of a Store is set.
func TestStoresHasNoNilField(t *testing.T) {
	st := openStore(t)
	stores := st.Stores()
	if n := reflect.TypeOf(stores).NumField(); n < 12 {
		t.Fatalf("guard.Stores has %d fields: the walk is not looking at it", n)
	}
	for _, name := range nilFields(reflect.ValueOf(stores), "Stores()") {
		t.Errorf("%s is nil", name)
	}
	for _, name := range nilFields(reflect.ValueOf(st).Elem(), "Store") {
		t.Errorf("%s is nil", name)
	}
	// The nested role structs are walked too.
	var empty guard.Stores
	empty.Users = st.Users
	got := nilFields(reflect.ValueOf(empty), "Stores")
	for _, want := range []string{"Stores.MFA.Factors", "Stores.MFA.Transactions", "Stores.SSO.Replay", "Stores.Policies"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("nilFields of a zero guard.Stores misses %s: %v", want, got)
		}
	}
}
