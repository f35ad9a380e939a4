// Package authtest checks that a backend keeps the contracts of
// auth.UserStore, auth.UserUpdater, auth.ThrottleStore and
// auth.APIKeyStore. Every backend's
// tests call Run and RunConcurrent with the stores it provides; a nil field
// of Stores is not tested, so a backend that keeps only throttle counters
// (Redis) runs only that half:
//
//	func newUsers(*testing.T) authtest.Users { return memstore.NewUsers() }
//
//	func newThrottle(*testing.T) auth.ThrottleStore { return memstore.NewThrottle(0) }
//
//	var stores = authtest.Stores{Users: newUsers, Throttle: newThrottle}
//
//	func TestAuthStores(t *testing.T)           { authtest.Run(t, stores) }
//	func TestAuthStoresConcurrent(t *testing.T) { authtest.RunConcurrent(t, stores) }
//
// Each sentence of the interfaces' doc comments has a named subtest. Every
// subtest asks Stores for a fresh, empty store and needs nothing else from
// it.
//
// # Time
//
// The suite never reads the clock. Its times are fixed, in the year 2099,
// with digits down to the microsecond, so a store that expires throttle
// keys by its own clock (a Redis TTL, for example) keeps them for the
// length of the test, and a store that judges expiry by its own clock
// instead of the now it is given fails. Times must come back as the same
// instant (time.Time.Equal) to the microsecond; the location may differ. A
// zero time must come back as a zero time.
//
// # The throttle
//
// Reserve, Release, Reset and Peek are checked step by step against a
// model: auth.Record updated with auth.Limit.Apply for Reserve, with
// auth.Record.GiveBack for Release (of a reservation the store returned,
// the model giving back its own), and dropped for Reset; Peek must report
// auth.StateOf the model. Every Reservation and
// State field must be equal, LockedUntil to the microsecond. The limit is
// an argument of every call and may differ between calls for one key. The
// suite cannot see how much memory a store holds: each backend tests
// itself that forgotten keys are dropped (memstore does, with Throttle.Len).
//
// ReserveAll and Settle (auth.BatchThrottleStore) are checked the same way
// on auth.BatchThrottle of the store (the store's own methods when it has
// them, else its single-key calls one after another): ReserveAll against
// Limit.Apply of each key in order up to the first refused one, Settle
// against Release or Reset of each key in order, each followed by a Peek
// of every key of the call. The Reservation fields Last and PrevLast are
// not compared (each store keeps time to its own precision); they are
// checked through what a Release of the reservation does.
//
// # Clarifications
//
// The doc comments leave a few points open; the suite checks these
// readings:
//
//   - ListUsers orders ids byte by byte (Go's string order), whatever the
//     engine's collation: after is compared the same way, so paging
//     neither skips nor repeats a user. A limit of 0 returns no users; a
//     negative limit is not tested.
//   - Wherever a subtest checks ListUsers, it checks ListUserSummaries with
//     the same arguments too, against the summaries of the expected users.
//   - A nil and an empty PasswordHistory are equal.
//   - SetPassword on a user without a password (PasswordHash "") pushes
//     nothing: there is no replaced hash to remember. A negative keep is
//     not tested.
//   - CreateUser of a user whose email and id are both taken may return
//     either ErrDuplicateEmail or ErrDuplicateID; it stores nothing.
//   - RecordLogin sets LastLoginAt to at even when at is earlier than the
//     stored value.
//   - RecordSSOLogin, like RecordLogin, sets its times to at even when at
//     is earlier than the stored values; no other method changes
//     LastSSOAt, and ListUserSummaries returns it.
//   - EmailUnverified changes only through SetEmail and VerifyEmail, and
//     comes back from every read, ListUserSummaries included; VerifyEmail
//     compares emails exactly (as UserByEmail does) and, for a user who
//     does not exist, returns ErrNotFound whatever email it is given.
//   - Release gives the key's time of last attempt (Record.Last) back to
//     what it was before the reservation, when nothing was counted
//     since: giving back an attempt makes the key be forgotten as if it
//     had not been made (ForgetsEarlierFailuresOnTime).
//   - A store may forget a record by the ResetAfter of its last write (a
//     SQL store deletes forgotten rows during calls on other keys): calls
//     that give one key different ResetAfters follow each other with no
//     call on another key in between.
//   - String fields hold valid UTF-8 without NUL bytes (which PostgreSQL
//     text cannot hold); ids, emails and names of the maximum sizes in
//     package auth must fit.
//
// RunConcurrent hammers one store from many goroutines and checks that each
// method is one atomic step: N parallel attempts on one key never get more
// than Limit.Max reservations before the lock, Releases never take a count
// below zero or lose one, giving back every reservation of N parallel
// attempts lifts the lock one of them started (and giving back some,
// during the lock, leaves the others' failures once the lock's is given
// back too, or the lock as it was), a burst of N ReserveAlls of one client
// IP settled as successes leaves it with no lock and no failures, N parallel ReserveAlls of one client IP and one
// account never get more than either key's Limit.Max (the account is only
// counted after the IP was allowed), ReserveAlls and Settles of pairs that
// share keys, listed in the same order and mixed with single-key calls,
// neither fail (a SQL deadlock is an error) nor lose a count, emails and
// ids stay unique (users racing with SetEmail, or with SetEmail and
// CreateUser, to one email: exactly one gets it), a rehash wins once,
// Deactivate wins once, DeactivateIdle wins once, and racing RecordLogin either sees the user
// deactivated or is seen (the user stays active), racing SetReactivatedAt
// either is seen or finds the user deactivated, its time kept,
// concurrent updates of a user (ExpirePassword and RecordSSOLogin included) lose nothing,
// RecordLogin racing RecordSSOLogin never changes LastSSOAt, VerifyEmail racing SetEmail
// clears the flag only of the address it proves, RecordLogin returns the
// user as its own update left it, RevokeByCreator, racing with itself, with new keys of the
// creator and with RevokeAPIKey, returns each key it revoked once, with the time it set, and
// N parallel CreateAPIKeys of a tenant with a bound of live keys store exactly the bound's
// worth, each tenant its own, and PurgeAPIKeys, racing with itself and with RevokeAPIKey,
// deletes each key once (the counts add up) and no live key.
package authtest
