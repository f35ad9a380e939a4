// Package audit keeps a tamper-evident, append-only log of security events
// per tenant: every login attempt, MFA and SSO step, session and admin
// change, and denial.
//
// # What is inside
//
//   - [Event], [Actor], [Action], [Outcome]: one audit record and its
//     vocabulary ([Actions] lists the actions the facade records).
//   - [Log]: the entry point. [Log.Record] validates an event, chains it and
//     returns once it is durably stored; [Log.Verify] checks a tenant's
//     chain; [Log.Query] pages through events; [Log.Export] writes them as
//     JSON Lines or CSV ([CheckExport] tells beforehand whether it refuses
//     its input); [Log.Purge] applies retention.
//   - [Store]: the storage contract a backend implements (store/memstore,
//     and the SQL backends). The conformance suite audit/audittest checks
//     it.
//
// # The chain
//
// Each tenant has its own chain. Events are numbered 1, 2, 3… (Seq) with no
// gaps, and each carries
//
//	MAC = HMAC-SHA256(key, canonical(event))
//
// where canonical(event) covers every field, including the tenant, Seq and
// PrevMAC, the MAC of the previous event (empty for Seq 1 of a tenant that
// was never purged). Editing any field, deleting or reordering events, or
// copying an event from another tenant breaks the chain at that event, and
// [Log.Verify] reports its Seq. The key is provided by the host and never
// stored; whoever holds it can forge events, so keep it out of the database
// that holds the log. Deleting the newest events of a chain (truncation) is
// only detectable against a head remembered elsewhere: a Log remembers, for
// its lifetime, the last event it appended to each tenant's chain. Verify
// reports a chain that ends before it or holds another event at its Seq,
// and Record refuses to continue such a chain (ErrTampered) rather than
// reuse the deleted Seqs. Another replica's appends move the chain past it,
// which is no tampering. [Report.Head] can be published or kept for
// comparison across restarts.
//
// The canonical encoding, for verifiers written in other languages, is the
// concatenation of, in this order:
//
//	str("guard/audit/v1/event"), str(ID), str(Tenant), u64(Seq),
//	i64(Time.Unix()), u32(Time.Nanosecond()), str(Actor.Kind), str(Actor.ID),
//	str(Actor.Email), str(Action), str(Target), str(IP), str(UserAgent),
//	str(Outcome), str(Reason), uvarint(len(Meta)), then for each Meta key
//	in byte-wise ascending order str(key) str(value), and finally
//	str(PrevMAC)
//
// where str(x) is the unsigned varint (encoding/binary) of len(x) followed by
// the bytes of x, and u64, i64 and u32 are big-endian. A checkpoint's
// CheckpointMAC is HMAC-SHA256(key, str("guard/audit/v1/checkpoint")
// str(tenant) u64(Seq) str(MAC) i64(At.Unix()) u32(At.Nanosecond())).
// Time is seconds plus nanoseconds rather than UnixNano so that every
// time.Time has exactly one encoding. Times are UTC and truncated to the
// microsecond before they are MACed, so that SQL backends store them exactly.
// A nil Meta and an empty Meta are equivalent (both encode as a count of
// zero), and stores may return either.
//
// A verifier of an export (the JSON Lines one: CSV neutralises formula
// characters, see [CSV]) reads each event with these fields and checks that
// its Seq is one above the previous record's, its PrevMAC is the previous
// record's MAC and its MAC is right. The first event of a chain never
// purged has Seq 1 and an empty PrevMAC. After a purge, an export that
// reaches the chain's start holds the tenant's checkpoint, first, as a
// record of its own (id [ExportCheckpointID], see [Log.Export]): the
// verifier checks its CheckpointMAC, and the first event must follow it
// (Seq one above, PrevMAC its MAC). An export whose first event has no such
// anchor was cut short: whoever deleted the oldest events cannot make a
// checkpoint for them without the key. [Report.Checkpoint] gives the
// checkpoint too, to keep beside [Report.Head].
//
// Seq is the authoritative order of a chain. A Log never gives an event a
// Time earlier than the last one it gave in the same tenant, so timestamps
// stay monotonic when the wall clock steps back; replicas with skewed clocks
// may still interleave slightly out of time order.
//
// # Retention
//
// [Log.Purge] deletes the oldest events and leaves a [Checkpoint], signed
// with the same key, holding the Seq and MAC of the last purged event, so the
// remaining events still verify, in the store and in an export (which
// carries the checkpoint). Purge verifies the events it deletes first
// and refuses to delete a broken chain (ErrTampered), so retention never
// launders tampering. The facade records an [AuditPurged] event. An event
// stored at or below the checkpoint's Seq was not left there by Purge:
// Verify reports it ("event below checkpoint"), and Query and Export never
// show it.
//
// # Concurrency
//
// A [Log] is safe for concurrent use. Concurrent [Log.Record] calls for one
// tenant are committed together in one [Store.Append] (group commit) by one
// goroutine at a time; different tenants commit in parallel. Several Logs
// (replicas) may share one Store: the Store's Append refuses an event that
// does not continue the chain (ErrConflict) and the Log retries with the new
// head, so Seq stays contiguous without forks. Stores must be safe for
// concurrent use.
//
// # Errors
//
//   - [*InputError]: an event, query or Config was invalid. It names the
//     field and the rule broken, never the value. Nothing was stored.
//   - [ErrConflict]: the chain head moved (from a Store), or a Log gave up
//     after repeated conflicts; or Purge asked for a checkpoint below the
//     current one; or Verify or Purge gave up because other purges moved
//     the checkpoint during each of its walks of the chain; or a purge
//     overtook Export, deleting events it had still to write (the output
//     is partial: discard it and export again).
//   - [ErrTampered]: Purge found the events it would delete fail
//     verification, or Record found the stored chain ending before the last
//     event this Log appended to it (events were deleted; nothing was
//     stored, and the caller must not report its action as done). Verify
//     reports tampering in its [Report] instead, and returns an error only
//     when the store fails, the tenant is invalid or purges kept
//     overtaking it (ErrConflict).
//   - A store error is returned wrapped; Record then reports that the event
//     was not recorded, and the caller must not report its action as done.
//     A Record whose context ends first returns the context's error; its
//     event may or may not have been stored.
//
// Compare errors with errors.Is and errors.As.
package audit
