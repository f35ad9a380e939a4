// Package sqlitestore is Guard's embedded default backend: every store
// interface in one SQLite database file, through the pure-Go driver
// modernc.org/sqlite (no cgo).
package sqlitestore
