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
