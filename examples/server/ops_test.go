package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// The key file is written only once the database has opened: a start on
// a file that is not a database leaves no new key file behind. A start
// refused for a lost key file names it and writes none either.
func TestKeyFileMadeAfterDatabase(t *testing.T) {
	o := testOptions(t, "https://console.test", nil, "")
	if err := os.WriteFile(o.db, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := newConsole(context.Background(), o, io.Discard); err == nil {
		c.Close()
		t.Fatal("the console started on a file that is not a database")
	}
	if _, err := os.Stat(o.db + ".keys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a start that failed to open the database left a key file: %v", err)
	}

	o = testOptions(t, "https://console.test", nil, "")
	newTestConsoleWith(t, o, nil).Close()
	os.Remove(o.db + ".keys")
	c, err := newConsole(context.Background(), o, io.Discard)
	if err == nil {
		c.Close()
	}
	var missing *keyFileMissingError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), o.db+".keys") {
		t.Errorf("a database with data without its key file: %v, want a keyFileMissingError naming the file", err)
	}
	if _, err := os.Stat(o.db + ".keys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start wrote a key file: %v", err)
	}
}

// Engine flags that contradict each other, or that the engine chosen
// would ignore, are usage errors naming them; the README's commands are
// not.
func TestEngineFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bad  string // a flag the error names; "" if the line is fine
	}{
		{nil, ""},
		{[]string{"-postgres", "postgres://h/db", "-redis", "127.0.0.1:6379"}, ""},
		{[]string{"-postgres", "postgres://h/db", "-postgres-schema", "s", "-redis", "r:6379", "-redis-prefix", "p:"}, ""},
		{[]string{"-idp-metadata", "http://127.0.0.1:8081/metadata"}, ""},
		{[]string{"-memory", "-idp-metadata", "http://127.0.0.1:8081/metadata", "-keys", "k"}, ""},
		{[]string{"-db", "other.db", "-redis", "r:6379"}, ""},
		{[]string{"-memory=false", "-postgres", "postgres://h/db"}, ""},
		{[]string{"-memory", "-postgres", "postgres://h/db"}, "-memory and -postgres"},
		{[]string{"-postgres", "postgres://h/db", "-db", "x.db"}, "-db"},
		{[]string{"-memory", "-db", "x.db"}, "-db"},
		{[]string{"-postgres-schema", "s"}, "-postgres-schema"},
		{[]string{"-memory", "-postgres-schema", "s"}, "-postgres-schema"},
		{[]string{"-redis-prefix", "p:"}, "-redis-prefix"},
	} {
		_, err := parseFlags(tc.args)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("parseFlags(%q): %v", tc.args, err)
		case tc.bad != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("parseFlags(%q): %v, want a usage error naming %s", tc.args, err, tc.bad)
		}
	}
}
