// Package guard is the facade of Guard, an embeddable authentication and
// authorization library for multi-tenant SaaS applications.
//
// A host application builds one Guard with New, giving it the stores of a
// backend (store/memstore for tests and evaluation; SQLite, PostgreSQL and
// Redis backends for production) and a secret audit key. The Guard then
// provides:
//
//   - tenants with a per-tenant security policy (Tenant, Policy);
//   - user administration: CreateUser, DeactivateUser (ends every session
//     at once), ReactivateUser, DeleteUser, UnlockUser;
//   - password login with argon2id, a NIST SP 800-63B password policy,
//     per-account and per-IP throttling with growing locks, and no user
//     enumeration (Login, ChangePassword);
//   - opaque server-side sessions with one concurrent session per user by
//     default, idle and absolute timeouts (Authenticate, Logout,
//     RotateSession, UserSessions, RevokeSession);
//   - HTTP middleware that puts the Principal in the request context
//     (Middleware, RequireSession, PrincipalFrom);
//   - a tamper-evident audit log per tenant, written before any action is
//     reported as done (Audit).
//
// The packages auth, session and audit hold the mechanisms and define the
// store interfaces; they never import each other or this package. The
// facade orchestrates them and is the one place that writes audit events.
//
// # Concurrency
//
// A Guard is safe for concurrent use. Every security invariant (lockout
// limits, the session limit, the audit chain) is enforced by one atomic
// store operation, so it holds across goroutines and across replicas that
// share their stores.
//
// # Errors
//
// Failed logins return ErrInvalidCredentials whatever the cause; the cause
// is recorded in the audit event (Reason*). Store failures return errors
// that match ErrUnavailable: requests are denied, never allowed (fail
// closed). Bad input returns an *InputError, *auth.InputError or
// *auth.PolicyError naming the field or rule, never the value. Admin
// actions by a principal of another tenant return ErrForbidden.
package guard
