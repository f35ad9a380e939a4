package main

import (
	"errors"
	"strings"
	"testing"
)

// TestReviewB_1_RedisURLPasswordPart: a -redis URL whose password holds an
// unencoded '/', '?' or '#' does not parse; the error must not quote the
// part of the password url.Parse took for a port.
func TestReviewB_1_RedisURLPasswordPart(t *testing.T) {
	for _, bad := range []string{"redis://guard:s3c/ret@h:6379", "redis://:s3c#ret@h:6379", "redis://guard:s3c?ret@h:6379", "redis://guard:s3c%zzret@h:6379"} {
		if _, err := redisOptions(bad); err == nil || strings.Contains(err.Error(), "s3c") {
			t.Errorf("redisOptions(%q) = %v, want an error without the password", bad, err)
		}
		if _, err := parseFlags([]string{"-redis", bad}); !errors.Is(err, errUsage) || strings.Contains(err.Error(), "s3c") {
			t.Errorf("-redis %q: %v, want a usage error without the password", bad, err)
		}
	}
}
