// Package e2e holds end-to-end tests of the facade on the real engines
// together: several replicas sharing PostgreSQL and Redis, and engine
// failures in the middle of a run. It has no API; see the tests.
package e2e
