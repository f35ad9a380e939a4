package guard

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPolicyChangesListsEveryField changes every Policy field and checks
// that policyChanges names each one (by its JSON name) in the record of
// the change, but MFARequiredSince, which SetPolicy derives from
// RequireMFA: a field added to Policy and not to policyChanges fails here.
func TestPolicyChangesListsEveryField(t *testing.T) {
	var old, cur Policy
	v := reflect.ValueOf(&cur).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.String:
			f.SetString("x")
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Unix(1, 0)))
		default:
			t.Fatalf("Policy.%s: kind %s not handled by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := map[string]bool{}
	for _, c := range policyChanges(old, cur) {
		got[c[0]] = true
	}
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Name == "MFARequiredSince" {
			continue
		}
		if !got[name] {
			t.Errorf("policyChanges does not list Policy.%s (%s)", sf.Name, name)
		}
	}
}
