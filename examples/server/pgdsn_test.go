package main

import (
	"context"
	"strings"
	"testing"
)

// A -postgres DSN that does not parse gives a start error without the
// password, as -redis does: the error goes to the console's log.
// libpq's keyword/value format allows spaces around '=', and pgx's
// redaction misses "password = …", and the errors under its message quote
// parts of the input, so the console must not quote the DSN or them.
func TestPostgresDSNPasswordNotPrinted(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 user=guard password = s3cret sslmode=bogus",
		"host=127.0.0.1 user=guard password =s3cret connect_timeout=x",
		// An unquoted space ends the value: pgx masks "my" but names
		// "s3cret" as a keyword without '='.
		"host=127.0.0.1 user=guard password=my s3cret sslmode=require",
		"host=127.0.0.1 user=guard password = 's3cret",
	} {
		b, err := openBackend(context.Background(), options{postgres: dsn}, t.Logf)
		if err == nil {
			b.Close()
			t.Fatalf("openBackend(%q) = nil error, want a parse error", dsn)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("openBackend(%q) = %q: the start error prints the password", dsn, err)
		}
		if !strings.HasPrefix(err.Error(), "-postgres: cannot parse the DSN") {
			t.Errorf("openBackend(%q) = %q: want an error that names -postgres and says its DSN does not parse", dsn, err)
		}
	}
}
