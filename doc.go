// Package guard is the facade of Guard, an embeddable authentication and
// authorization library for multi-tenant SaaS applications.
//
// A host application builds one Guard with New, giving it the stores of a
// backend (store/memstore for tests and evaluation; store/sqlitestore, the
// embedded default; store/pgstore and store/redisstore for many replicas)
// and a secret audit key. The Guard then provides:
//
//   - tenants with a per-tenant security policy (Tenant, Policy, SetPolicy),
//     optionally ring-fenced in their own databases (Config.OpenTenant);
//   - user administration: CreateUser, DeactivateUser (ends every session
//     at once), ReactivateUser, DeleteUser, UnlockUser, ExpirePassword
//     (a compromised password must be changed at the next sign-in: until
//     it is, the session may do nothing else, ErrPasswordChangeRequired);
//   - password sign-in with argon2id, a NIST SP 800-63B password policy,
//     per-account and per-IP throttling with growing locks (an IPv6
//     client counted per /64: Config.IPv6Prefix), CAPTCHA after
//     failures, and no user enumeration (Login, ChangePasswordAndRotate,
//     ForgotPassword, ResetPassword); a signed-in user changes their own
//     email after a step-up, proving it by a link mailed to the new
//     address (RequestEmailChange, ConfirmEmailChange) or not (ChangeEmail:
//     the address stays unverified, and single sign-on never matches it);
//   - second factors (Config.MFA): TOTP, email and SMS codes, recovery
//     codes, a pending sign-in between the steps (CompleteLogin,
//     SendLoginCode, BeginTOTP, ConfirmFactor…), "require MFA" with
//     adoption counts (MFAAdoption) and step-up (Reauthenticate);
//   - SAML single sign-on as service provider (Config.SSO: StartSSO,
//     CompleteSSO, LogoutSSO) and "require SSO" with a break-glass owner;
//   - roles and four-eyes approvals on casbin (Require, which refuses an
//     action under approval, RequireApprovable, Authorize, which returns
//     ErrApprovalRequired for one, GrantRole, GrantableRoles,
//     GrantableKeyRoles, DefineRole, RequestApproval, ApproveRequest, ConsumeApproval; a
//     grant or revocation ends the user's sessions, and so does a
//     redefinition or deletion of a role they hold), IP allow-lists for people and for API keys
//     (SetIPAllowList, Config.Proxies), API keys (CreateAPIKey; a key
//     created by a user never does more than that user may do now);
//   - opaque server-side sessions with one concurrent session per user by
//     default (a lowered limit ends each user's oldest extra sessions,
//     SetPolicy and Maintain), idle and absolute timeouts (Authenticate,
//     Logout, RotateSession, UserSessions, RevokeSession);
//   - HTTP middleware that authenticates sessions and API keys and puts the
//     Principal in the request context (Middleware, RequireSession,
//     PrincipalFrom), and routes that need a second factor (RequireMFA);
//     a host that is not net/http authenticates with AuthenticateFrom and
//     AuthenticateAPIKey, giving the client's address, which holds
//     sessions and keys to the allow-lists alike (Authenticate applies
//     none);
//   - a tamper-evident audit log per tenant, written before any action is
//     reported as done (QueryAudit, ExportAudit, VerifyAudit), and access
//     reviews (AccessReview, ApplyReview).
//
// The packages auth, mfa, sso, ipfilter, rbac, audit and session hold the
// mechanisms and define the store interfaces; they never import each other
// or this package. The facade orchestrates them and is the one place that
// writes audit events. Every sign-in, whatever its first factor, goes
// through one pipeline: allow-list, status, second factor or enrolment,
// session limit, audit. A session is created by Login, CompleteLogin,
// CompletePendingEnrolment and CompleteSSO, and by nothing else;
// Reauthenticate, RotateSession and ChangePasswordAndRotate give an
// existing session a new token.
//
// # Concurrency
//
// A Guard is safe for concurrent use. Every security invariant (lockout
// limits, the session limit, single-use codes, the TOTP step, the SAML
// replay cache, the audit chain) is enforced by one atomic store operation,
// so it holds across goroutines and across replicas that share their
// stores. Role and allow-list changes are in force on the next request on
// the replica that made them, and on every replica whose stores read the
// tenant's current version at each decision (memstore, sqlitestore,
// pgstore without Watch). A replica on a pgstore.Store that runs Watch
// keeps versions in memory until PostgreSQL notifies a change: it follows
// within milliseconds (measured: up to ~25 ms), never later than
// pgstore.WatchFresh; run without Watch where a revocation must hold on
// the very next request everywhere, at one more round trip per decision.
//
// # Acting on a more privileged user
//
// Nobody grants a role whose permissions they do not all hold (GrantRole),
// nor takes one away (RevokeRole: an admin cannot demote an owner). The
// same rule holds for what an administrator does to another user's
// account: a call that removes the user, locks them out, or could help
// take the account over may be made on user U only by a principal that
// holds every permission of every role U holds; the system may do
// anything, and without RBAC every user of a tenant may. Otherwise it is
// refused with ErrForbidden (matching rbac.ErrEscalation), recorded as a
// failed event of the call (user.deleted, user.deactivated…) with reason
// escalation and Meta role naming a role the caller could not grant, as
// GrantRole records its refusals, and nothing changes. So an admin cannot
// touch an owner's account in these ways; an owner can touch an admin's.
// The calls under the rule:
//
//   - DeleteUser, DeactivateUser and the deactivations of ApplyReview
//     (removal, lock-out); DeactivateDormant passes over such users;
//   - ReactivateUser: an admin cannot bring back an owner the owners
//     deactivated;
//   - UnlockUser: lifting a login lock undoes the throttle that guards the
//     user's password against guessing;
//   - ExpirePassword: it ends the user's sessions and stops their every
//     permission until they change the password, at the caller's will;
//   - SendInvitation: a fresh link that sets the user's password without
//     the current one, which also voids the user's own reset link;
//   - RemoveFactor of another user's factor: it lowers the user's
//     protection (and with the last factor voids their recovery codes);
//   - RevokeAPIKey, and the key revocations of ApplyReview, of a key
//     holding such a role (the rule is then about the key's roles, not its
//     creator's): a revoked key cannot be brought back, so this locks the
//     key's automation out for good. The user who created the key, and
//     the key itself, may revoke it all the same. Revoking the keys of a
//     user being deactivated or deleted follows the rule of that call.
//
// The rule is checked before the call changes anything and, as the last
// active owner is (written first, checked after), once more after a
// change of U's status is written (a deactivation, also by ApplyReview or
// DeactivateDormant, and a reactivation): a role granted to U in between,
// by an owner promoting U at that moment, undoes the change, and the call
// is refused and recorded as above (DeactivateDormant records it and
// passes over U). A failure to read the roles then
// undoes it too (ErrUnavailable); an undo that fails returns
// ErrUnavailable and leaves the change (each call's documentation says
// what stays). DeleteUser checks again when it takes U's roles,
// ExpirePassword once the password is marked, before the sessions end
// (the mark is taken back, unless U's password was marked already), and
// RemoveFactor of another user's factor once it is removed, before the
// sessions end (the factor is put back).
//
// Left to any administrator, because they only end access and cannot
// lead to a take-over: ending another user's sessions (RevokeSession,
// RevokeUserSessions), and reading a user's account, factors, sessions or
// lock state. An administrator changes no other user's email or name
// (ChangeEmail and RequestEmailChange act on the caller's own account).
// Role changes follow GrantRole's rule (ApplyReview's downgrades and
// revocations too).
//
// # Errors
//
// Failed sign-ins return ErrInvalidCredentials whatever the cause (a wrong
// second factor ErrInvalidCode, a refused SAML response ErrSSOFailed); the
// cause is recorded in the audit event (Reason*). Store failures return
// errors that match ErrUnavailable: requests are denied, never allowed
// (fail closed). Bad input returns an *InputError, *auth.InputError or
// *auth.PolicyError naming the field or rule, never the value. Actions the
// principal may not take return ErrForbidden (recorded as access.denied,
// or as a failed event of the change for roles and approval rules the
// changer could not grant, with reason escalation or no_permission; a
// caller with no tenant, such as the system, has no log to be recorded in),
// any permission of a session whose password must be changed
// ErrPasswordChangeRequired (also ErrForbidden), and sensitive ones on an
// old session ErrStepUpRequired. An API key never passes a step-up check,
// which asks for a person's recent authentication (CreateAPIKey,
// SetIPAllowList, SetPolicy, SetApprovalRequired, SetSSOConnection,
// RemoveFactor, and the calls on the caller's own account: ChangeEmail,
// RequestEmailChange, BeginTOTP, BeginOOB, RegenerateRecoveryCodes):
// whatever its roles, it gets ErrForbidden, recorded as access.denied
// with reason api_key. The changes of who holds which role and of what a
// role allows (GrantRole, RevokeRole, DefineRole, DeleteRole, and
// CreateUser with NewUser.Roles) need a user's recent authentication too
// (ErrStepUpRequired, once the user is found to hold the permission the
// change takes), but an API key makes them without one, within what it
// may grant, as provisioning automation does; ApplyReview needs one only
// for a DowngradeTo that gives the user a permission none of their roles
// gave (a promotion).
//
// A change that lost a race with another returns ErrConflict (reload and
// retry; each method's documentation says what stays), for instance
// SetPolicy and SetIPAllowList given a version since changed, a factor
// confirmed twice, or RegenerateRecoveryCodes when another call stored a
// set first (it stores none, and is recorded as a second, failed
// mfa.recovery_regenerated, reason conflict), or a ChangeEmail or
// ConfirmEmailChange during which the account changed (a password reset,
// say, which stands: the change of address is refused, recorded as a
// refused user.email_changed with the reason). A call over a bound of how
// often it may be made returns ErrTooManyAttempts (wait): invalid API
// keys or SSO starts from one address, invitations sent to one user
// (SendInvitation), and approval requests filed (RequestApproval:
// MaxApprovalRequestsPerHour per requester in an hour of the clock, a
// user's API keys counting in their creator's; recorded as a failed
// approval.requested, reason rate_limited, at most 30 a minute per
// requester). A call over a bound of how many of a thing a tenant or
// user may hold returns that package's error, and changes nothing:
// CreateAPIKey auth.ErrTooManyAPIKeys (Config.MaxAPIKeys live keys;
// recorded as a failed apikey.created, reason limit), DefineRole
// rbac.ErrTooManyRoles, a new second factor mfa.ErrLimit. The links
// ForgotPassword and RequestEmailChange hold back are answered as if
// sent, and so are the one-time codes SendLoginCode and BeginOOB hold
// back (the resend cool-down and mfa.SendLimits per client IP, account,
// destination and tenant), recorded as mfa.code_suppressed with reason
// cool_down, rate_limited or tenant_limit (ReasonTenantLimit).
// ForgotPassword, which waits for a background slot, returns
// ErrUnavailable, nothing done, when its context ends first, or when
// Close begins while it waits (or runs): see Close, after which no notice
// or email caused before it is sent. Close waits for the mails being sent
// and those queued behind them, minutes with a hanging mail server;
// Shutdown(ctx) bounds the wait by ctx (a host's grace period for a
// graceful shutdown): when ctx ends first, the mails not sent yet are
// dropped and counted (DroppedNotices, DroppedResetMails), the sends
// under way are ended through their contexts and waited for, and ctx's
// error is returned.
//
// The token of a session rotated since (RotateSession, a step-up)
// authenticates as nothing: ErrUnauthenticated, never
// ErrSignedInElsewhere, which only an evicted session's token gets. Signing
// out with it through LogoutToken still ends the session it was rotated
// to; LogoutToken returns ErrUnauthenticated, ending nothing, for any
// token with no session behind it (malformed, unknown, evicted), and
// ErrUnavailable when the session store fails.
//
// An action whose audit record cannot be written returns ErrUnavailable
// and is not left in force off the record: a change that grants access,
// lowers security or changes whom the tenant trusts is undone (or, where
// it cannot be undone exactly, was recorded before it was made), while a
// revocation (a logout, a revoked session or key, a deactivation or
// deletion, a deleted custom role) stands, since rolling it back would be
// worse; a role taken from a subject is undone like a grant. Each
// method's documentation says which.
package guard
