// Package mfa is Guard's second factor: authenticator apps (TOTP), one-time
// codes by email and SMS, recovery codes, and the pending login between the
// password step and the second factor.
//
// # What is inside
//
//   - Manager (built with New) is what the facade uses. TOTP: BeginTOTP
//     (secret, otpauth URI, QR code PNG), ConfirmTOTP (the factor becomes
//     active only after a correct first code), VerifyTOTP. Email and SMS:
//     BeginOOB and ConfirmOOB (only a destination the user proved to
//     control becomes a factor), SendCode and VerifyCode. Recovery codes:
//     GenerateRecoveryCodes, RecoverySet and ReplaceRecoverySet,
//     UseRecoveryCode, RecoveryCodesLeft. Pending
//     logins: StartTransaction, LookupTransaction, ConsumeTransaction.
//     Administration: Factors, RemoveFactor, RemoveFactorKeeping (never
//     below a number of confirmed factors, even under concurrency),
//     DeleteUser, Enrolments (the adoption counts before MFA is enforced),
//     Reseal (key rotation).
//   - Keyring seals TOTP secrets at rest with AES-256-GCM under keys the
//     host provides, by key id; the ciphertext is bound to tenant, user and
//     factor, so it cannot be copied to another factor.
//   - EmailSender and SMSSender deliver codes; SMTPSender (net/smtp,
//     STARTTLS required) and WebhookSMSSender (JSON over HTTPS with a
//     bearer secret) are provided.
//   - ParseCode, ParseRecoveryCode and ParseURI are the strict parsers of
//     outside input.
//   - store.go holds the storage contracts (FactorStore, FactorUpdater,
//     EnrolmentIndex, RecoveryStore, CodeStore, RateStore,
//     TransactionStore, bundled in Stores). store/memstore implements them
//     in memory; package mfatest is the conformance suite every backend
//     runs.
//
// # TOTP
//
// Secrets are 160 bits from Config.Rand; codes are RFC 6238 with HMAC-SHA1,
// 6 digits and 30-second steps, which every authenticator app reads
// (Google Authenticator, Authy, 1Password). A code is accepted for the
// steps within Config.Skew of the server's clock (default 1: 90 seconds in
// all; SkewNone: 30 seconds), compared in constant time. pquerna/otp
// remembers nothing, so Guard does: the factor stores the last step
// accepted, and a step is accepted only if it is later, by one atomic
// compare-and-set in the store (FactorUpdater.AdvanceStep). A code is
// therefore accepted once, even by concurrent requests, and no earlier code
// is accepted after a later one. Surrounding white space is trimmed from a
// typed code; anything but exactly 6 ASCII digits is an *InputError.
//
// # Email and SMS codes
//
// A code is CodeDigits (default 6) uniformly random digits, stored only as
// an HMAC-SHA256 under a host key (a plain hash of a million possibilities
// would be reversible), bound to one transaction: a code sent for login A
// fails in login B, and a new code voids the old. It lives 10 minutes at
// most and allows 5 wrong tries; then even the right code is refused.
// SendCode enforces a resend cool-down per transaction and send limits per
// client IP, account, destination and tenant, in that order (and
// optionally a list of allowed SMS prefixes) against SMS pumping: over a
// limit the sender is not called and the result says Suppressed, which
// the facade records and never shows. The tenant's limit (default 1000
// codes an hour) bounds a flood spread over many accounts, numbers and
// IPs, each under its own limit; like the others it is counted in the
// RateStore, so it holds across replicas.
// A send the provider fails gives the cool-down back (a retry is not held
// back) but counts against the limits.
// Email codes are of lower assurance (NIST SP 800-63B does not accept
// email as an out-of-band authenticator): Kind.Strong and
// Enrolment.Satisfies let a tenant exclude them from "MFA required".
//
// # Recovery codes
//
// Ten codes of 120 random bits each, written as six groups of four
// Crockford base32 characters, shown once, stored as SHA-256 hashes (at
// 112 bits and more NIST needs no salted slow hash), each usable once, also
// under concurrency. Generating a new set voids the old one.
// ReplaceRecoverySet stores a new set only in place of the set read
// before (RecoverySet), unchanged but for codes used since: of calls
// running at once that each read the user's set, one stores its codes and
// the others get ErrConflict, so that no set shown to the user has been
// stored over. RecoveryResult.Low says when to prompt for a new set.
//
// # Pending logins
//
// After the password step the facade starts a Transaction: a 256-bit token
// stored only as a hash that is domain-separated from session hashes, bound
// to the client (Binding), living 5 minutes by default. It opens nothing;
// the facade looks it up when the second factor arrives and consumes it
// once when creating the session.
//
// # What the caller must do
//
// The Manager does not throttle and writes no audit events. The facade
// reserves an attempt in the account's lockout before each VerifyTOTP,
// VerifyCode and UseRecoveryCode, counts every failure (including
// malformed input and ErrReplay) as it counts a wrong password, audits
// each enrolment, removal, success, failure, reuse (ErrReplay), code sent
// or suppressed, recovery code used and set regenerated, and notifies the
// user of recovery-code use and reuse attempts.
//
// # Concurrency
//
// Manager, Keyring, SMTPSender and WebhookSMSSender are safe for concurrent
// use. The Manager keeps no state of its own beyond its configuration;
// every invariant is one atomic store method.
//
// # Errors
//
// Compare errors with errors.Is and errors.As:
//
//   - *InputError: a malformed code, token, tenant, user, destination or
//     label. It names the field and never echoes the value. Count it as a
//     failed attempt.
//   - ErrInvalidCode: a well-formed wrong code.
//   - *CodeError: VerifyCode's refusal of a one-time code it found, around
//     the error (ErrInvalidCode, ErrTooManyTries, ErrExpired…), with the
//     kind of factor that sent the code.
//   - ErrReplay: a correct TOTP code whose step was already used (or is
//     older than one used): a reuse attempt.
//   - ErrTooManyTries, ErrExpired: the code or transaction is spent or too
//     old; send a new code or start again.
//   - ErrNotFound: no such factor, code or transaction (also for a
//     transaction of another client).
//   - ErrConflict: the factor is already confirmed (or changed meanwhile),
//     or ReplaceRecoverySet found another set stored since RecoverySet
//     read the user's.
//   - ErrLimit: the user has Config.MaxFactors confirmed factors (when a
//     factor is begun or confirmed).
//   - ErrLastFactor: RemoveFactorKeeping refused to take a factor that
//     would leave the user fewer confirmed factors than asked to keep.
//   - ErrUnavailable: no sender for the channel.
//   - ErrUnseal, ErrUnknownKey: a sealed secret cannot be opened (tampered,
//     copied, or its key is gone). Deny and alert.
//   - ErrCoolDown, *RateLimitError (ErrRateLimited; Scope names the limit:
//     ip, account, destination or tenant), ErrDestinationNotAllowed: in
//     SendResult.Suppressed, never returned as errors.
//   - *SendError: the email or SMS provider failed; nothing was opened.
//   - *ConfigError: New, NewKeyring, NewSMTPSender or NewWebhookSMSSender
//     was given an unacceptable configuration.
//   - *URIError: ParseURI refused an otpauth URI.
//
// Any other error wraps a store failure, or a failure of Config.Rand (one
// that cannot be read, or keeps giving the same or unusable values). It is
// never one of the sentinels above, so the caller must deny (fail closed).
package mfa
