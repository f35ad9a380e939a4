package sqlitestore

import (
	"errors"
	"strconv"
	"strings"
)

// Packed rows. A read of a whole tenant (Users.ListUserSummaries,
// MFA.Enrolments) asks SQLite to aggregate many rows into one: a list of
// numbers per column (group_concat(x, ','), an empty item for NULL) and
// the texts of the rows end to end (group_concat(x, '')), with their byte
// lengths in a list, which makes any byte safe in a text. Reading a value
// through the driver costs far more than SQLite's aggregation (a mutex,
// and a Go allocation for each), so a few values for a thousand rows take
// a fraction of the time of a few values per row; the texts are sliced out
// of one string without a copy.

// errPacked: a packed row is not in the expected form.
var errPacked = errors.New("sqlitestore: malformed packed row")

// numbers reads a list of numbers that group_concat(x, ',') built.
type numbers struct {
	s    string
	used bool // every item was read
}

// next returns the next number, null for an empty item; ok is false when
// the list has no more items or the item is not a number.
func (l *numbers) next() (v int64, null, ok bool) {
	if l.used {
		return 0, false, false
	}
	item := l.s
	if i := strings.IndexByte(l.s, ','); i >= 0 {
		item, l.s = l.s[:i], l.s[i+1:]
	} else {
		l.s, l.used = "", true
	}
	if item == "" {
		return 0, true, true
	}
	v, err := strconv.ParseInt(item, 10, 64)
	return v, false, err == nil
}

// done reports whether n items, and no more, were read from the list.
func (l *numbers) done(n int) bool {
	if n == 0 {
		return l.s == "" && !l.used
	}
	return l.used
}

// texts reads texts that group_concat(x, ”) put end to end.
type texts string

// take returns the next text of n bytes; ok is false if there are fewer
// left.
func (t *texts) take(n int64) (s string, ok bool) {
	if n < 0 || n > int64(len(*t)) {
		return "", false
	}
	s, *t = string((*t)[:n]), (*t)[n:]
	return s, true
}

// text returns the next text of t, whose length is the next number of l;
// ok is false if either has no more or the length is NULL.
func text(l *numbers, t *texts) (s string, ok bool) {
	n, null, ok := l.next()
	s, took := t.take(n)
	return s, ok && took && !null
}
